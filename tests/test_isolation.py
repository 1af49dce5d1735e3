"""Isolation: a run of the kit leaves HOME, ~/.letta and its process environment as it found them."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

KIT_ROOT = Path(__file__).resolve().parent.parent
BUILD = "reference-0.11.7"


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Every path under ``folder`` with its size and modification time."""
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns) for p in sorted(folder.rglob("*"))}


def run_kit(home: Path, report: Path, *args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", BUILD, "-p", "no:warnings", "-q",
           "--conformance-report", str(report), *args]
    env = {**os.environ, "HOME": str(home)}
    return subprocess.run(cmd, cwd=KIT_ROOT, env=env, capture_output=True, text=True, timeout=900)


@pytest.fixture
def user_home(tmp_path) -> Path:
    """A HOME with a user's own ~/.letta in it (config and a database the kit must not touch)."""
    home = tmp_path / "home"
    (home / ".letta").mkdir(parents=True)
    (home / ".letta" / "config").write_text("[defaults]\npreset = memgpt_chat\n")
    (home / ".letta" / "sqlite.db").write_bytes(b"SQLite format 3\x00 the user's data")
    return home


def test_a_parallel_run_leaves_home_and_environment_untouched(user_home, tmp_path):
    """The whole suite under `-n 2`: the user's HOME and ~/.letta are unchanged, no process kept an env change.

    If this fails: a fixture changed os.environ or wrote under the real HOME without
    monkeypatch (the report's `isolation` list names the variables).
    """
    before = snapshot(user_home)
    report = tmp_path / "conformance.json"
    done = run_kit(user_home, report, "-n", "2")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert snapshot(user_home) == before
    assert json.loads(report.read_text())["isolation"] == []


def test_the_isolation_check_names_what_a_test_leaked(user_home, tmp_path):
    """The check can fail: a test that leaves a variable set is named in the report and the summary."""
    report = tmp_path / "conformance.json"
    done = run_kit(user_home, report, "suites/test_handle.py", "tests/data/leaks_environment.py")
    assert json.loads(report.read_text())["isolation"] == ["environment: KIMI_KIT_LEAKED_BY_A_TEST added"]
    assert "KIMI_KIT_LEAKED_BY_A_TEST" in done.stdout
