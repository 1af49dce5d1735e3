"""What the kit adds to an Allure results folder at the end of a run (``--alluredir DIR``).

- ``environment.properties``: the build's identity (Letta version and path, Python,
  binding) and the run's verdict;
- ``categories.json``: failures sorted into "build has no Kimi provider", "contract
  violation", "cassette/replay problem", "upstream unavailable (live)" (and SHOULD
  warnings), with patterns that exclude each other so a result has one category;
- one result per behaviour no test ran for (``not-applicable``), so the report lists
  every behaviour ID of the contract, as the JSON report does;
- a last pass over the folder that scrubs secrets from every text file (captured
  output, tracebacks, attachments) with the one redactor (:mod:`kimi_conformance.redact`,
  which knows the live key: it was captured at start-up, before live mode hid it).

Only the controller writes (never an xdist worker), and only with ``--alluredir``.
"""

from __future__ import annotations

import json
import os
import uuid
from pathlib import Path

import pytest

from kimi_conformance import __version__, guide_links
from kimi_conformance.allure_labels import SEVERITY
from kimi_conformance.contract import BEHAVIORS
from kimi_conformance.redaction_plugin import redact_file

NO_KIMI = "build has no Kimi provider"
CONTRACT = "contract violation"
REPLAY = "cassette/replay problem"
UPSTREAM = "upstream unavailable (live)"
SHOULD_WARN = "SHOULD not met (warning)"

# What each kind of message says (see plugin.py, replay.py, suites/conftest.py).
_NO_KIMI_TEXT = r"this build has no Kimi provider"
_REPLAY_TEXT = r"hermetic replay violated|\[replay\]|CassetteError|cassette problem"
_UPSTREAM_TEXT = r"[Uu]pstream unavailable|exceeded_current_quota_error"
_WARN_TEXT = r"XFAIL [A-Z0-9-]+ is a (SHOULD|INFO)"


def matching(pattern: str | None, excluding: tuple[str, ...] = ()) -> str:
    """A messageRegex (Allure matches the whole message): contains ``pattern``, none of ``excluding``."""
    guard = f"(?!.*({'|'.join(excluding)}))" if excluding else ""
    body = f".*({pattern}).*" if pattern else ".*"
    return f"(?s){guard}{body}"


# In order; the exclusions make sure that a result falls into one category only.
CATEGORIES = [
    {"name": NO_KIMI, "matchedStatuses": ["skipped", "failed", "broken"], "messageRegex": matching(_NO_KIMI_TEXT)},
    {"name": UPSTREAM, "matchedStatuses": ["skipped", "failed", "broken"], "messageRegex": matching(_UPSTREAM_TEXT, (_NO_KIMI_TEXT,))},
    {"name": REPLAY, "matchedStatuses": ["failed", "broken"], "messageRegex": matching(_REPLAY_TEXT, (_NO_KIMI_TEXT, _UPSTREAM_TEXT))},
    {"name": CONTRACT, "matchedStatuses": ["failed", "broken"], "messageRegex": matching(None, (_NO_KIMI_TEXT, _UPSTREAM_TEXT, _REPLAY_TEXT))},
    {"name": SHOULD_WARN, "matchedStatuses": ["skipped"], "messageRegex": matching(_WARN_TEXT, (_NO_KIMI_TEXT, _UPSTREAM_TEXT))},
]


def properties_line(key: str, value: object) -> str:
    """One line of a Java .properties file (what Allure reads), escaped."""

    def escape(text: str, is_key: bool) -> str:
        out = []
        for ch in text:
            if ch == "\\":
                out.append("\\\\")
            elif ch in "\n\r\t":
                out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t"}[ch])
            elif is_key and ch in " =:#!":
                out.append("\\" + ch)
            elif ord(ch) > 0x7E or ord(ch) < 0x20:
                out.append(f"\\u{ord(ch):04x}")
            else:
                out.append(ch)
        return "".join(out)

    return f"{escape(key, True)}={escape(str(value), False)}"


def environment(kit) -> dict[str, str]:
    build = kit.build
    env = {
        "kit.version": __version__,
        "letta.version": build.letta_version or "unknown",
        "letta.path": build.letta_path or "unknown",
        "python": build.python,
        "verdict": kit.verdicts.overall(),
        "strict": "yes" if kit.strict else "no",
    }
    binding = dict(build.binding)
    env["binding"] = binding.pop("source", "default")
    env.update({f"binding.{role}": value for role, value in binding.items()})
    if kit.verdicts.no_kimi:
        env["no_kimi_provider"] = kit.verdicts.no_kimi
    return env


def not_applicable_result(behavior_id: str, reason: str):
    """An Allure result for a behaviour no test ran for (so the report names every ID)."""
    from allure_commons.model2 import Label, Link, StatusDetails, TestResult
    from allure_commons.types import LabelType, LinkType
    from allure_commons.utils import md5, now

    behavior = BEHAVIORS[behavior_id]
    full_name = f"kimi_conformance.contract#{behavior_id}"
    stamp = now()
    return TestResult(
        uuid=str(uuid.uuid4()), historyId=md5(full_name), testCaseId=md5(full_name), fullName=full_name,
        name=f"{behavior_id}: not-applicable (no test ran)", status="skipped", stage="finished",
        statusDetails=StatusDetails(message=f"not-applicable: {reason}"),
        description=f"{behavior_id} ({behavior.level}, {behavior.guide}): {behavior.summary}.",
        labels=[Label(LabelType.FEATURE, behavior.group), Label(LabelType.STORY, behavior_id),
                Label(LabelType.SEVERITY, SEVERITY[behavior.level]), Label(LabelType.SUITE, "not applicable"),
                Label(LabelType.FRAMEWORK, "kimi-conformance")],
        links=[Link(LinkType.LINK, url, name) for name, url in guide_links.links(behavior.guide)],
        start=stamp, stop=stamp,
    )


def write_json(path: Path, data) -> None:
    tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def scrub_folder(folder: Path) -> int:
    """Scrub every text file of ``folder`` in place (atomically); the number of files changed."""
    # binary attachments (screenshots) hold no text secret: redact_file leaves them
    return sum(redact_file(p) for p in sorted(folder.iterdir()) if p.is_file() and not p.name.endswith(".tmp"))


class AllureResults:
    def __init__(self, kit):
        self.kit = kit

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        folder = getattr(session.config.option, "allure_report_dir", None)
        if not folder or self.kit.is_worker or self.kit.verdicts.input_errors:
            return
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        lines = [properties_line(k, v) for k, v in environment(self.kit).items()]
        tmp = folder / f"environment.properties.{os.getpid()}.tmp"
        tmp.write_text("\n".join(lines) + "\n", encoding="latin-1")
        os.replace(tmp, folder / "environment.properties")
        write_json(folder / "categories.json", CATEGORIES)
        self.write_not_applicable(folder)
        scrub_folder(folder)

    def write_not_applicable(self, folder: Path) -> None:
        from allure_commons.logger import AllureFileLogger

        verdicts = self.kit.verdicts
        reason = verdicts.no_kimi or "no test of this behaviour ran in this run (REST-* need the black-box mode, DRIFT-* the live mode)"
        logger = AllureFileLogger(folder)
        for behavior_id in BEHAVIORS:
            if not verdicts.outcomes.get(behavior_id):
                logger.report_result(not_applicable_result(behavior_id, reason))
