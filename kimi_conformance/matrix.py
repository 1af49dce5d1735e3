"""The verdict matrix: the suites against every build, judged on their JSON reports.

    python3 -m kimi_conformance matrix [BUILD ...] [--jobs N] [--out DIR]

Every build has an expectation: a reference build and a variant are conformant (no
behaviour red), an upstream build gets the single "no Kimi provider" verdict (exit 6,
nothing red), and a defect turns exactly the behaviour IDs it declares (``expect`` in
its file under ``fixtures/defects/``) red — a red ID it did not declare is collateral,
a declared ID that stays green is missed, and either fails the matrix. "Red" is
``fail`` or ``warn`` (a SHOULD failure without ``--strict``).

The detection score (defects caught with exactly the right IDs, collateral reds,
false reds on correct builds) is printed and written to ``DIR/score.json``.
Standard library only, like the launcher.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

from kimi_conformance import builds
from kimi_conformance.exitcodes import EXIT_NO_KIMI, EXIT_OK

RED = ("fail", "warn")
DEFAULT_OUT = builds.KIT_ROOT / "reports" / "matrix"
CONFORMANT, NO_KIMI, DEFECT = "conformant", "no-kimi", "defect"


@dataclass
class Cell:
    """One build's run: what was expected, what its report says, how long it took."""

    build: str
    version: str
    kind: str
    expected: str  # CONFORMANT | NO_KIMI | DEFECT
    expected_red: list[str]
    red: list[str] = field(default_factory=list)
    verdict: str | None = None
    no_kimi: bool = False
    exit_code: int | None = None
    seconds: float = 0.0
    report: str = ""
    error: str | None = None

    @property
    def collateral(self) -> list[str]:
        return sorted(set(self.red) - set(self.expected_red))

    @property
    def missed(self) -> list[str]:
        return sorted(set(self.expected_red) - set(self.red))

    @property
    def ok(self) -> bool:
        if self.error:
            return False
        if self.expected == NO_KIMI:
            return self.no_kimi and not self.red and self.exit_code == EXIT_NO_KIMI
        if self.no_kimi:
            return False
        if self.expected == CONFORMANT:
            return not self.red and self.exit_code == EXIT_OK
        return not self.collateral and not self.missed

    def problem(self) -> str:
        if self.error:
            return self.error
        if self.ok:
            return ""
        if self.expected == NO_KIMI:
            return f"expected the no-Kimi verdict (exit {EXIT_NO_KIMI}); got exit {self.exit_code}, red {self.red or 'none'}"
        if self.no_kimi:
            return "the kit found no Kimi provider in this build"
        parts = []
        if self.missed:
            parts.append(f"missed {', '.join(self.missed)}")
        if self.collateral:
            parts.append(f"collateral red {', '.join(self.collateral)}")
        if not parts:
            parts.append(f"exit {self.exit_code}")
        return "; ".join(parts)


def expectation(build: builds.Build) -> tuple[str, list[str]]:
    if build.kind == "upstream":
        return NO_KIMI, []
    if build.kind == "defect":
        return DEFECT, sorted(build.expect)
    return CONFORMANT, []


def _kit_env() -> dict:
    env = dict(os.environ)
    env.pop("PYTHONPATH", None)  # the launcher sets the build's own
    return env


def run_cell(build: builds.Build, out_dir: Path, pytest_args: list[str]) -> Cell:
    expected, expected_red = expectation(build)
    cell = Cell(build.name, build.version, build.kind, expected, expected_red)
    report = out_dir / f"{build.name}.json"
    report.unlink(missing_ok=True)
    cell.report = str(report)
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", build.name, "-q", "-p", "no:warnings",
           "--conformance-report", str(report), *pytest_args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=builds.KIT_ROOT, env=_kit_env(), capture_output=True, text=True)
    cell.seconds = time.perf_counter() - start
    cell.exit_code = proc.returncode
    (out_dir / f"{build.name}.log").write_text(proc.stdout + proc.stderr)
    try:
        data = json.loads(report.read_text())
    except (OSError, ValueError):
        tail = " | ".join((proc.stdout + proc.stderr).strip().splitlines()[-3:])
        cell.error = f"no JSON report (exit {proc.returncode}): {tail}"
        return cell
    cell.verdict = data.get("verdict")
    cell.no_kimi = bool(data.get("no_kimi_provider"))
    cell.red = sorted(bid for bid, verdict in data.get("behaviors", {}).items() if verdict in RED)
    return cell


