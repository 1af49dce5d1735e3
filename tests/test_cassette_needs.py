"""A cassette folder that lacks what a MUST needs stops the run before any test (exit 4), never a silent not-applicable."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from kimi_conformance.cassette_needs import ENTRY_NEEDS, missing
from kimi_conformance.exitcodes import EXIT_USAGE

KIT_ROOT = Path(__file__).resolve().parent.parent
BUILD = "reference-0.11.7"


@pytest.fixture
def cassettes(tmp_path) -> Path:
    folder = tmp_path / "cassettes"
    shutil.copytree(KIT_ROOT / "cassettes", folder)
    return folder


def test_the_kits_cassettes_hold_what_every_must_needs():
    assert missing(KIT_ROOT / "cassettes") == []


def test_a_2026_account_list_holds_what_every_must_needs(cassettes):
    """A /models answer holding only kimi-k3, kimi-k2.6, kimi-k2.7-code(-highspeed) is enough (ids come from the answer)."""
    shutil.copy(cassettes / "models" / "account-2026.yaml", cassettes / "models" / "current.yaml")
    assert missing(cassettes) == []


@pytest.mark.parametrize(
    ("change", "says"),
    [
        (lambda d: (d / "models" / "legacy-2024.yaml").write_text((d / "models" / "current.yaml").read_text()),
         "models/legacy-2024.yaml lacks a 200 /models answer with a kept id without context_length"),
        (lambda d: (d / "chat" / "reasoning.yaml").write_text((d / "chat" / "tool-calls.yaml").read_text()),
         "chat/reasoning.yaml lacks a 200 chat completion whose reply has tool_calls and reasoning_content"),
        (lambda d: [p.unlink() for p in (d / "errors").glob("models-401-*.yaml")], "models-401-*.yaml does not exist"),
        (lambda d: (d / "models" / "current.yaml").unlink(), "models/current.yaml does not exist"),
        (lambda d: (d / "models" / "current.yaml").write_text((d / "models" / "current.yaml").read_text().replace('"supports_reasoning":true', '"supports_reasoning":false')),
         "models/current.yaml lacks a 200 /models answer with a kept id of a thinking model"),
    ],
    ids=["no-entry-without-context-length", "no-reasoning-reply", "no-401", "no-current-list", "no-thinking-model"],
)
def test_a_missing_need_is_named(cassettes, change, says):
    change(cassettes)
    problems = missing(cassettes)
    assert len(problems) == 1 and says in problems[0] and str(cassettes) in problems[0], problems


def test_the_suites_pick_ids_with_the_same_needs_table():
    """One needs table: what a test asks of a served entry (suites.helpers.served_ids) is what the start-up check asks."""
    from suites import helpers

    assert helpers.ENTRY_NEEDS is ENTRY_NEEDS


def test_the_run_stops_before_any_test_with_one_line(cassettes, tmp_path):
    """The kit run: exit 4, one ERROR line naming the cassette and what it lacks, no report written."""
    (cassettes / "models" / "legacy-2024.yaml").write_text((cassettes / "models" / "current.yaml").read_text())
    report = tmp_path / "reports" / "conformance.json"
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", BUILD, "-p", "no:warnings", "-q",
           "--cassette-dir", str(cassettes), "--conformance-report", str(report)]
    done = subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=600)
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_USAGE, output[-3000:]
    errors = [line for line in output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1 and "legacy-2024.yaml lacks" in errors[0] and "LIST-CONTEXT" in errors[0], output[-3000:]
    assert not report.exists()
