"""Wall time of the black-box REST suite per build, against its 60 s budget.

    python3 bench/rest_speed.py [--repeat N] [BUILD ...]     (default: both reference builds, N=1)

For each build: ``python3 -m kimi_conformance run --build B -m rest`` as a user runs it
(interpreter start, build check, two ``letta server`` processes started at once, the
tests, every process stopped), timed from launch to exit; the best of N runs is
printed with the suite's own duration and the budget verdict. Run by hand: a figure,
not a timed test.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_SECONDS = 60.0
DEFAULT_BUILDS = ["reference-0.11.7", "reference-0.16.8"]


def one_run(build: str) -> tuple[float, str]:
    """(wall seconds, pytest's own summary line) of one REST run; exits on a failed run."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", build, "-m", "rest", "-q", "-p", "no:warnings",
               "--conformance-report", str(Path(tmp) / "report.json"), "--rest-workdir", str(Path(tmp) / "rest")]
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-2000:]}")
    summary = next((line for line in reversed(done.stdout.splitlines()) if re.search(r"\d+ passed", line)), "")
    return wall, summary.strip("= ")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="bench/rest_speed.py", description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="*", default=DEFAULT_BUILDS)
    parser.add_argument("--repeat", type=int, default=1, help="runs per build; the best is printed (default 1)")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from kimi_conformance import builds

    print(f"{'build':24} {'wall s':>7} {'budget':>7}  pytest")
    for name in args.builds:
        builds.ensure_build(name)  # making a build is not part of the suite's time
        wall, summary = min(one_run(name) for _ in range(max(1, args.repeat)))
        verdict = "ok" if wall < BUDGET_SECONDS else "OVER"
        print(f"{name:24} {wall:7.1f} {verdict:>7}  {summary}", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
