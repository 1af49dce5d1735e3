"""Allure labels of each conformance test, and the HTTP exchange attached to a failure.

Every test carrying ``@pytest.mark.behavior(ID)`` gets, through allure-pytest's own
decorators: its contract group as *feature*, the behaviour ID as *story*, a
*severity* from the level (MUST critical, SHOULD normal, INFO minor), its docstring
(and the behaviour's one-line promise) as *description*, and a link to each guide
section the behaviour encodes. A test that fails (or, for a SHOULD without
``--strict``, warns) gets the HTTP exchange it had with replayed Moonshot as a text
attachment, secrets scrubbed. Does nothing when allure-pytest is not loaded.
"""

from __future__ import annotations

import inspect

import pytest

from kimi_conformance import exchange, guide_links
from kimi_conformance.contract import BEHAVIORS, INFO, MUST, SHOULD, Behavior
from kimi_conformance.report import PROP_OUTCOME, WARN

SEVERITY = {MUST: "critical", SHOULD: "normal", INFO: "minor"}
EXCHANGE_ATTACHMENT = "HTTP exchange with Moonshot (secrets scrubbed)"
_ATTACHED = pytest.StashKey[bool]()


def description(item: pytest.Item, behavior: Behavior) -> str:
    function = getattr(item, "function", None)
    doc = inspect.cleandoc(function.__doc__ or "") if function is not None else ""
    promise = f"{behavior.id} ({behavior.level}, guide {behavior.guide}): {behavior.summary}."
    return f"{doc}\n\n{promise}" if doc else promise


def behavior_labels(behavior: Behavior) -> tuple[list, list]:
    """allure-pytest's marks of a behaviour that no test changes: (those before the description, those after it).

    The same for every test of the behaviour (the guide and contract links read CONTRACT.md):
    ``AllureLabels`` makes them once per behaviour and run.
    """
    import allure

    before = [allure.feature(behavior.group), allure.story(behavior.id), allure.severity(SEVERITY[behavior.level])]
    contract_name, contract_url = guide_links.contract_link(behavior.id)
    after = [*(allure.link(url, name=name) for name, url in guide_links.links(behavior.guide)),
             allure.link(contract_url, name=contract_name)]
    return before, after


def behavior_marks(item: pytest.Item, behavior: Behavior, labels: tuple[list, list] | None = None) -> list:
    """allure-pytest's marks for one test (its decorators return pytest marks); ``labels``: the
    behaviour's ``behavior_labels`` when already made."""
    import allure

    before, after = labels if labels is not None else behavior_labels(behavior)
    marks = [*before, allure.description(description(item, behavior)), *after]
    return [m for m in marks if isinstance(m, pytest.MarkDecorator)]


def _failed_or_warned(report: pytest.TestReport) -> bool:
    return report.failed or any(key == PROP_OUTCOME and value == WARN for key, value in report.user_properties)


class AllureLabels:
    """The pytest hooks (registered only when allure-pytest is)."""

    @pytest.hookimpl(tryfirst=True)  # before allure-pytest selects tests by label (--allure-stories ...)
    def pytest_collection_modifyitems(self, items: list[pytest.Item]) -> None:
        labels: dict[str, tuple[list, list]] = {}  # behaviour ID -> behavior_labels (this collection's)
        for item in items:
            marks = [m for m in item.iter_markers("behavior") if m.args]
            if len(marks) == 1 and marks[0].args[0] in BEHAVIORS:
                behavior = BEHAVIORS[marks[0].args[0]]
                if behavior.id not in labels:
                    labels[behavior.id] = behavior_labels(behavior)
                for mark in behavior_marks(item, behavior, labels[behavior.id]):
                    item.add_marker(mark)

    @pytest.hookimpl(hookwrapper=True, tryfirst=True)  # outermost: sees the report as the kit finally rates it
    def pytest_runtest_makereport(self, item: pytest.Item, call: pytest.CallInfo):
        outcome = yield
        report: pytest.TestReport = outcome.get_result()
        if not _failed_or_warned(report) or item.stash.get(_ATTACHED, False):
            return
        replay = (getattr(item, "funcargs", None) or {}).get("moonshot")
        if replay is None or not hasattr(replay, "requests"):
            return
        import allure

        item.stash[_ATTACHED] = True
        allure.attach(exchange.render(replay.requests), name=EXCHANGE_ATTACHMENT, attachment_type=allure.attachment_type.TEXT)


def register(config: pytest.Config, kit) -> None:
    """Register the labels and the results folder additions when allure-pytest is loaded.

    ``kit`` is the run's :class:`kimi_conformance.plugin.KitPlugin` (verdicts, build identity).
    ``-p no:allure_pytest`` turns all of it off.
    """
    if config.pluginmanager.hasplugin("allure_pytest"):
        from kimi_conformance.allure_results import AllureResults

        config.pluginmanager.register(AllureLabels(), "kimi-conformance-allure-labels")
        config.pluginmanager.register(AllureResults(kit), "kimi-conformance-allure-results")
