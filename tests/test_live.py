"""Live mode, recording and drift, run against the local Moonshot stand-in (never the real API)."""

from __future__ import annotations

import base64
import json
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

from kimi_conformance.exitcodes import EXIT_OK, EXIT_RECORD_REFUSED, EXIT_UPSTREAM_UNAVAILABLE, EXIT_USAGE
from kimi_conformance.record import leaks, scrub_text
from kimi_conformance.standin import MoonshotStandIn
from kimi_conformance.upstream import retry_after

BUILD = "reference-0.11.7"
# shaped like a real Moonshot key, so that the kit's own secret patterns would catch a leak too
KEY = "sk-standinLIVEkey0123456789abcdefghijKLMNOP"
EXTRA_IDS = ["kimi-k9-standin", "kimi-k9-standin-thinking"]
KIT_ROOT = Path(__file__).resolve().parent.parent
RECORDED = ["chat/reasoning.yaml", "chat/tool-calls.yaml", "errors/models-401-invalid-authentication.yaml", "models/current.yaml"]


def live_env(url: str, key: str | None = KEY) -> dict[str, str | None]:
    return {"KIMI_API_KEY": key, "KIMI_BASE_URL": url}


def contract_verdicts(run) -> dict[str, str]:
    """The verdicts of the contract's behaviours (DRIFT-* exist in live mode only)."""
    return {bid: verdict for bid, verdict in run.behaviors.items() if not bid.startswith("DRIFT-")}


def lines(output: str) -> list[str]:
    return [line for line in output.splitlines() if line.strip()]


