"""The kit tells the truth about a build: green, red with the right ID, or the single no-Kimi verdict."""

from __future__ import annotations

import pytest

from kimi_conformance.contract import BEHAVIORS
from kimi_conformance.exitcodes import EXIT_CONTRACT_FAILURE, EXIT_NO_KIMI, EXIT_OK

LATER_ISSUES = {"REST-MODELS", "REST-AGENT", "DRIFT-MODELS", "DRIFT-SHAPE"}


@pytest.mark.parametrize("build", ["reference-0.11.7", "reference-0.16.8"])
def test_reference_builds_are_green(run_kit, build):
    run = run_kit(build)
    assert run.returncode == EXIT_OK, run.output[-3000:]
    assert set(run.behaviors) == set(BEHAVIORS), "every ID of CONTRACT.md is in the report"
    assert run.red() == set()
    tested = {bid for bid, verdict in run.behaviors.items() if verdict != "not-applicable"}
    assert tested == set(BEHAVIORS) - LATER_ISSUES
    assert run.report["build"]["letta_version"] == build.rsplit("-", 1)[1]


def test_reference_build_is_green_under_xdist(run_kit):
    serial, parallel = run_kit("reference-0.11.7"), run_kit("reference-0.11.7", "-n", "2")
    assert parallel.returncode == EXIT_OK, parallel.output[-3000:]
    assert parallel.behaviors == serial.behaviors


def test_upstream_build_gets_the_single_no_kimi_verdict(run_kit):
    run = run_kit("upstream-0.16.8")
    assert run.returncode == EXIT_NO_KIMI
    assert set(run.behaviors.values()) == {"not-applicable"}
    assert run.output.count("this build has no Kimi provider") == 1, run.output[-3000:]
    assert "ImportError" not in run.output and "ModuleNotFoundError" not in run.output
    assert run.report["verdict"] == "no-kimi-provider"
    assert "letta 0.16.8" in run.report["no_kimi_provider"]


@pytest.mark.parametrize("version", ["0.11.7", "0.16.8"])
def test_the_guides_before_the_fix_filter_is_red_on_list_prefix_only(run_kit, version):
    run = run_kit(f"before-fix-filter-{version}")
    assert run.returncode == EXIT_CONTRACT_FAILURE, run.output[-3000:]
    assert run.red() == {"LIST-PREFIX"}


def test_a_moved_provider_is_found_through_the_declared_binding(run_kit):
    run = run_kit("moved-provider-0.16.8")
    assert run.returncode == EXIT_OK, run.output[-3000:]
    assert run.red() == set()
    assert "moonshot_ai:MoonshotProvider" in run.report["build"]["binding"]["provider_class"]


def test_a_moved_provider_without_its_binding_is_no_kimi(run_kit, tmp_path):
    empty = tmp_path / "default-binding.toml"
    empty.write_text("[binding]\n")
    run = run_kit("moved-provider-0.16.8", "--binding", str(empty))
    assert run.returncode == EXIT_NO_KIMI
    assert run.output.count("this build has no Kimi provider") == 1


def test_replay_needs_no_network(run_kit, monkeypatch):
    """With every proxy pointing at a closed port, a replay run gives the same verdicts."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    offline = run_kit("reference-0.16.8", "-p", "no:cacheprovider")
    assert offline.returncode == EXIT_OK, offline.output[-3000:]
    assert offline.behaviors == run_kit("reference-0.16.8").behaviors
