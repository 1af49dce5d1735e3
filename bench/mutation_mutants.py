"""Mutation benchmark: the mutants, what became of each, and how the outcomes read.

Shared by ``bench/mutation.py`` (the command), ``bench/mutation_workers.py`` (the runs)
and the fork server. Standard library and the kit's exit codes only.
"""

from __future__ import annotations

import difflib
import json
import random
from dataclasses import dataclass, field
from pathlib import Path

from kimi_conformance.exitcodes import EXIT_NO_KIMI, EXIT_USAGE

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_DIR = ROOT / "fixtures" / "builds" / "reference"
RED = ("fail", "warn")
EXIT_IMPORT_FAILED = 99  # the fork server's child (kimi_conformance.forkserver): the mutated module does not import
OUTCOMES = ("killed", "survived", "timeout", "error")


@dataclass(frozen=True)
class Target:
    """A reference module under mutation: its source in the kit, its place in the overlay."""

    name: str
    source: Path  # fixtures/builds/reference/<file>
    overlay_path: str  # where recipe.py puts it inside letta/
    module: str  # its import name


TARGETS = {
    "provider": Target("provider", REFERENCE_DIR / "kimi.py", "letta/schemas/providers/kimi.py", "letta.schemas.providers.kimi"),
    "client": Target("client", REFERENCE_DIR / "kimi_client.py", "letta/llm_api/kimi_client.py", "letta.llm_api.kimi_client"),
}


class BenchError(RuntimeError):
    """The benchmark cannot measure; the message says why and what to do."""


# --------------------------------------------------------------------------------------
# mutants


@dataclass
class Mutant:
    key: str
    target: str
    job_id: str
    operator: str
    occurrence: int
    line: int
    col: int
    definition: str | None
    before: str  # the source line(s) the mutant changes
    after: str  # what they become
    source: str = field(repr=False)

    @property
    def file(self) -> str:
        return str(TARGETS[self.target].source.relative_to(ROOT))

    @property
    def where(self) -> str:
        return f"{self.file}:{self.line}"


def changed_lines(original: str, mutated: str) -> tuple[int, str, str]:
    """(first changed line number, the original lines, the mutated lines), stripped and joined."""
    old, new = original.splitlines(), mutated.splitlines()
    matcher = difflib.SequenceMatcher(a=old, b=new, autojunk=False)
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        if tag != "equal":
            return i1 + 1, " / ".join(s.strip() for s in old[i1:i2]), " / ".join(s.strip() for s in new[j1:j2])
    return 0, "", ""


def mutants_from_cosmic_ray(entries: list[dict], targets: list[Target]) -> list[Mutant]:
    """Mutant records from ``bench/mutation_cosmic_ray.py mutants`` output, keyed per target."""
    by_source = {str(t.source): t for t in targets}
    originals = {t.name: t.source.read_text(encoding="utf-8") for t in targets}
    mutants: list[Mutant] = []
    ordered = sorted(entries, key=lambda e: (e["file"], e["start"], e["operator"], e["occurrence"]))
    counters: dict[str, int] = {}
    for entry in ordered:
        target = by_source.get(str(Path(entry["file"]).resolve()))
        if target is None:
            raise BenchError(f"cosmic-ray returned a mutant of {entry['file']}, which is not a benchmark target")
        if entry["source"] is None:
            continue  # cosmic-ray found no mutation to make at this occurrence
        line, before, after = changed_lines(originals[target.name], entry["source"])
        counters[target.name] = counters.get(target.name, 0) + 1
        mutants.append(
            Mutant(
                key=f"{target.name}-{counters[target.name]:03d}",
                target=target.name,
                job_id=entry["job_id"],
                operator=entry["operator"],
                occurrence=entry["occurrence"],
                line=line or entry["start"][0],
                col=entry["start"][1],
                definition=entry.get("definition"),
                before=before,
                after=after,
                source=entry["source"],
            )
        )
    return mutants


def sample(mutants: list[Mutant], size: int | None, seed: int) -> list[Mutant]:
    """A reproducible random subset (all of them when ``size`` is None or not smaller)."""
    if size is None or size >= len(mutants):
        return list(mutants)
    if size < 1:
        raise BenchError(f"--sample must be at least 1 (got {size})")
    chosen = set(id(m) for m in random.Random(seed).sample(mutants, size))
    return [m for m in mutants if id(m) in chosen]


# --------------------------------------------------------------------------------------
# outcomes


@dataclass
class Result:
    key: str
    target: str
    file: str
    line: int
    col: int
    operator: str
    occurrence: int
    definition: str | None
    before: str
    after: str
    job_id: str
    outcome: str  # killed | survived | timeout | error
    killed_by: list[str]
    exit_code: int | None
    seconds: float
    log: str
    build: str = ""
    equivalent: str | None = None  # why a survivor is an equivalent mutant (bench/mutation_equivalent.toml)


