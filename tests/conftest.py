"""Fixtures for the kit's own tests: running the kit against a build and reading its verdict."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

KIT_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(KIT_ROOT))


@dataclass
class KitRun:
    build: str
    returncode: int
    output: str
    report: dict | None

    @property
    def behaviors(self) -> dict:
        return self.report["behaviors"]

    def red(self) -> set[str]:
        return {bid for bid, verdict in self.behaviors.items() if verdict == "fail"}


class MatrixRun:
    """The verdict matrix, run once per session (every build, two at a time, fork runner), then a
    sample of it (one build per kind of change, ``matrix.compare_sample``) under the subprocess runner."""

    def __init__(self, out_dir: Path, show=print):
        from kimi_conformance import builds, matrix

        self.out_dir = out_dir
        names = sorted(builds.all_builds())
        start, servers = time.perf_counter(), []
        self.cells = {c.build: c for c in matrix.run_matrix(names, jobs=2, out_dir=out_dir, runner="fork", servers=servers,
                                                            progress=lambda c, k, n: show(f"matrix {matrix.format_progress(c, k, n)}"))}
        self.score = matrix.score(list(self.cells.values()), time.perf_counter() - start)
        self.score["fork_servers"] = servers
        self.sample = matrix.compare_sample(names, list(self.cells.values()))
        self.subprocess_cells = {c.build: c for c in matrix.run_matrix(
            self.sample, jobs=2, out_dir=out_dir / "subprocess", runner="subprocess",
            progress=lambda c, k, n: show(f"matrix, runner comparison {matrix.format_progress(c, k, n)}"))}
        self.runner_differences = matrix.runner_differences(list(self.cells.values()), list(self.subprocess_cells.values()))
        self.score["runner_differences"] = self.runner_differences
        (out_dir / "score.json").write_text(json.dumps(self.score, indent=2))
        self.summary = [*matrix.format_score(self.score),
                        f"runner comparison: {len(self.sample)} build(s) under both runners, {len(self.runner_differences)} verdict(s) differ"]


_MATRIX: list[MatrixRun] = []


@pytest.fixture(scope="session")
def verdict_matrix(request) -> MatrixRun:
    """Every build's verdict (reports, logs and score.json under reports/matrix/)."""
    if not _MATRIX:
        _MATRIX.append(MatrixRun(KIT_ROOT / "reports" / "matrix", show=_terminal_line(request.config)))
    return _MATRIX[0]


def _terminal_line(config):
    """A writer of one progress line to the user's terminal, past pytest's capture, from the
    matrix's threads; under xdist the worker's stderr is the controller's terminal."""
    capman = config.pluginmanager.getplugin("capturemanager")

    def show(line: str) -> None:
        with capman.global_and_fixture_disabled():
            sys.stderr.write(f"{line}\n")
            sys.stderr.flush()

    return show


def pytest_collection_modifyitems(items):
    """The verdict matrix's tests first: a plain ``run_kit`` of a build it ran (the reference,
    upstream and moved-provider builds of test_verdicts and test_live) then reads its report
    instead of paying another Letta import per run."""
    items.sort(key=lambda item: "verdict_matrix" not in getattr(item, "fixturenames", ()))


def _matrix_summary() -> list[str]:
    return [*_MATRIX[0].summary, f"score: {_MATRIX[0].out_dir / 'score.json'}"] if _MATRIX else []


_WORKERS_SUMMARY: list[str] = []  # under xdist: the summary of the worker that ran the matrix


def pytest_sessionfinish(session):
    if hasattr(session.config, "workeroutput") and _MATRIX:
        session.config.workeroutput["verdict_matrix_summary"] = _matrix_summary()


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    _WORKERS_SUMMARY.extend(getattr(node, "workeroutput", {}).get("verdict_matrix_summary", []))


def pytest_terminal_summary(terminalreporter):
    lines = _matrix_summary() or _WORKERS_SUMMARY
    if lines:
        terminalreporter.section("verdict matrix: detection score")
        for line in lines:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def run_kit(tmp_path_factory):
    """``run_kit(build, *pytest_args, env=None)``: the kit run as a user runs it (the CLI), with its JSON report.

    A plain run of a build the verdict matrix already ran is read from the matrix's report.
    ``env`` changes the environment of that one run (None removes a variable); such a run
    (live mode, against a stand-in whose state the test sets) is never cached.
    """
    cache: dict[tuple, KitRun] = {}

    def run(build: str, *args: str, env: dict[str, str | None] | None = None) -> KitRun:
        key = (build, *args)
        if env is not None:
            return _run_cli(build, args, tmp_path_factory, env)
        if key not in cache and not args and _MATRIX and build in _MATRIX[0].cells:
            # the launcher's run of the comparison sample when there is one (as a user runs it)
            cell = _MATRIX[0].subprocess_cells.get(build) or _MATRIX[0].cells[build]
            report = Path(cell.report)
            log = Path(cell.report).with_suffix(".log")
            cache[key] = KitRun(build, cell.exit_code, log.read_text() if log.exists() else "",
                                json.loads(report.read_text()) if report.exists() else None)
        if key not in cache:
            cache[key] = _run_cli(build, args, tmp_path_factory)
        return cache[key]

    return run


def _run_cli(build: str, args, tmp_path_factory, env: dict[str, str | None] | None = None) -> KitRun:
    report = tmp_path_factory.mktemp("report") / "conformance.json"
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", build, "-q", "-p", "no:warnings",
           "--conformance-report", str(report), *args]
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    done = subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=900, env=environ)
    data = json.loads(report.read_text()) if report.exists() else None
    return KitRun(build, done.returncode, done.stdout + done.stderr, data)
