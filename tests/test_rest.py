"""The black-box REST suite (``-m rest``): green on the reference build, red on a handle defect,
no process left behind (by pid, after a normal and an interrupted run), ``--letta-url``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kimi_conformance import letta_process, rest_plugin
from kimi_conformance.builds import ensure_build

KIT_ROOT = Path(__file__).resolve().parent.parent
BUILD = "reference-0.11.7"
REST_IDS = ("REST-MODELS", "REST-AGENT", "ENABLE-FLAG", "HANDLE-FORMAT", "LIST-PREFIX")
DEADLINE_SECONDS = 60.0


def alive(pid: int) -> bool:
    """A server process of the kit with this pid still runs (a zombie or a reused pid does not count)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"kimi_conformance.serve_letta" in cmdline


def started_pids(workdir: Path) -> dict[str, int]:
    return {f.stem: int(f.read_text()) for f in sorted((workdir / "pids").glob("*.pid"))}


def wait_until(condition, what: str, timeout: float = DEADLINE_SECONDS) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout:g} s")
        time.sleep(0.1)


def test_rest_suite_is_green_on_the_reference_build_and_leaves_no_process(run_kit, tmp_path):
    """Against reference-0.11.7 every REST behaviour passes, and both servers it started are gone afterwards."""
    run = run_kit(BUILD, "-m", "rest", "--rest-workdir", str(tmp_path))
    assert run.returncode == 0, run.output[-4000:]
    assert {bid: run.behaviors[bid] for bid in REST_IDS} == dict.fromkeys(REST_IDS, "pass"), run.output[-4000:]
    pids = started_pids(tmp_path)
    assert set(pids) == {"with-key", "with-flag"}, pids
    assert not [name for name, pid in pids.items() if alive(pid)], f"servers left running after the run: {pids}"


def test_rest_models_is_red_on_handles_without_the_provider_name(run_kit, tmp_path):
    """The defect whose handles lack ``kimi/`` turns REST-MODELS red (a SHOULD: warn) over HTTP;
    the failing test shows the log of the server it used."""
    run = run_kit("handle-without-provider-0.11.7", "-m", "rest", "--rest-workdir", str(tmp_path))
    assert run.report is not None, run.output[-4000:]
    assert run.behaviors["REST-MODELS"] in ("warn", "fail"), run.output[-4000:]
    assert run.behaviors["HANDLE-FORMAT"] == "fail", run.output[-4000:]
    assert f"letta server with-key (pid {started_pids(tmp_path)['with-key']})" in run.output, run.output[-4000:]
    assert not [pid for pid in started_pids(tmp_path).values() if alive(pid)]


def test_list_prefix_is_red_over_http_when_the_filter_runs_only_on_moonshot_hosts(run_kit, tmp_path):
    """The stand-in (a loopback host, not Moonshot's) serves foreign ids beside Kimi's: a filter keyed on
    "moonshot" in the base URL lists them, and the REST suite says so under LIST-PREFIX alone."""
    run = run_kit("filter-only-on-moonshot-host-0.11.7", "-m", "rest", "--rest-workdir", str(tmp_path))
    assert run.report is not None, run.output[-4000:]
    assert run.red() == {"LIST-PREFIX"}, run.output[-4000:]
    assert {bid: run.behaviors[bid] for bid in ("REST-MODELS", "HANDLE-FORMAT")} == dict.fromkeys(("REST-MODELS", "HANDLE-FORMAT"), "pass")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=lambda s: s.name)
def test_an_interrupted_run_leaves_no_process(tmp_path, sig):
    """Interrupting the kit while its servers start (Ctrl-C, a CI job's SIGTERM, even SIGKILL) ends every server by pid."""
    cmd = [sys.executable, "-m", "kimi_conformance", "run", "--build", BUILD, "-m", "rest", "-q", "-p", "no:warnings",
           "--rest-workdir", str(tmp_path), "--conformance-report", str(tmp_path / "report.json")]
    with open(tmp_path / "kit.log", "wb") as log:
        kit = subprocess.Popen(cmd, cwd=KIT_ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_until(lambda: len(started_pids(tmp_path)) == 2 or kit.poll() is not None, "the kit did not start its two servers")
        assert kit.poll() is None, (tmp_path / "kit.log").read_text()[-3000:]
        pids = started_pids(tmp_path)
        kit.send_signal(sig)
        kit.wait(timeout=DEADLINE_SECONDS)
        wait_until(lambda: not any(alive(pid) for pid in pids.values()), f"servers {pids} still ran after {sig.name} to the kit")
    finally:
        if kit.poll() is None:
            os.killpg(kit.pid, signal.SIGKILL)
            kit.wait()


@pytest.fixture
def outside_server(tmp_path):
    """A reference-0.11.7 ``letta server`` started by the test (as someone else would), aimed at a fixed stand-in port."""
    build = ensure_build(BUILD)
    port = letta_process.free_port()
    env = {
        "KIMI_API_KEY": rest_plugin.STANDIN_API_KEY,
        "KIMI_BASE_URL": f"http://127.0.0.1:{port}/v1",
        "PYTHONPATH": os.pathsep.join([*build.pythonpath(), str(KIT_ROOT)]),
    }
    server = letta_process.LettaServerProcess("outside", tmp_path, env=env, python=str(build.python))
    letta_process.start_all([server], rest_plugin.DEFAULT_STARTUP_TIMEOUT)
    try:
        yield server, port
    finally:
        server.stop()


def test_letta_url_uses_that_server_prints_the_standin_url_and_skips_the_flag(run_kit, outside_server):
    """With --letta-url the kit starts no server, prints the KIMI_BASE_URL it needs, and skips what needs the flag."""
    server, port = outside_server
    run = run_kit(BUILD, "--letta-url", server.url, "--standin-port", str(port), "-m", "rest", "-rs")
    assert run.returncode == 0, run.output[-4000:]
    assert f"KIMI_BASE_URL=http://127.0.0.1:{port}/v1" in run.output, run.output[-4000:]
    assert "cannot restart that server with LETTA_DISABLE_KIMI_PROVIDER=1" in run.output, run.output[-4000:]
    assert {bid: run.behaviors[bid] for bid in REST_IDS} == {
        "REST-MODELS": "pass", "REST-AGENT": "pass", "HANDLE-FORMAT": "pass", "ENABLE-FLAG": "not-applicable", "LIST-PREFIX": "pass"}, run.output[-4000:]


@pytest.mark.parametrize("url", ["http://127.0.0.1:{port}", "ftp://127.0.0.1/letta"], ids=["unreachable", "not-http"])
def test_a_bad_letta_url_is_one_usage_error_naming_it(run_kit, url):
    """No Letta server at --letta-url (or no http URL at all): exit 4 and one line naming the URL."""
    url = url.format(port=letta_process.free_port())
    run = run_kit(BUILD, "--letta-url", url)
    assert run.returncode == 4, run.output[-3000:]
    errors = [line for line in run.output.splitlines() if "--letta-url" in line and url in line]
    assert len(errors) == 1, run.output[-3000:]