def run_matrix(names: list[str], jobs: int = 2, out_dir: Path = DEFAULT_OUT, pytest_args: list[str] | None = None,
               progress=None) -> list[Cell]:
    out_dir.mkdir(parents=True, exist_ok=True)
    every = builds.all_builds()
    targets = [every[n] for n in names]
    for version in sorted({b.version for b in targets}):
        builds.ensure_env(version)  # once, before the parallel runs
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_cell, b, out_dir, list(pytest_args or [])) for b in targets]
        cells = []
        for future in futures:
            cell = future.result()
            if progress:
                progress(cell)
            cells.append(cell)
    return cells


def score(cells: list[Cell], seconds: float | None = None) -> dict:
    defects = [c for c in cells if c.expected == DEFECT]
    correct = [c for c in cells if c.expected == CONFORMANT]
    caught_right = [c for c in defects if c.ok]
    return {
        "defect_runs": len(defects),
        "caught_with_right_ids": len(caught_right),
        "detection": round(len(caught_right) / len(defects), 4) if defects else None,
        "missed": {c.build: c.missed for c in defects if c.missed},
        "collateral_reds": {c.build: c.collateral for c in defects if c.collateral},
        "false_reds_on_correct_builds": {c.build: c.red for c in correct if c.red or c.no_kimi},
        "no_kimi_verdicts_wrong": [c.build for c in cells if c.expected == NO_KIMI and not c.ok],
        "errors": {c.build: c.error for c in cells if c.error},
        "all_ok": all(c.ok for c in cells),
        "seconds": round(seconds, 1) if seconds is not None else None,
        "cells": [{**asdict(c), "ok": c.ok, "problem": c.problem()} for c in cells],
    }


def format_cell(cell: Cell) -> str:
    mark = "ok  " if cell.ok else "FAIL"
    expected = ",".join(cell.expected_red) if cell.expected == DEFECT else cell.expected
    got = ",".join(cell.red) if cell.red else ("no-kimi" if cell.no_kimi else "none red")
    line = f"{mark} {cell.build:44} expect {expected:32} got {got:32} {cell.seconds:5.1f}s"
    return line + (f"  <- {cell.problem()}" if not cell.ok else "")


def format_score(result: dict) -> list[str]:
    lines = [
        f"detection: {result['caught_with_right_ids']}/{result['defect_runs']} defect runs caught with exactly the declared IDs"
        + (f" ({result['detection']:.0%})" if result["detection"] is not None else ""),
        f"collateral reds: {sum(len(v) for v in result['collateral_reds'].values())}"
        + (f" {result['collateral_reds']}" if result["collateral_reds"] else ""),
        f"false reds on correct builds: {len(result['false_reds_on_correct_builds'])}"
        + (f" {result['false_reds_on_correct_builds']}" if result["false_reds_on_correct_builds"] else ""),
    ]
    if result["missed"]:
        lines.append(f"missed: {result['missed']}")
    if result["no_kimi_verdicts_wrong"]:
        lines.append(f"wrong no-Kimi verdicts: {result['no_kimi_verdicts_wrong']}")
    if result["errors"]:
        lines.append(f"errors: {result['errors']}")
    if result["seconds"] is not None:
        lines.append(f"matrix time: {result['seconds']:.0f} s ({result['seconds'] / 60:.1f} min)")
    return lines


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m kimi_conformance matrix", description=__doc__.split("\n\n")[0])
    parser.add_argument("names", nargs="*", help="builds (default: every build; see `build --list`)")
    parser.add_argument("--jobs", type=int, default=2, help="builds run at once (default 2)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"folder for reports, logs and score.json (default {DEFAULT_OUT})")
    args, pytest_args = parser.parse_known_args(argv)
    try:
        every = builds.all_builds()
        names = args.names or sorted(every)
        unknown = [n for n in names if n not in every]
        if unknown:
            raise builds.BuildError(f"unknown build(s) {', '.join(unknown)}; see `python3 -m kimi_conformance build --list`")
        start = time.perf_counter()
        cells = run_matrix(names, args.jobs, args.out, pytest_args, progress=lambda c: print(format_cell(c), flush=True))
    except builds.BuildError as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    result = score(cells, time.perf_counter() - start)
    (args.out / "score.json").write_text(json.dumps(result, indent=2))
    print("\n".join(format_score(result)))
    print(f"score: {args.out / 'score.json'}")
    return 0 if result["all_ok"] else 1
