"""Fixtures for the kit's own tests: running the kit against a build and reading its verdict."""

from __future__ import annotations

import json
import subprocess
import sys
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


@pytest.fixture(scope="session")
def run_kit(tmp_path_factory):
    """``run_kit(build, *pytest_args)``: the kit run as a user runs it (the CLI), with its JSON report."""
    cache: dict[tuple, KitRun] = {}

    def run(build: str, *args: str) -> KitRun:
        key = (build, *args)
        if key not in cache:
            report = tmp_path_factory.mktemp("report") / "conformance.json"
            cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", build, "-q", "-p", "no:warnings",
                   "--conformance-report", str(report), *args]
            done = subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=900)
            data = json.loads(report.read_text()) if report.exists() else None
            cache[key] = KitRun(build, done.returncode, done.stdout + done.stderr, data)
        return cache[key]

    return run
