"""No id of the kit's own: a cassette folder with only a 2026 account's ids judges every MUST.

`tests/data/cassettes-2026/` is the kit's cassettes with every /models answer reduced to
what a 2026 account lists (`kimi-k3`, `kimi-k2.6`, `kimi-k2.7-code`,
`kimi-k2.7-code-highspeed`; no `moonshot-v1-*`, no `kimi-k2.5`). The suites take the ids
they need from the answer they are served, so the run judges every behaviour the default
folder does and is green on the reference builds; a folder that lacks what a MUST needs is
one usage error naming the cassette (exit 4), never a silent not-applicable.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from kimi_conformance.contract import BEHAVIORS
from kimi_conformance.exitcodes import EXIT_OK, EXIT_USAGE

CASSETTES_2026 = Path(__file__).resolve().parent / "data" / "cassettes-2026"
# judged only in other modes (-m rest, --live): not-applicable in any replay run
OTHER_MODES = {"REST-MODELS", "REST-AGENT", "DRIFT-MODELS", "DRIFT-SHAPE"}


@pytest.mark.parametrize("build", ["reference-0.11.7", "reference-0.16.8"])
def test_a_2026_model_list_judges_every_must_and_is_green(run_kit, build):
    run = run_kit(build, "--cassette-dir", str(CASSETTES_2026))
    assert run.returncode == EXIT_OK, run.output[-3000:]
    assert run.red() == set()
    tested = {bid for bid, verdict in run.behaviors.items() if verdict != "not-applicable"}
    assert tested == set(BEHAVIORS) - OTHER_MODES, f"not judged: {sorted(set(BEHAVIORS) - OTHER_MODES - tested)}"


def test_a_folder_lacking_what_a_must_needs_is_a_usage_error(run_kit, tmp_path):
    folder = tmp_path / "cassettes"
    shutil.copytree(CASSETTES_2026, folder)
    # every entry of the 2024-shape answer now has context_length: nothing to judge the 8192 default on
    shutil.copy(CASSETTES_2026 / "models" / "current.yaml", folder / "models" / "legacy-2024.yaml")
    run = run_kit("reference-0.11.7", "--cassette-dir", str(folder), "-k", "missing_context_length")
    assert run.returncode == EXIT_USAGE, run.output[-3000:]
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, run.output[-3000:]
    assert "legacy-2024.yaml" in errors[0] and "context_length" in errors[0] and "LIST-CONTEXT" in errors[0]
    assert run.report is None
