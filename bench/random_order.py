"""Order independence: the suites (and the self-test) in random order, 20 seeds, verdicts compared.

    python3 bench/random_order.py [--runs 20] [--build B ...] [--selftest-runs N]

Each run of the suites uses pytest-randomly with its own seed (odd seeds serially, even
seeds under ``-n 2``) against each build (default: both reference builds), and its
JSON report's verdicts are compared with the first run's of that build. A self-test
run (``--selftest-runs``, the verdict matrix left out: it is run by the self-test
itself) compares test outcomes the same way. Prints one line per run and the count
of differing verdicts; exits 1 if any differ. Run by hand (a check, not a CI gate).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from kimi_conformance import builds  # noqa: E402

RANDOM = ["-p", "randomly"]  # pytest-randomly, off by default (addopts: -p no:randomly)


def suite_run(build: str, seed: int, out: Path) -> dict[str, str]:
    report = out / f"{build}-{seed}.json"
    parallel = ["-n", "2"] if seed % 2 == 0 else []
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", build, "-q", "-p", "no:warnings",
           *RANDOM, f"--randomly-seed={seed}", *parallel, "--conformance-report", str(report)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if not report.exists():
        raise SystemExit(f"{' '.join(cmd)} wrote no report (exit {done.returncode}):\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return json.loads(report.read_text())["behaviors"]


def selftest_run(seed: int, out: Path) -> dict[str, str]:
    junit = out / f"selftest-{seed}.xml"
    cmd = [sys.executable, "-m", "kimi_conformance", "selftest", "-q", "-p", "no:warnings", *RANDOM,
           f"--randomly-seed={seed}", "-n", "2", "-k", "not test_matrix", f"--junitxml={junit}"]
    subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    outcomes = {}
    for case in ET.parse(junit).getroot().iter("testcase"):
        name = f"{case.get('classname')}::{case.get('name')}"
        kinds = [child.tag for child in case if child.tag in ("failure", "error", "skipped")]
        outcomes[name] = kinds[0] if kinds else "passed"
    return outcomes


def differences(first: dict[str, str], other: dict[str, str]) -> list[str]:
    return [f"{k}: {first.get(k)} -> {other.get(k)}" for k in sorted(first.keys() | other.keys()) if first.get(k) != other.get(k)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20, help="seeds per build (default 20)")
    parser.add_argument("--build", action="append", help="build target (repeatable; default: both reference builds)")
    parser.add_argument("--selftest-runs", type=int, default=0, help="also run the self-test this many times (slow)")
    args = parser.parse_args()
    for name in args.build or ["reference-0.11.7", "reference-0.16.8"]:
        builds.ensure_build(name)
    differing = 0
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="kimi-kit-order-") as tmp:
        out = Path(tmp)
        plans = [(f"suites {name}", lambda seed, n=name: suite_run(n, seed, out), args.runs) for name in args.build or ["reference-0.11.7", "reference-0.16.8"]]
        plans.append(("self-test", lambda seed: selftest_run(seed, out), args.selftest_runs))
        for label, run, runs in plans:
            first = None
            for seed in range(1, runs + 1):
                t = time.perf_counter()
                verdicts = run(seed)
                first = first if first is not None else verdicts
                diff = differences(first, verdicts)
                differing += len(diff)
                mode = "-n 2" if seed % 2 == 0 or label == "self-test" else "serial"
                red = sorted(k for k, v in verdicts.items() if v in ("fail", "warn", "failure", "error"))
                print(f"{label:26} seed {seed:2} {mode:6} {time.perf_counter() - t:6.1f}s  {len(diff)} differing"
                      + (f"  red: {', '.join(red)}" if red else "") + "".join(f"\n    {d}" for d in diff), flush=True)
    print(f"differing verdicts: {differing}  ({time.perf_counter() - start:.0f}s)")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