def classify(exit_code: int | None, report: dict | None) -> tuple[str, list[str]]:
    """(outcome, why) from a run's exit code and JSON report.

    Killed: a red behaviour, the no-Kimi verdict, or a mutated module that does not
    import (the fork server's own exit code; the kit's usage error in a fresh
    interpreter: the suites themselves were green on the unmutated build and are a
    snapshot). A failing run with no red behaviour (a collection error, a crash of
    the kit) says nothing about the mutant: an error, left out of the score.
    """
    if exit_code is None:
        return "timeout", []
    if exit_code in (EXIT_IMPORT_FAILED, EXIT_USAGE):
        return "killed", ["the build does not import"]
    if exit_code == EXIT_NO_KIMI:
        return "killed", ["no Kimi provider"]
    red = sorted(bid for bid, verdict in (report or {}).get("behaviors", {}).items() if verdict in RED)
    if red:
        return "killed", red
    if report is None:
        return "error", [f"exit {exit_code} without a report"]
    if exit_code == 0:
        return "survived", []
    return "error", [f"exit {exit_code} without a red behaviour"]


def read_report(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _ratio(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


def summarize(results: list[Result]) -> dict:
    """Counts and scores per target.

    score = (killed + timeouts) / (mutants - errors); score_without_equivalent leaves
    the survivors judged equivalent out of the denominator as well.
    """
    summary = {}
    for name in sorted({r.target for r in results}, key=list(TARGETS).index):
        mine = [r for r in results if r.target == name]
        counts = {k: sum(1 for r in mine if r.outcome == k) for k in OUTCOMES}
        equivalent = sum(1 for r in mine if r.outcome == "survived" and r.equivalent)
        detected, judged = counts["killed"] + counts["timeout"], len(mine) - counts["error"]
        summary[name] = {"file": str(TARGETS[name].source.relative_to(ROOT)), "mutants": len(mine), "killed": counts["killed"],
                         "survived": counts["survived"], "equivalent": equivalent, "timeouts": counts["timeout"],
                         "errors": counts["error"], "score": _ratio(detected, judged),
                         "score_without_equivalent": _ratio(detected, judged - equivalent)}
    return summary


# --------------------------------------------------------------------------------------
# report


def _percent(ratio: float | None) -> str:
    return f"{100 * ratio:.1f}%" if ratio is not None else "-"


def format_table(summary: dict) -> list[str]:
    lines = [f"  {'module':10} {'mutants':>8} {'killed':>7} {'survived':>9} {'(equiv.)':>9} {'timeouts':>9} {'errors':>7} {'score':>7} {'w/o equiv.':>11}"]
    for name, s in summary.items():
        lines.append(f"  {name:10} {s['mutants']:8} {s['killed']:7} {s['survived']:9} {s['equivalent']:9} {s['timeouts']:9} "
                     f"{s['errors']:7} {_percent(s['score']):>7} {_percent(s['score_without_equivalent']):>11}")
    return lines


def _mutant_lines(r: Result, note: str = "") -> list[str]:
    return [f"  {r.key} {r.file}:{r.line}:{r.col} {r.operator} [{r.definition}]{note}", f"      - {r.before}", f"      + {r.after}"]


def format_report(results: list[Result], stages: list[dict], wall: float, header: str) -> list[str]:
    lines = [header]
    seen: list[str] = []
    for stage in stages:
        seen.append(stage["build"])
        startup = f", runner start {stage['startup_seconds']:.1f} s" if stage.get("startup_seconds") else ""
        baseline = f", unmutated suites {stage['baseline_seconds']:.1f} s" if "baseline_seconds" in stage else ""
        lines.append(f"killed on {' or '.join(seen)} ({stage['ran']} run{startup}{baseline}, timeout {stage['timeout_seconds']:.0f} s):")
        lines.extend(format_table(stage["modules"]))
    lines.append("score = (killed + timeouts) / (mutants - errors); w/o equiv.: the survivors judged equivalent left out too")
    lines.append(f"wall time {wall:.1f} s")
    survivors = [r for r in results if r.outcome == "survived"]
    sections = [
        ("surviving mutants not judged (each is an equivalent mutant or a missing test)",
         [_mutant_lines(r) for r in survivors if not r.equivalent]),
        ("surviving mutants judged equivalent (bench/mutation_equivalent.toml)",
         [[*_mutant_lines(r), f"      why: {r.equivalent}"] for r in survivors if r.equivalent]),
        ("errors (no verdict)", [_mutant_lines(r, f" -- {', '.join(r.killed_by)}") for r in results if r.outcome == "error"]),
    ]
    for title, entries in sections:
        if entries:
            lines.append(f"{title}:")
        for entry in entries:
            lines.extend(entry)
    return lines
