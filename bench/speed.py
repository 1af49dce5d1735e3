"""Speed and memory of the replay suite against the import floor, measured in the same run.

    python3 bench/speed.py [BUILD ...] [--repeat 3] [--matrix]

For each build (default: both reference builds): the floor is
`python -c "from letta.server.server import SyncServer"` in the build's environment;
the suite is pytest on `suites/` there as the launcher runs it (plugins loaded by name),
serially and with `-n 2`. Each figure is
the best of ``--repeat`` runs, the runs interleaved so that a busy machine weighs on
floor and suite alike. Peak memory is the largest resident set of any process of the
run. The verdict matrix's total time is read from reports/matrix/score.json (written
by the self-test or `python3 -m kimi_conformance matrix`), or measured with --matrix.
Targets: suite/floor <= 1.5 serially; matrix <= 15 minutes. A figure, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kimi_conformance import builds, cli  # noqa: E402

SUITE_TARGET, MATRIX_TARGET_S = 1.5, 15 * 60
# Runs a command and prints its wall time and the peak RSS (KiB) of it and its descendants.
MEASURE = (
    "import resource, subprocess, sys, time\n"
    "t = time.perf_counter(); rc = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, rc)\n"
)


def measure(cmd: list[str], env: dict) -> tuple[float, int]:
    done = subprocess.run([sys.executable, "-c", MEASURE, *cmd], cwd=ROOT, env=env, capture_output=True, text=True)
    seconds, rss_kib, rc = done.stdout.split()
    if rc != "0":
        raise SystemExit(f"{' '.join(cmd)} exited {rc}")
    return float(seconds), int(rss_kib)


def bench_build(name: str, repeat: int) -> dict:
    build = builds.ensure_build(name)
    py = str(build.python)
    with tempfile.TemporaryDirectory() as home:
        report = ["--conformance-report", str(Path(home) / "r.json"), "-q", "-p", "no:warnings"]
        # the suites as the launcher (`python3 -m kimi_conformance run`) runs them
        serial, env = cli.suite_invocation(py, ["suites", *report], build.pythonpath())
        parallel, _ = cli.suite_invocation(py, ["suites", "-n", "2", *report], build.pythonpath())
        env["HOME"] = home
        commands = {"floor": [py, "-c", "from letta.server.server import SyncServer"], "serial": serial, "parallel": parallel}
        runs: dict[str, list[tuple[float, int]]] = {k: [] for k in commands}
        for _ in range(repeat):
            for key, cmd in commands.items():
                runs[key].append(measure(cmd, env))
    best = {k: min(s for s, _ in v) for k, v in runs.items()}
    peak = {k: max(r for _, r in v) for k, v in runs.items()}
    return {"build": name, **{f"{k}_s": round(v, 2) for k, v in best.items()},
            "serial_ratio": round(best["serial"] / best["floor"], 2), "parallel_ratio": round(best["parallel"] / best["floor"], 2),
            "peak_rss_mib": {k: round(v / 1024) for k, v in peak.items()}}


def matrix_seconds(run: bool) -> float | None:
    score = ROOT / "reports" / "matrix" / "score.json"
    if run:
        subprocess.run([sys.executable, "-m", "kimi_conformance", "matrix"], cwd=ROOT)
    return json.loads(score.read_text()).get("seconds") if score.exists() else None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="*", default=["reference-0.11.7", "reference-0.16.8"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--matrix", action="store_true", help="run the verdict matrix now to time it")
    args = parser.parse_args()
    results = [bench_build(name, args.repeat) for name in args.builds]
    print(f"| build | floor s | suite s | ratio (target {SUITE_TARGET}) | suite -n 2 s | ratio | peak RSS MiB (floor / suite / -n 2) |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        rss = r["peak_rss_mib"]
        print(f"| {r['build']} | {r['floor_s']:.2f} | {r['serial_s']:.2f} | {r['serial_ratio']:.2f} | {r['parallel_s']:.2f} "
              f"| {r['parallel_ratio']:.2f} | {rss['floor']} / {rss['serial']} / {rss['parallel']} |")
    seconds = matrix_seconds(args.matrix)
    if seconds is None:
        print("verdict matrix: not run yet (python3 -m kimi_conformance matrix, or --matrix)")
    else:
        print(f"verdict matrix: {seconds / 60:.1f} min for every build on both Letta versions (target {MATRIX_TARGET_S // 60} min)")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps({"builds": results, "matrix_seconds": seconds}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
