"""The verdict matrix: the kit is red on every catalogued defect with exactly its IDs, green on correct builds.

Every build (`python3 -m kimi_conformance build --list`) is run through the kit's
CLI, two at a time; each expectation is read from the build's JSON report:
reference builds and variants green, upstream builds the single no-Kimi verdict,
each defect of fixtures/defects/ red on exactly the IDs it declares.
"""

from __future__ import annotations

import pytest

from kimi_conformance import builds
from kimi_conformance.contract import BEHAVIORS, INFO

ALL_BUILDS = sorted(builds.all_builds())
DEFECTS = {name: b for name, b in builds.all_builds().items() if b.kind == "defect"}
# REST-* are black-box behaviours (the REST suite); their defects live there.
IN_PROCESS = {bid for bid, b in BEHAVIORS.items() if b.level != INFO and not bid.startswith("REST-")}


@pytest.mark.parametrize("build", ALL_BUILDS)
def test_build_gets_its_expected_verdict(verdict_matrix, build):
    """A build's JSON report matches its expectation (green / no-Kimi / exactly the declared IDs red)."""
    cell = verdict_matrix.cells[build]
    assert cell.ok, f"{build}: {cell.problem()} (log: {cell.report[:-5]}.log)"


def test_detection_score_is_complete(verdict_matrix):
    """Every defect caught with exactly its IDs, no collateral reds, no false reds on correct builds."""
    score = verdict_matrix.score
    assert score["caught_with_right_ids"] == score["defect_runs"], score["missed"] or score["collateral_reds"]
    assert score["false_reds_on_correct_builds"] == {}
    assert not score["errors"]


def test_the_catalogue_covers_every_must_and_should():
    """At least 30 defects, and every MUST and SHOULD (but the REST ones) is the declared target of one."""
    assert len({b.spec_file for b in DEFECTS.values()}) >= 30
    declared = {bid for b in DEFECTS.values() for bid in b.expect}
    assert IN_PROCESS - declared == set(), f"no defect targets {sorted(IN_PROCESS - declared)}"
    assert declared <= set(BEHAVIORS), f"unknown IDs declared: {sorted(declared - set(BEHAVIORS))}"


@pytest.mark.parametrize("name", sorted(DEFECTS))
def test_each_defect_declares_what_it_breaks(name):
    """A defect file says what mistake it is and which behaviour IDs it must turn red."""
    defect = DEFECTS[name]
    assert defect.spec.get("description"), f"{defect.spec_file}: no description"
    assert defect.expect, f"{defect.spec_file}: no expect = [...]"
