"""Broken inputs of the kit: one clear error naming the file or option, nothing written, nothing lost.

Each case runs the kit as a user does (the CLI, the reference build) with one input
broken, a previous JSON report in place and a copy of the cassettes, and checks the
exit code, that the error is said once and names the culprit, and that neither the
previous report nor the cassettes changed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from kit_cli import BUILD, KIT_ROOT, NEEDS_MIXED_IDS, PREVIOUS_REPORT, assert_one_usage_error, error_lines, kit, tree_digest
from kit_cli import previous_report  # noqa: F401 (a fixture, shared)

from kimi_conformance.exitcodes import EXIT_USAGE
from kimi_conformance.inputs import MAX_CASSETTE_BYTES


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


def deeply_nested(cassettes: Path) -> str:
    """100 KB of nested flow sequences: libyaml's composer recurses in C and would crash the interpreter."""
    (cassettes / "models" / "mixed-ids.yaml").write_text("[" * 50_000 + "]" * 50_000)
    return "models/mixed-ids.yaml nests deeper than"


def a_fifo(cassettes: Path) -> str:
    """A FIFO named *.yaml: opening it would wait for a writer forever."""
    os.mkfifo(cassettes / "models" / "stuck.yaml")
    return "models/stuck.yaml is not a regular file"


def a_link_to_dev_zero(cassettes: Path) -> str:
    """A symlink to /dev/zero: reading it would never end."""
    (cassettes / "models" / "zero.yaml").symlink_to("/dev/zero")
    return "models/zero.yaml is not a regular file"


def oversized(cassettes: Path) -> str:
    path = cassettes / "models" / "huge.yaml"
    with path.open("wb") as f:
        f.truncate(MAX_CASSETTE_BYTES + 1)  # sparse: costs no disk
    return "models/huge.yaml is"


BREAKAGES = {
    "missing-cassette": remove_mixed_ids,
    "invalid-yaml": break_yaml,
    "interactions-do-not-match": point_at_another_path,
    "live-key-in-cassette": plant_a_key,
    "deeply-nested-yaml": deeply_nested,
    "fifo-named-yaml": a_fifo,
    "symlink-to-dev-zero": a_link_to_dev_zero,
    "over-the-size-cap": oversized,
}


def run_kit(*args: str, env: dict[str, str | None] | None = None):
    return kit("run", "--build", BUILD, "-p", "no:warnings", "-q", *args, env=env)


@pytest.mark.parametrize("breakage", list(BREAKAGES))
def test_a_broken_cassette_is_one_usage_error_naming_its_file(tmp_path, previous_report, breakage):
    """A missing, unparsable, mismatched, key-carrying, too deep, too big or not-a-file cassette:
    exit 4, one ERROR line naming it (no crash, no hang, no endless read).

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


def test_an_empty_cassette_folder_is_one_line_up_front(tmp_path, previous_report):
    """`--cassette-dir` naming an empty folder: one usage error before any test (not 33 errors after 30 s)."""
    empty = tmp_path / "empty"
    empty.mkdir()
    done = run_kit(NEEDS_MIXED_IDS, "--cassette-dir", str(empty), "--conformance-report", str(previous_report))
    assert_one_usage_error(done, str(empty), "holds no cassettes")
    assert previous_report.read_text() == PREVIOUS_REPORT


def test_record_into_a_new_folder_records_what_it_can_and_names_the_rest(tmp_path):
    """`--live --record --cassette-dir NEW`: the run takes its requests from the kit's cassettes, writes
    the live answers into NEW, and names every cassette of the kit's set it could not record there."""
    from kimi_conformance.standin import MoonshotStandIn

    key = "sk-standinLIVEkey0123456789abcdefghijKLMNOP"
    new = tmp_path / "new-cassettes"
    before = tree_digest(KIT_ROOT / "cassettes")
    with MoonshotStandIn(key) as standin:
        done = run_kit("--live", "--record", "--cassette-dir", str(new), "--conformance-report", str(tmp_path / "r.json"),
                       env={"KIMI_API_KEY": key, "KIMI_BASE_URL": standin.url})
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    recorded = sorted(p.relative_to(new).as_posix() for p in new.rglob("*.yaml"))
    assert recorded and "models/current.yaml" in recorded
    named = {line.split()[2] for line in output.splitlines() if line.startswith("not recorded: ")}
    expected = {p.relative_to(KIT_ROOT / "cassettes").with_suffix("").as_posix() for p in (KIT_ROOT / "cassettes").rglob("*.yaml")}
    assert named == expected - {name.removesuffix(".yaml") for name in recorded}, output[-3000:]
    assert tree_digest(KIT_ROOT / "cassettes") == before
