"""Speed and memory of the replay suite against the import floor, and the verdict matrix per runner, measured in the same run.

    python3 bench/speed.py [BUILD ...] [--repeat 3] [--matrix [--matrix-builds NAME ... | --matrix-sample N] [--jobs 2]] [--skip-suite]

For each build (default: both reference builds): the floor is
`python -c "from letta.server.server import SyncServer"` in the build's environment;
the suite is pytest on `suites/` there as the launcher runs it (plugins loaded by name),
serially and with `-n 2`. Each figure is
the best of ``--repeat`` runs, the runs interleaved so that a busy machine weighs on
floor and suite alike. Peak memory is the largest resident set of any process of the
run. Targets: suite/floor <= 1.5 serially.

With ``--matrix``: the verdict matrix (`python3 -m kimi_conformance matrix`) over the
same builds (every build, or ``--matrix-builds``, or an evenly spread ``--matrix-sample``)
under each runner, ``fork`` and ``subprocess``, the two runs interleaved (their order
alternates over ``--repeat``), side by side: wall time (best of the repeats), the ratio
fork/subprocess (target <= 1/3), the CPU seconds of each run (the matrix and every process
it waited for: fairer than wall time on a shared machine), and whether every build got the
same verdict under both. Without it, the matrix time is read from reports/matrix/score.json. A figure, not a timed test.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kimi_conformance import builds, cli  # noqa: E402

SUITE_TARGET, MATRIX_TARGET_S, RUNNER_TARGET = 1.5, 15 * 60, 1 / 3
RUNNERS = ("fork", "subprocess")
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


def matrix_seconds() -> float | None:
    score = ROOT / "reports" / "matrix" / "score.json"
    return json.loads(score.read_text()).get("seconds") if score.exists() else None


def spread(names: list[str], size: int | None) -> list[str]:
    """``size`` builds evenly spread over the sorted names (every kind and version), or all of them."""
    names = sorted(names)
    if not size or size >= len(names):
        return names
    return sorted({names[round(i * (len(names) - 1) / (size - 1))] for i in range(size)}) if size > 1 else names[:1]


def bench_matrix(names: list[str], jobs: int, repeat: int) -> dict:
    """The matrix over ``names`` under each runner, interleaved; wall times and the verdicts compared build by build."""
    from kimi_conformance import matrix

    out = ROOT / "reports" / "bench"
    walls: dict[str, list[float]] = {r: [] for r in RUNNERS}
    cpus: dict[str, list[float]] = {r: [] for r in RUNNERS}
    cells: dict[str, dict] = {}
    for i in range(repeat):
        for runner in (RUNNERS if i % 2 == 0 else RUNNERS[::-1]):
            folder = out / f"matrix-{runner}"
            start, used = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run([sys.executable, "-m", "kimi_conformance", "matrix", "--runner", runner, "--jobs", str(jobs),
                            "--out", str(folder), *names], cwd=ROOT)  # its [k/N] lines are the progress
            walls[runner].append(time.perf_counter() - start)
            now = resource.getrusage(resource.RUSAGE_CHILDREN)  # the matrix and every process it waited for
            cpus[runner].append(now.ru_utime - used.ru_utime + now.ru_stime - used.ru_stime)
            score = json.loads((folder / "score.json").read_text())
            cells[runner] = {c["build"]: c for c in score["cells"]}
    keys = {r: {b: matrix.verdict_key(matrix.Cell(**{k: v for k, v in c.items() if k in matrix.Cell.__dataclass_fields__}))
                for b, c in cells[r].items()} for r in RUNNERS}
    differ = sorted(b for b in names if keys["fork"].get(b) != keys["subprocess"].get(b))
    best = {r: min(v) for r, v in walls.items()}
    forked = sum(1 for c in cells["fork"].values() if c["runner"] in ("fork", matrix.IMPORT))  # in a fork server, either level
    cpu = {r: min(v) for r, v in cpus.items()}
    return {"builds": len(names), "jobs": jobs, "repeat": repeat, "seconds": {r: round(v, 1) for r, v in best.items()},
            "ratio": round(best["fork"] / best["subprocess"], 3), "forked_builds": forked,
            "cpu_seconds": {r: round(v, 1) for r, v in cpu.items()}, "cpu_ratio": round(cpu["fork"] / cpu["subprocess"], 3),
            "all_ok": {r: all(c["ok"] for c in cells[r].values()) for r in RUNNERS}, "differing_verdicts": differ, "names": names}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", nargs="*", default=["reference-0.11.7", "reference-0.16.8"])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--skip-suite", action="store_true", help="only the matrix (with --matrix)")
    parser.add_argument("--matrix", action="store_true", help="run the verdict matrix under both runners now and compare them")
    parser.add_argument("--matrix-builds", nargs="+", metavar="NAME", help="the matrix's builds (default: every build)")
    parser.add_argument("--matrix-sample", type=int, metavar="N", help="N builds evenly spread over every build")
    parser.add_argument("--jobs", type=int, default=2, help="the matrix's --jobs (default 2)")
    args = parser.parse_args()
    results = [] if args.skip_suite else [bench_build(name, args.repeat) for name in args.builds]
    if results:
        print(f"| build | floor s | suite s | ratio (target {SUITE_TARGET}) | suite -n 2 s | ratio | peak RSS MiB (floor / suite / -n 2) |")
        print("|---|---|---|---|---|---|---|")
    for r in results:
        rss = r["peak_rss_mib"]
        print(f"| {r['build']} | {r['floor_s']:.2f} | {r['serial_s']:.2f} | {r['serial_ratio']:.2f} | {r['parallel_s']:.2f} "
              f"| {r['parallel_ratio']:.2f} | {rss['floor']} / {rss['serial']} / {rss['parallel']} |")
    runners = None
    if args.matrix:
        names = args.matrix_builds or spread(list(builds.all_builds()), args.matrix_sample)
        runners = bench_matrix(names, args.jobs, max(1, args.repeat if args.skip_suite else 1))
        s = runners["seconds"]
        c = runners["cpu_seconds"]
        print(f"| matrix: builds | --jobs | fork runner s | subprocess runner s | fork/subprocess (target <= {RUNNER_TARGET:.2f}) "
              "| CPU s fork / subprocess | CPU ratio | run in the fork server | same verdicts |")
        print("|---|---|---|---|---|---|---|---|---|")
        print(f"| {runners['builds']} | {runners['jobs']} | {s['fork']:.0f} | {s['subprocess']:.0f} | {runners['ratio']:.2f} "
              f"| {c['fork']:.0f} / {c['subprocess']:.0f} | {runners['cpu_ratio']:.2f} "
              f"| {runners['forked_builds']}/{runners['builds']} | {runners['builds'] - len(runners['differing_verdicts'])}/{runners['builds']} |")
        if runners["differing_verdicts"]:
            print(f"VERDICTS DIFFER between the runners: {', '.join(runners['differing_verdicts'])}")
        if not all(runners["all_ok"].values()):
            print(f"matrix not all ok: {runners['all_ok']} (see reports/bench/matrix-*/score.json)")
    seconds = matrix_seconds()
    if seconds is None:
        print("verdict matrix (reports/matrix): not run yet (python3 -m kimi_conformance matrix)")
    else:
        print(f"verdict matrix (reports/matrix/score.json): {seconds / 60:.1f} min (target {MATRIX_TARGET_S // 60} min)")
    out = ROOT / "reports" / "bench"
    out.mkdir(parents=True, exist_ok=True)
    (out / "speed.json").write_text(json.dumps({"builds": results, "matrix_seconds": seconds, "matrix_runners": runners}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
