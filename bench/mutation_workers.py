"""Mutation benchmark: workers that run the suites against mutants of the reference code.

A worker owns a scratch copy of a build's overlay (the mutated file rewritten per
mutant) and a runner of ``kimi_conformance.forkserver`` (shared with the verdict
matrix): ``fork`` (Letta imported once, a forked child per run) or ``subprocess``
(a fresh interpreter per run).
Every worker runs the same snapshot of the kit's suites, copied when the run starts.
Standard library only.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from kimi_conformance import builds
from kimi_conformance.forkserver import RUNNERS, SERVER_START_SECONDS, RunnerError, drain
from mutation_mutants import EXIT_IMPORT_FAILED, ROOT, TARGETS, BenchError, Mutant, Result, classify, read_report

SUITE_ARGS = ["suites", "-x", "-q", "-p", "no:warnings", "--strict"]
# What a suite run needs of the kit: copied once per run, so edits to the checkout
# while the benchmark runs do not change the suites half-way.
KIT_SNAPSHOT = ("conftest.py", "pyproject.toml", "kimi_conformance", "suites", "cassettes")
TIMEOUT_FLOOR, TIMEOUT_FACTOR = 60.0, 5.0


def snapshot_kit(dest: Path) -> Path:
    """Copy what a suite run needs of the checkout (KIT_SNAPSHOT) to ``dest``."""
    dest.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in KIT_SNAPSHOT:
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dest / name, ignore=ignore)
        elif src.exists():
            shutil.copy2(src, dest / name)
        else:
            raise BenchError(f"the checkout has no {name}: the suites cannot run")
    return dest


class Worker:
    """A scratch overlay, a runner against it, and the mutants it runs one at a time."""

    def __init__(self, index: int, build: builds.Build, runner_name: str, root: Path, kit: Path, log_dir: Path):
        self.index, self.log_dir = index, log_dir
        self.dir = root / f"worker-{index}"
        self.scratch = self.dir / "overlay"
        self.home = self.dir / "home"
        self.home.mkdir(parents=True)
        with builds._locked(f"overlay-{build.name}"):  # not while another kit process remakes it
            shutil.copytree(build.overlay_dir / "letta", self.scratch / "letta", symlinks=True)
        self.originals = {}
        for target in TARGETS.values():
            placed = self.scratch / target.overlay_path
            original = target.source.read_text(encoding="utf-8")
            if not placed.exists() or placed.read_text(encoding="utf-8") != original:
                raise BenchError(f"{build.name}'s {target.overlay_path} is not {target.source.relative_to(ROOT)}: remake it "
                                 f"(python3 -m kimi_conformance build {build.name})")
            for stale in (placed.parent / "__pycache__").glob(f"{placed.stem}.*.pyc"):
                stale.unlink()  # a mutant of the same size and second must never meet an old .pyc
            self.originals[target.name] = (placed, original)
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        env.update(HOME=str(self.home), PYTHONPATH=os.pathsep.join([str(self.scratch), str(kit)]), PYTHONDONTWRITEBYTECODE="1")
        self.runner = RUNNERS[runner_name](build.python, env, kit, self.dir)

    def _suite(self, reload: list[str], log: Path, timeout: float) -> tuple[int | None, dict | None, float]:
        report = self.dir / "conformance.json"
        report.unlink(missing_ok=True)
        answer = self.runner.run(reload, [*SUITE_ARGS, "--conformance-report", str(report)], log, timeout,
                                 reload_failed_exit=EXIT_IMPORT_FAILED, refuse_unsafe=False)
        return answer["exit"], read_report(report), float(answer["seconds"])

    def baseline(self, timeout: float) -> float:
        """Run the unmutated suites; they must be green. Returns their wall time."""
        log = self.log_dir / f"baseline-{self.index}.log"
        code, report, seconds = self._suite([], log, timeout)
        outcome, red = classify(code, report)
        if outcome != "survived":
            raise BenchError(f"the suites are not green on the unmutated build ({outcome}: {', '.join(red) or 'no verdict'}); see {log}")
        return seconds

    def run(self, mutant: Mutant, timeout: float) -> Result:
        placed, original = self.originals[mutant.target]
        log = self.log_dir / f"{mutant.key}.log"
        placed.write_text(mutant.source, encoding="utf-8")
        try:
            code, report, seconds = self._suite([TARGETS[mutant.target].module], log, timeout)
            outcome, killed_by = classify(code, report)
        except RunnerError as e:
            code, seconds, outcome, killed_by = None, 0.0, "error", [str(e)]
            self.restart()
        finally:
            placed.write_text(original, encoding="utf-8")
        fields = {k: v for k, v in asdict(mutant).items() if k in Result.__dataclass_fields__}
        return Result(**fields, file=mutant.file, outcome=outcome, killed_by=killed_by, exit_code=code,
                      seconds=round(seconds, 2), log=str(log.relative_to(ROOT)) if log.is_relative_to(ROOT) else str(log))

    def restart(self) -> None:
        self.runner.stop()
        try:
            self.runner.start()
        except RunnerError:
            pass  # the next run reports it

    def stop(self) -> None:
        self.runner.stop()


def run_mutants(build: builds.Build, mutants: list[Mutant], *, runner: str = "fork", jobs: int = 1,
                timeout: float | None = None, log_dir: Path, check_baseline: bool = True,
                progress=print) -> tuple[list[Result], dict]:
    """Run ``mutants`` against ``build`` on ``jobs`` workers; returns the results and the timings."""
    log_dir.mkdir(parents=True, exist_ok=True)
    root = Path(tempfile.mkdtemp(prefix="kimi-mutation-"))
    workers: list[Worker] = []
    timings: dict = {"runner": runner, "jobs": jobs}
    try:
        kit = snapshot_kit(root / "kit")
        workers = [Worker(i, build, runner, root, kit, log_dir) for i in range(max(1, min(jobs, len(mutants) or 1)))]
        timings["startup_seconds"] = round(max(w.runner.start() for w in workers), 2)
        if check_baseline:
            timings["baseline_seconds"] = round(workers[0].baseline(timeout or SERVER_START_SECONDS), 2)
        if timeout is None:
            timeout = max(TIMEOUT_FLOOR, TIMEOUT_FACTOR * timings.get("baseline_seconds", TIMEOUT_FLOOR))
        timings["timeout_seconds"] = timeout
        results: list[Result] = []
        lock = threading.Lock()

        def work(worker: Worker, mutant: Mutant) -> None:
            result = worker.run(mutant, timeout)
            with lock:
                results.append(result)
                why = f" ({', '.join(result.killed_by)})" if result.killed_by else ""
                progress(f"[{len(results)}/{len(mutants)}] {mutant.where} {mutant.operator}: {result.outcome}{why} {result.seconds:.1f}s")

        drain(mutants, workers, work)
    finally:
        for w in workers:
            w.stop()
        shutil.rmtree(root, ignore_errors=True)
    order = {m.key: i for i, m in enumerate(mutants)}
    return sorted(results, key=lambda r: order[r.key]), timings