def snapshot(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def live_run(run_kit):
    """One full live run of the reference build against a stand-in that serves two ids beyond the cassette's."""
    with MoonshotStandIn(KEY, extra_model_ids=EXTRA_IDS) as standin:
        run = run_kit(BUILD, "--live", env=live_env(standin.url))
        return run, list(standin.requests)


def test_live_verdicts_equal_the_replay_verdicts(live_run, run_kit):
    """Against the stand-in, every contract behaviour gets the verdict it gets in replay; DRIFT-* only run live."""
    live, _ = live_run
    assert live.returncode == EXIT_OK, live.output[-3000:]
    replay = run_kit(BUILD)
    assert contract_verdicts(live) == contract_verdicts(replay)
    assert {live.behaviors["DRIFT-MODELS"], live.behaviors["DRIFT-SHAPE"]} == {"pass"}
    assert {replay.behaviors["DRIFT-MODELS"], replay.behaviors["DRIFT-SHAPE"]} == {"not-applicable"}


def test_the_live_run_counts_its_requests_and_never_shows_the_key(live_run):
    """The run prints how many requests it made; the key reaches only the stand-in (the build saw a placeholder)."""
    live, requests = live_run
    assert f"live: {len(requests)} request(s) to " in live.output
    assert live.report["live"]["requests"] == len(requests)
    refused = [r for r in requests if not r.key_ok]
    assert refused and all(r.path == "/v1/models" for r in refused), "only AUTH-401 sends a deliberately invalid key"
    assert all(r.key_ok for r in requests if r.path == "/v1/chat/completions")
    assert KEY not in live.output and KEY not in json.dumps(live.report)


def test_behaviours_kept_on_injected_faults_are_listed(live_run):
    live, _ = live_run
    injected = live.report["live"]["injected"]
    assert "fault timeout" in injected["AUTH-OTHER"] and "cassette errors/models-500-server-error" in injected["LIST-FALLBACK"]
    assert "injected in live mode" in live.output


def test_drift_names_the_ids_the_standin_serves_beyond_the_fallback(live_run):
    """DRIFT-MODELS (INFO) names the live ids the build's fallback lacks, in the summary and in the JSON report."""
    live, _ = live_run
    drift = live.report["live"]["drift"]["models"]
    assert set(EXTRA_IDS) <= set(drift["live_not_in_fallback"])
    assert "kimi-latest" in drift["fallback_not_listed_live"], "models/current no longer lists kimi-latest"
    summary = [line for line in live.output.splitlines() if line.startswith("INFO DRIFT-MODELS:")]
    assert any(all(i in line for i in EXTRA_IDS) for line in summary), summary
    assert any("kimi-k9-standin" in f for f in live.report["findings"]["DRIFT-MODELS"])


def test_drift_shape_names_fields_either_way(run_kit, tmp_path):
    """DRIFT-SHAPE (INFO) names a field the live entries have that no cassette has, and a current-cassette field they lack."""
    served = tmp_path / "served"
    shutil.copytree(KIT_ROOT / "cassettes" / "chat", served / "chat")
    current = (KIT_ROOT / "cassettes" / "models" / "current.yaml").read_text()
    (served / "models").mkdir()
    (served / "models" / "future.yaml").write_text(current.replace('"supports_video_in"', '"supports_audio_in"'))
    with MoonshotStandIn(KEY, cassette_dir=served, models_cassette="models/future.yaml") as standin:
        run = run_kit(BUILD, "--live", "suites/test_drift.py", env=live_env(standin.url))
    assert run.returncode == EXIT_OK, run.output[-3000:]
    shape = run.report["live"]["drift"]["shape"]
    assert shape == {"live_fields_not_in_cassettes": ["supports_audio_in"], "current_cassette_fields_not_live": ["supports_video_in"]}


@pytest.mark.parametrize(
    ("status", "error_type", "attempts"),
    [(429, None, 3), (503, None, 3), (429, "exceeded_current_quota_error", 1)],
    ids=["rate-limit", "overloaded", "quota-not-retried"],
)
def test_retries_stop_at_the_bound_and_the_outcome_is_upstream_unavailable(run_kit, status, error_type, attempts):
    """A 429/5xx that persists is retried `--live-retries` times (honouring Retry-After), then the test is 'upstream unavailable'."""
    with MoonshotStandIn(KEY) as standin:
        standin.fail_next(1000, status, retry_after=0.01, error_type=error_type)
        run = run_kit(BUILD, "--live", "--live-retries", "2", "suites/test_auth.py", "-k", "test_200_returns", env=live_env(standin.url))
        sent = len(standin.requests)
    assert run.returncode == EXIT_UPSTREAM_UNAVAILABLE, run.output[-3000:]
    assert sent == 2 * attempts, "the start-up check and the test each stop at the bound"
    assert run.behaviors["AUTH-OK"] == "upstream-unavailable"
    assert run.report["verdict"] == "upstream-unavailable"
    assert [u["behavior"] for u in run.report["live"]["upstream_unavailable"]] == ["AUTH-OK"]
    assert "upstream unavailable" in run.output and f"live: {sent} request(s)" in run.output


def test_record_into_a_copy_replays_green_and_holds_no_key(run_kit, tmp_path):
    """--record rewrites the live-answered cassettes in --cassette-dir (scrubbed, with metadata); they replay green."""
    cassettes = tmp_path / "cassettes"
    shutil.copytree(KIT_ROOT / "cassettes", cassettes)
    committed = snapshot(KIT_ROOT / "cassettes")
    with MoonshotStandIn(KEY) as standin:
        recorded = run_kit(BUILD, "--live", "--record", "--cassette-dir", str(cassettes), env=live_env(standin.url))
        url = standin.url
    assert recorded.returncode == EXIT_OK, recorded.output[-3000:]
    assert sorted(Path(p).relative_to(cassettes).as_posix() for p in recorded.report["live"]["recording"]["written"]) == RECORDED
    for name in RECORDED:
        text = (cassettes / name).read_text()
        assert "origin: recorded" in text and f"base_url: {url}" in text and "recorded_at:" in text and "kit_version:" in text
        assert "Authorization" not in text
    grep = subprocess.run(["grep", "-rlF", KEY, str(cassettes)], capture_output=True, text=True)
    assert grep.returncode == 1 and grep.stdout == "", f"the key is in {grep.stdout}"
    assert snapshot(KIT_ROOT / "cassettes") == committed, "the committed cassettes are untouched"
    replayed = run_kit(BUILD, "--cassette-dir", str(cassettes), env={})
    assert replayed.returncode == EXIT_OK, replayed.output[-3000:]
    assert contract_verdicts(replayed) == contract_verdicts(run_kit(BUILD))


def test_a_cassette_that_would_keep_the_key_is_refused_and_nothing_is_written(run_kit, tmp_path):
    """A live answer that carries the key in a form scrubbing does not undo (base64) refuses the recording as a whole."""
    cassettes = tmp_path / "cassettes"
    shutil.copytree(KIT_ROOT / "cassettes", cassettes)
    before = snapshot(cassettes)
    leaked = base64.b64encode(KEY.encode()).decode()

    def echo_key(request: dict) -> dict:
        message = {"role": "assistant", "content": f"debug: {leaked}", "tool_calls": [
            {"index": 0, "id": "call_0", "type": "function", "function": {"name": "get_weather", "arguments": "{}"}}]}
        return {"id": "chatcmpl-x", "object": "chat.completion", "created": 0, "model": request["model"],
                "choices": [{"index": 0, "message": message, "finish_reason": "tool_calls"}]}

    with MoonshotStandIn(KEY, chat_responder=echo_key) as standin:
        run = run_kit(BUILD, "--live", "--record", "--cassette-dir", str(cassettes), "suites/test_client.py",
                      "-k", "chat_completion_round_trip", env=live_env(standin.url))
    assert run.returncode == EXIT_RECORD_REFUSED, run.output[-3000:]
    refusals = [line for line in run.output.splitlines() if "--record refused" in line]
    assert len(refusals) == 1 and "base64" in refusals[0] and "nothing was written" in refusals[0]
    assert snapshot(cassettes) == before, "nothing partial is written"
    assert KEY not in run.output and leaked not in run.output


@pytest.mark.parametrize("key", [None, "", "   "], ids=["unset", "empty", "blank"])
def test_live_without_a_key_stops_with_one_line_naming_it(run_kit, key):
    run = run_kit(BUILD, "--live", env=live_env("https://api.moonshot.cn/v1", key))
    assert run.returncode == EXIT_USAGE
    assert len(lines(run.output)) == 1 and "KIMI_API_KEY" in run.output, run.output
    assert run.report is None, "no test ran, nothing was written"


def test_record_without_live_is_a_usage_error(run_kit):
    run = run_kit(BUILD, "--record", env={"KIMI_API_KEY": None})
    assert run.returncode == EXIT_USAGE
    assert len(lines(run.output)) == 1 and "--record needs --live" in run.output, run.output


def _closed_port_url() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}/v1"


