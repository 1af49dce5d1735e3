"""Broken inputs of the kit: one clear error naming the file or option, nothing written, nothing lost.

Each case runs the kit as a user does (the CLI, the reference build) with one input
broken, a previous JSON report in place and a copy of the cassettes, and checks the
exit code, that the error is said once and names the culprit, and that neither the
previous report nor the cassettes changed.
"""

from __future__ import annotations

import hashlib
import shutil
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


def tree_digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def remove_mixed_ids(cassettes: Path) -> str:
    (cassettes / "models" / "mixed-ids.yaml").unlink()
    return "models/mixed-ids.yaml does not exist"


def break_yaml(cassettes: Path) -> str:
    (cassettes / "models" / "mixed-ids.yaml").write_text("interactions:\n- request: {method: GET\n  uri: [unclosed\n")
    return "models/mixed-ids.yaml is not a valid vcrpy cassette"


def point_at_another_path(cassettes: Path) -> str:
    path = cassettes / "models" / "mixed-ids.yaml"
    path.write_text(path.read_text().replace("/v1/models", "/v1/engines"))
    return "models/mixed-ids.yaml does not answer GET /models"


def plant_a_key(cassettes: Path) -> str:
    path = cassettes / "chat" / "tool-calls.yaml"
    key = "sk-" + "Q3x9" * 12  # the shape of a real Moonshot key
    text = path.read_text().replace("    headers:\n", f"    headers:\n      Authorization:\n      - Bearer {key}\n", 1)
    path.write_text(text)
    return "chat/tool-calls.yaml holds what looks like a live API key"


BREAKAGES = {
    "missing-cassette": remove_mixed_ids,
    "invalid-yaml": break_yaml,
    "interactions-do-not-match": point_at_another_path,
    "live-key-in-cassette": plant_a_key,
}


@pytest.fixture
def previous_report(tmp_path) -> Path:
    report = tmp_path / "reports" / "conformance.json"
    report.parent.mkdir()
    report.write_text(PREVIOUS_REPORT)
    return report


def run_kit(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", BUILD, "-p", "no:warnings", "-q", *args]
    return subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=600)


def error_lines(done: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (done.stdout + done.stderr).splitlines() if line.startswith("ERROR:")]


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_cassette_is_one_usage_error_naming_its_file(tmp_path, previous_report, breakage):
    """A missing, unparsable, mismatched or key-carrying cassette: exit 4, one ERROR line naming it.

    The run gives no verdict on the build (a broken cassette is not a contract failure),
    leaves the previous report as it was, and never rewrites a cassette.
    """
    cassettes = tmp_path / "cassettes"
    shutil.copytree(KIT_ROOT / "cassettes", cassettes)
    says = BREAKAGES[breakage](cassettes)
    before = tree_digest(cassettes)
    done = run_kit(NEEDS_MIXED_IDS, "--cassette-dir", str(cassettes), "--conformance-report", str(previous_report))
    output = done.stdout + done.stderr
    assert done.returncode == EXIT_USAGE, output[-3000:]
    errors = error_lines(done)
    assert len(errors) == 1 and says in errors[0] and str(cassettes) in errors[0], output[-3000:]
    assert "Traceback" not in output
    assert "sk-Q3x9Q3x9Q3x9" not in output, "the planted key must not be echoed"
    assert previous_report.read_text() == PREVIOUS_REPORT
    assert tree_digest(cassettes) == before


def test_a_missing_cassette_folder_is_named(tmp_path, previous_report):
    """`--cassette-dir` naming a folder that does not exist: one usage error naming the option and folder."""
    done = run_kit(NEEDS_MIXED_IDS, "--cassette-dir", str(tmp_path / "nowhere"), "--conformance-report", str(previous_report))
    errors = error_lines(done)
    assert done.returncode == EXIT_USAGE and len(errors) == 1, (done.stdout + done.stderr)[-3000:]
    assert "nowhere" in errors[0] and "--cassette-dir" in errors[0]
    assert previous_report.read_text() == PREVIOUS_REPORT


@pytest.mark.parametrize("where", ["parent-is-a-file", "is-a-directory"])
def test_an_unwritable_report_path_is_named_before_any_test_runs(tmp_path, where):
    """`--conformance-report` where no file can be written: one usage error naming the path, no test run."""
    blocker = tmp_path / "a-file"
    blocker.write_text("keep me\n")
    target = blocker / "conformance.json" if where == "parent-is-a-file" else tmp_path
    done = run_kit(NEEDS_MIXED_IDS, "--conformance-report", str(target))
    errors = error_lines(done)
    assert done.returncode == EXIT_USAGE and len(errors) == 1, (done.stdout + done.stderr)[-3000:]
    assert str(target) in errors[0] and "--conformance-report" in errors[0]
    assert " passed" not in done.stdout and blocker.read_text() == "keep me\n"
