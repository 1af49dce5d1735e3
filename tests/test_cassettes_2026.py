"""No id of the kit's own: a cassette folder with only a 2026 account's ids judges every MUST.

`tests/data/cassettes-2026/` holds the /models answers that list Moonshot ids, reduced to
what a 2026 account lists (`kimi-k3`, `kimi-k2.6`, `kimi-k2.7-code`,
`kimi-k2.7-code-highspeed`; no `moonshot-v1-*`, no `kimi-k2.5`); the folder a run gets is
the kit's own cassettes with those answers in place of theirs (so chat and error cassettes
added to the kit are always part of it). The suites take the ids
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

REDUCED_2026 = Path(__file__).resolve().parent / "data" / "cassettes-2026"
KIT_CASSETTES = Path(__file__).resolve().parents[1] / "cassettes"
# judged only in other modes (-m rest, --live): not-applicable in any replay run
OTHER_MODES = {"REST-MODELS", "REST-AGENT", "DRIFT-MODELS", "DRIFT-SHAPE"}


@pytest.fixture(scope="module")
def cassettes_2026(tmp_path_factory) -> Path:
    """The kit's cassettes with every Moonshot-listing /models answer reduced to the 2026 ids."""
    folder = tmp_path_factory.mktemp("cassettes-2026") / "cassettes"
    shutil.copytree(KIT_CASSETTES, folder)
    shutil.copytree(REDUCED_2026, folder, dirs_exist_ok=True)
    return folder


@pytest.mark.parametrize("build", ["reference-0.11.7", "reference-0.16.8"])
def test_a_2026_model_list_judges_every_must_and_is_green(run_kit, build, cassettes_2026):
    """Issue 15's done-when: only kimi-k3, kimi-k2.6, kimi-k2.7-code(-highspeed) listed, every behaviour judged, green."""
    run = run_kit(build, "--cassette-dir", str(cassettes_2026))
    assert run.returncode == EXIT_OK, run.output[-3000:]
    assert run.red() == set()
    tested = {bid for bid, verdict in run.behaviors.items() if verdict != "not-applicable"}
    assert tested == set(BEHAVIORS) - OTHER_MODES, f"not judged: {sorted(set(BEHAVIORS) - OTHER_MODES - tested)}"


def test_a_folder_lacking_what_a_must_needs_is_a_usage_error(run_kit, tmp_path, cassettes_2026):
    """A folder whose answers hold no kept id without context_length stops with one line naming the cassette (exit 4)."""
    folder = tmp_path / "cassettes"
    shutil.copytree(cassettes_2026, folder)
    # every entry of the 2024-shape answer now has context_length: nothing to judge the 8192 default on
    shutil.copy(REDUCED_2026 / "models" / "current.yaml", folder / "models" / "legacy-2024.yaml")
    run = run_kit("reference-0.11.7", "--cassette-dir", str(folder), "-k", "missing_context_length")
    assert run.returncode == EXIT_USAGE, run.output[-3000:]
    errors = [line for line in run.output.splitlines() if line.startswith("ERROR:")]
    assert len(errors) == 1, run.output[-3000:]
    assert "legacy-2024.yaml" in errors[0] and "context_length" in errors[0] and "LIST-CONTEXT" in errors[0]
    assert run.report is None