@pytest.mark.parametrize("url", ["ftp://api.moonshot.cn/v1", "api.moonshot.cn/v1", "http://127.0.0.1:99999/v1", "closed-port"])
def test_live_with_an_unusable_base_url_is_one_usage_error(run_kit, url):
    url = _closed_port_url() if url == "closed-port" else url
    run = run_kit(BUILD, "--live", "--live-retries", "0", env=live_env(url))
    assert run.returncode == EXIT_USAGE
    assert len(lines(run.output)) == 1 and "KIMI_BASE_URL" in run.output, run.output
    assert KEY not in run.output


def test_a_refused_key_is_one_usage_error_naming_it(run_kit):
    with MoonshotStandIn("sk-another-key-entirely") as standin:
        run = run_kit(BUILD, "--live", env=live_env(standin.url))
    assert run.returncode == EXIT_USAGE
    assert len(lines(run.output)) == 1 and "KIMI_API_KEY was refused" in run.output, run.output
    assert KEY not in run.output


# -- the pieces, without a run ------------------------------------------------------------
@pytest.mark.parametrize(("header", "seconds"), [("2", 2.0), ("0.5", 0.5), ("soon", None), (None, None)])
def test_retry_after_is_read_as_seconds(header, seconds):
    import httpx

    response = httpx.Response(429, headers={"Retry-After": header} if header else {})
    assert retry_after(response) == seconds


def test_scrubbing_replaces_the_key_and_zeroes_account_ids():
    text = f'{{"error": {{"message": "org-abc123def456<ak-XYZ789xyz789> with {KEY}"}}}}'
    scrubbed = scrub_text(text, KEY)
    assert KEY not in scrubbed and "org-000000000000<ak-000000000000>" in scrubbed
    assert leaks(scrubbed, KEY) == []


