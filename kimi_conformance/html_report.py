"""``python -m kimi_conformance report``: run the suites and render the Allure HTML report.

Runs ``kimi_conformance run`` (same build options, extra arguments go to pytest) with
``--alluredir RESULTS --clean-alluredir``, then ``allure generate RESULTS -o OUT``.
The Allure command-line tool comes from the npm registry (``allure-commandline``,
pinned below), installed once into ``.builds/tools/allure-commandline-<version>``;
it needs Java (``java`` on PATH or ``JAVA_HOME``). The exit code is the suite run's
(0, 1, 6, ... as for ``run``), so a CI can gate on it and still keep the report;
a missing tool or a failed generation is a usage error (4) with one line saying why.

Standard library only (runs before any environment exists).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from kimi_conformance import builds
from kimi_conformance.exitcodes import EXIT_USAGE

ALLURE_PACKAGE = "allure-commandline"
ALLURE_VERSION = "2.44.0"
DEFAULT_RESULTS = "reports/allure-results"
DEFAULT_OUT = "reports/allure-report"
RUN_CODES_WITH_A_REPORT = (0, 1, 6)  # conformant, contract failure, no Kimi provider


class ReportError(RuntimeError):
    """The HTML report cannot be made; the message says which tool or step and why."""


def allure_home(version: str = ALLURE_VERSION) -> Path:
    return builds.build_root() / "tools" / f"{ALLURE_PACKAGE}-{version}"


def allure_executable(home: Path) -> Path:
    return home / "node_modules" / ALLURE_PACKAGE / "dist" / "bin" / "allure"


def java_executable() -> str:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and (Path(java_home) / "bin" / "java").exists():
        return str(Path(java_home) / "bin" / "java")
    found = shutil.which("java")
    if not found:
        raise ReportError("the Allure command-line tool needs Java: put `java` on PATH or set JAVA_HOME (Debian: apt-get install default-jre-headless)")
    return found


def ensure_allure(version: str = ALLURE_VERSION) -> Path:
    """The ``allure`` executable, installed from npm on first use (complete or not at all)."""
    home = allure_home(version)
    exe = allure_executable(home)
    if exe.exists():
        return exe
    npm = shutil.which("npm")
    if not npm:
        raise ReportError(f"installing {ALLURE_PACKAGE}@{version} needs npm (Node.js) on PATH (Debian: apt-get install npm)")
    home.parent.mkdir(parents=True, exist_ok=True)
    with builds._locked(f"{ALLURE_PACKAGE}-{version}"):
        if exe.exists():
            return exe
        builds.log(f"installing {ALLURE_PACKAGE}@{version} into {home} (npm)")
        staging = Path(tempfile.mkdtemp(prefix=f".{home.name}-", dir=home.parent))
        try:
            done = subprocess.run(
                [npm, "install", "--prefix", str(staging), "--no-audit", "--no-fund", "--loglevel=error", f"{ALLURE_PACKAGE}@{version}"],
                capture_output=True, text=True,
            )
            if done.returncode != 0 or not allure_executable(staging).exists():
                tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
                raise ReportError(f"npm install {ALLURE_PACKAGE}@{version} failed (exit {done.returncode}): {' / '.join(tail)}")
            os.replace(staging, home)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return exe


def generate(results: Path, out: Path, version: str = ALLURE_VERSION) -> Path:
    """``allure generate RESULTS -o OUT --clean``; the report's index.html."""
    if not results.is_dir() or not any(results.glob("*-result.json")):
        raise ReportError(f"{results} holds no Allure results (was the run made with --alluredir {results}?)")
    exe = ensure_allure(version)
    java = java_executable()
    env = dict(os.environ, JAVA_HOME=os.environ.get("JAVA_HOME") or str(Path(java).resolve().parent.parent))
    done = subprocess.run([str(exe), "generate", str(results), "-o", str(out), "--clean"], capture_output=True, text=True, env=env)
    index = out / "index.html"
    if done.returncode != 0 or not index.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ReportError(f"allure generate {results} failed (exit {done.returncode}): {' / '.join(tail)}")
    return index


def run_suites(pytest_and_build_args: list[str], results: Path) -> int:
    """``kimi_conformance run ... --alluredir RESULTS --clean-alluredir``; its exit code."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(builds.KIT_ROOT), *filter(None, [env.get("PYTHONPATH")])])
    cmd = [sys.executable, "-m", "kimi_conformance", "run", *pytest_and_build_args, "--alluredir", str(results), "--clean-alluredir"]
    sys.stdout.flush()
    return subprocess.run(cmd, env=env).returncode


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m kimi_conformance report",
        description="Run the suites with Allure results and render the Allure HTML report. "
        "Other arguments (--build, --python, --letta-path, pytest's) go to `run`.",
    )
    parser.add_argument("--results", default=DEFAULT_RESULTS, help=f"Allure results folder (default: {DEFAULT_RESULTS})")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"HTML report folder (default: {DEFAULT_OUT})")
    parser.add_argument("--no-run", action="store_true", help="only render the results already in --results")
    args, rest = parser.parse_known_args(argv)
    results, out = Path(args.results).resolve(), Path(args.out).resolve()
    code = 0
    if not args.no_run:
        code = run_suites(rest, results)
        if code not in RUN_CODES_WITH_A_REPORT:
            print(f"error: the suite run exited {code}: no HTML report made", file=sys.stderr)
            return code
    elif rest:
        parser.error(f"--no-run takes no run arguments: {' '.join(rest)}")
    try:
        index = generate(results, out)
    except ReportError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_USAGE
    print(f"Allure HTML report: {index}")
    return code
