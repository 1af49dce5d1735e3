"""The kit's copy of the behaviour table matches CONTRACT.md (when the spec is beside the checkout)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from kimi_conformance.contract import BEHAVIORS

SPEC = Path(__file__).resolve().parents[2] / "shared" / "spec" / "CONTRACT.md"


@pytest.mark.skipif(not SPEC.exists(), reason=f"{SPEC} is not beside this checkout")
def test_ids_and_levels_match_the_spec():
    found = dict(re.findall(r"\*\*([A-Z]+(?:-[A-Z0-9]+)+)\*\* (MUST|SHOULD|INFO)\b", SPEC.read_text()))
    assert found == {bid: b.level for bid, b in BEHAVIORS.items()}


def test_every_behaviour_has_a_suite_test():
    """Every ID of CONTRACT.md is the marker of some suite test (REST-* in suites/rest, DRIFT-* run live only)."""
    suites = "\n".join(p.read_text() for p in (Path(__file__).resolve().parents[1] / "suites").rglob("test_*.py"))
    marked = set(re.findall(r'@pytest\.mark\.behavior\("([A-Z0-9-]+)"\)', suites))
    assert set(BEHAVIORS) - marked == set()