@pytest.mark.parametrize(
    ("form", "description"),
    [
        (KEY, "the key"),
        (base64.b64encode(KEY.encode()).decode(), "the key, base64-encoded"),
        (KEY[5:25], "16 characters of the key"),
    ],
    ids=["plain", "base64", "piece"],
)
def test_a_leak_is_found_in_any_form(form, description):
    assert description in leaks(f"body: {form}", KEY)


# -- the chat model comes from the live list ----------------------------------------------
def test_the_chat_models_are_picked_from_the_live_list():
    """Live mode chats with ids the live /models lists (a 2026 account may not serve kimi-k2.5), a thinking one for reasoning."""
    from kimi_conformance.live import pick_chat_models

    entry = lambda i, thinking: {"id": i, "object": "model", "supports_reasoning": thinking}  # noqa: E731
    account_2026 = [entry("kimi-k3", True), entry("kimi-k2.6", True), entry("kimi-k2.7-code", True), entry("kimi-k2.7-code-highspeed", True)]
    assert pick_chat_models(account_2026) == {"chat/tool-calls": "kimi-k3", "chat/reasoning": "kimi-k3"}
    older = [entry("gpt-4o", False), entry("moonshot-v1-8k", False), entry("kimi-k2.5", False), entry("kimi-k2.6", True)]
    assert pick_chat_models(older) == {"chat/tool-calls": "kimi-k2.5", "chat/reasoning": "kimi-k2.6"}
    assert pick_chat_models([entry("gpt-4o", False)]) == {}


def test_a_live_run_says_which_models_it_chats_with(run_kit):
    """Against an account that lists only 2026 ids, the run names the live model it chats with (terminal and JSON report)."""
    with MoonshotStandIn(KEY, models_cassette="models/account-2026.yaml") as standin:
        run = run_kit(BUILD, "--live", "suites/test_auth.py", "-k", "test_200_returns", env=live_env(standin.url))
    assert run.returncode == EXIT_OK, run.output[-3000:]
    assert run.report["live"]["chat_models"] == {"chat/tool-calls": "kimi-k3", "chat/reasoning": "kimi-k3"}
    assert "live: chats with kimi-k3 (chat/reasoning), kimi-k3 (chat/tool-calls), picked from the live /models list" in run.output


def test_an_account_listing_no_kimi_model_is_one_usage_error(run_kit, tmp_path):
    """A live list with no moonshot-/kimi- id leaves nothing to chat with: one usage error before any test."""
    served = tmp_path / "served"
    shutil.copytree(KIT_ROOT / "cassettes", served)
    with MoonshotStandIn(KEY, cassette_dir=served, models_cassette="models/foreign-only.yaml") as standin:
        run = run_kit(BUILD, "--live", "suites/test_auth.py", env=live_env(standin.url))
    assert run.returncode == EXIT_USAGE, run.output[-3000:]
    assert len(lines(run.output)) == 1 and "nothing to chat with" in run.output, run.output


# -- one finder for --record, whatever the key's length ------------------------------------
@pytest.mark.parametrize("key", ["Kq7vX2mPz9LwR4tNb8Y", "sk-q7vX2mPz9LwR4tNb", KEY], ids=["19-chars", "19-chars-sk", "long"])
def test_a_piece_of_a_short_key_is_a_leak_too(key):
    """Any 16 characters of the key are the key, for a 19-character key as for a long one; account ids and headers too."""
    assert "16 characters of the key" in leaks(f"id: kimi-{key[2:18]}", key)
    assert leaks(f"id: kimi-{key[:15]}x", key) == []
    assert any("proj-" in found for found in leaks("quota of proj-9a8b7c6d5e4f3a2b", key))
    assert any("Msh-Org-Id" in found for found in leaks("      Msh-Org-Id:\n      - abc", key))
    assert leaks("Your account org-00000000000000000000 <ak-0000000000000> proj-000000000", key) == [], "zeroed ids are scrubbed ones"
