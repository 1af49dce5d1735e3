"""Running the kit's command line as a user does, and checking that a refused run lost nothing.

Shared by the kit's tests of exit codes, broken inputs and the installed kit.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_conformance.exitcodes import EXIT_USAGE

KIT_ROOT = Path(__file__).resolve().parent.parent
BUILD = "reference-0.11.7"
PREVIOUS_REPORT = '{"verdict": "conformant", "note": "the previous run\'s report"}\n'
# one small test that needs models/mixed-ids.yaml (both base URLs)
NEEDS_MIXED_IDS = "suites/test_list.py::test_listing_a_mixed_api_answer_keeps_exactly_the_moonshot_ids"


@pytest.fixture
def previous_report(tmp_path) -> Path:
    """A JSON report from an earlier run, which a refused run must leave as it was."""
    report = tmp_path / "reports" / "conformance.json"
    report.parent.mkdir()
    report.write_text(PREVIOUS_REPORT)
    return report


def tree_digest(folder: Path) -> dict[str, str]:
    """Path -> sha256 of every regular file under ``folder`` (FIFOs, devices and links to them are not read)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def kit(*args: str, cwd: Path = KIT_ROOT, env: dict[str, str | None] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    """``python -m kimi_conformance ARGS`` from ``cwd`` (the kit importable from anywhere, as when installed)."""
    environ = {**os.environ, "PYTHONPATH": str(KIT_ROOT)}
    environ.update(env or {})
    environ = {k: v for k, v in environ.items() if v is not None}
    return subprocess.run([sys.executable, "-m", "kimi_conformance", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=timeout, env=environ, stdin=subprocess.DEVNULL)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("ERROR:")]


def assert_one_usage_error(done: subprocess.CompletedProcess, *says: str) -> str:
    """Exit 4, exactly one ERROR line, naming every part of ``says``; no traceback, no test run. Returns the line."""
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_USAGE, output[-3000:]
    errors = error_lines(done)
    assert len(errors) == 1, output[-3000:]
    for part in says:
        assert part in errors[0], (part, errors[0])
    # exactly one line: no blank line after it (pytest's own usage-error printer adds one)
    assert not done.stderr.endswith("\n\n") and f"{errors[0]}\n\n" not in output, repr(output[-500:])
    assert "Traceback" not in output, output[-3000:]
    assert " passed" not in output and " failed" not in output, output[-3000:]
    return errors[0]
