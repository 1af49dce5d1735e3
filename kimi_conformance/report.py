"""Verdicts per behaviour ID, the JSON report and the terminal summary."""

from __future__ import annotations

import json
import os
import platform
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from kimi_conformance import __version__
from kimi_conformance.contract import BEHAVIORS, MUST
from kimi_conformance.redact import redact_data

PASS, FAIL, WARN, NA = "pass", "fail", "warn", "not-applicable"
PARTIAL = "partial"  # a selected part passed, but some MUST behaviours were not checked (never "conformant")
UNAVAILABLE = "upstream-unavailable"  # live mode: the live API could not answer (neither pass nor fail)
_RANK = {NA: 0, PASS: 1, UNAVAILABLE: 2, WARN: 3, FAIL: 4}

# user_properties keys carried on test reports (they cross xdist's wire)
PROP_BEHAVIOR = "kimi_behavior"
PROP_OUTCOME = "kimi_outcome"
PROP_FINDING = "kimi_finding"
PROP_INPUT_ERROR = "kimi_input_error"


@dataclass
class BuildIdentity:
    letta_version: str | None = None
    letta_path: str | None = None
    python: str = field(default_factory=lambda: f"{platform.python_version()} ({sys.executable})")
    binding: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"letta_version": self.letta_version, "letta_path": self.letta_path, "python": self.python, "binding": self.binding}


@dataclass
class Verdicts:
    strict: bool = False
    outcomes: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    failures: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    findings: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    no_kimi: str | None = None
    input_errors: set[str] = field(default_factory=set)  # the kit's inputs (cassettes), not the build
    isolation: list[str] = field(default_factory=list)  # what the run left changed in its process
    sections: dict[str, dict] = field(default_factory=dict)  # further top-level blocks of the JSON report ("live")

    def record(self, behavior: str, outcome: str, nodeid: str, findings: list[str]) -> None:
        self.outcomes[behavior].append(outcome)
        if outcome in (FAIL, WARN):
            self.failures[behavior].append(nodeid)
        for f in findings:
            if f not in self.findings[behavior]:
                self.findings[behavior].append(f)

    def verdict(self, behavior: str) -> str:
        if self.no_kimi:
            return NA
        seen = self.outcomes.get(behavior, [])
        return max(seen, key=_RANK.__getitem__) if seen else NA

    def behaviors(self) -> dict[str, str]:
        return {bid: self.verdict(bid) for bid in BEHAVIORS}

    def overall(self) -> str:
        if self.no_kimi:
            return "no-kimi-provider"
        verdicts = self.behaviors()
        if all(v == NA for v in verdicts.values()):
            return "untested"  # no behaviour was checked (everything deselected or skipped): no claim
        if any(v == FAIL for v in verdicts.values()):
            return "non-conformant"
        if any(v == UNAVAILABLE for v in verdicts.values()):
            return UNAVAILABLE
        if self.not_checked():
            return PARTIAL  # a selection (-k, --behavior, a test path) left MUSTs out: no claim of conformance
        if any(v == WARN for v in verdicts.values()):
            return "conformant-with-warnings"
        return "conformant"

    def not_checked(self) -> list[str]:
        """MUST behaviours no selected test spoke about (a skipped test still counts as checked)."""
        return [bid for bid, b in BEHAVIORS.items() if b.level == MUST and bid not in self.outcomes]

    def to_json(self, build: BuildIdentity) -> dict:
        return {
            "kit": {"name": "kimi-conformance", "version": __version__},
            "build": build.as_dict(),
            "strict": self.strict,
            "verdict": self.overall(),
            "no_kimi_provider": self.no_kimi,
            "not_checked": [] if self.no_kimi else self.not_checked(),
            "behaviors": self.behaviors(),
            "levels": {bid: b.level for bid, b in BEHAVIORS.items()},
            "failed_tests": {bid: ids for bid, ids in sorted(self.failures.items())},
            "findings": {bid: items for bid, items in sorted(self.findings.items()) if items},
            "isolation": sorted(set(self.isolation)),
            **self.sections,
        }

    def write(self, path: Path, build: BuildIdentity) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(redact_data(self.to_json(build)), indent=2, sort_keys=False) + "\n")  # no secret leaves the process
        os.replace(tmp, path)

    def summary_lines(self, build: BuildIdentity) -> list[str]:
        lines = []
        if self.no_kimi:
            lines.append(f"VERDICT: {self.no_kimi}")
            lines.append("every behaviour: not-applicable")
        else:
            for bid, verdict in self.behaviors().items():
                level = BEHAVIORS[bid].level
                lines.append(f"{bid:26} {level:6} {verdict}")
            for bid, items in sorted(self.findings.items()):
                for item in items:
                    lines.append(f"INFO {bid}: {item}")
            overall = self.overall()
            if overall == PARTIAL:
                missing = self.not_checked()
                overall = f"partial: {len(missing)} MUST behaviours not checked ({', '.join(missing)})"
            lines.append(f"VERDICT: {overall}" + ("" if self.strict else " (SHOULD failures are warnings; --strict makes them fail)"))
        lines.append(f"build: letta {build.letta_version} at {build.letta_path}; python {build.python}")
        return lines

