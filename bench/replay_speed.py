"""Replay suite wall time against the import floor, measured in the same run.

    python3 bench/replay_speed.py [BUILD ...]        (default: both reference builds)

For each build: the floor is `python -c "from letta.server.server import SyncServer"`
in the build's environment (best of 3); the suite is `python -m pytest suites` there
(best of 3), serially and with `-n 2`. Prints the ratios; the target is suite/floor <= 1.5.
Run by hand: a figure, not a timed test.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kimi_conformance import builds  # noqa: E402


def best_of(n: int, cmd: list[str], env: dict) -> float:
    times = []
    for _ in range(n):
        start = time.perf_counter()
        done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode not in (0,):
            raise SystemExit(f"{' '.join(cmd)} exited {done.returncode}:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return min(times)


def main(names: list[str]) -> None:
    print(f"{'build':20} {'floor s':>8} {'serial s':>9} {'ratio':>6} {'-n 2 s':>8} {'ratio':>6}")
    for name in names or ["reference-0.11.7", "reference-0.16.8"]:
        build = builds.ensure_build(name)
        with tempfile.TemporaryDirectory() as home:
            env = {**os.environ, "HOME": home, "PYTHONPATH": os.pathsep.join([*build.pythonpath(), str(ROOT)])}
            py = str(build.python)
            floor = best_of(3, [py, "-c", "from letta.server.server import SyncServer"], env)
            report = ["--conformance-report", str(Path(home) / "r.json"), "-q", "-p", "no:warnings"]
            serial = best_of(3, [py, "-m", "pytest", "suites", *report], env)
            parallel = best_of(3, [py, "-m", "pytest", "suites", "-n", "2", *report], env)
        print(f"{name:20} {floor:8.2f} {serial:9.2f} {serial / floor:6.2f} {parallel:8.2f} {parallel / floor:6.2f}")


if __name__ == "__main__":
    main(sys.argv[1:])
