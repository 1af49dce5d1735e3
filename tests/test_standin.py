"""The local Moonshot stand-in answers like Moonshot's public documentation says Moonshot does."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from kimi_conformance.standin import MoonshotStandIn, StandInError

KEY = "sk-standin-test-key-0123456789"
KIT_ROOT = Path(__file__).resolve().parent.parent
CURRENT_IDS = ["kimi-k3", "kimi-k2.7-code", "kimi-k2.6", "kimi-k2.5", "moonshot-v1-8k", "moonshot-v1-32k",
               "moonshot-v1-128k", "moonshot-v1-auto", "moonshot-v1-8k-vision-preview"]
CHAT = {"model": "kimi-k2.5", "messages": [{"role": "user", "content": "What's the weather in Beijing?"}]}


@pytest.fixture
def standin():
    with MoonshotStandIn(KEY, extra_model_ids=["kimi-k9-standin"]) as server:
        yield server


def get_models(url: str, key: str | None = KEY) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key is not None else {}
    return httpx.get(f"{url}/models", headers=headers, timeout=10)


def chat(url: str, body, key: str = KEY) -> httpx.Response:
    return httpx.post(f"{url}/chat/completions", headers={"Authorization": f"Bearer {key}"}, json=body, timeout=10)


def test_models_lists_the_cassette_and_the_extra_ids(standin):
    """GET /v1/models with the key serves the cassette's /models body plus the extra ids, shaped like its entries."""
    assert standin.url.startswith("http://127.0.0.1:") and standin.url.endswith("/v1")
    response = get_models(standin.url)
    assert response.status_code == 200
    body = response.json()
    assert body["object"] == "list"
    assert [e["id"] for e in body["data"]] == [*CURRENT_IDS, "kimi-k9-standin"]
    assert set(body["data"][-1]) == set(body["data"][0]), "an extra id has the cassette's entry shape"


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Bearer sk-wrong-key"}, {"Authorization": KEY}, {"Authorization": f"Basic {KEY}"}],
    ids=["missing", "wrong", "no-scheme", "basic"],
)
def test_a_wrong_or_missing_key_is_moonshots_401(standin, headers):
    """Without `Authorization: Bearer <the stand-in's key>`, every request is 401 with Moonshot's body."""
    response = httpx.get(f"{standin.url}/models", headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.json() == {"error": {"message": "Invalid Authentication", "type": "invalid_authentication_error"}}
    assert standin.requests[-1].key_ok is False


def test_an_unknown_path_is_404_in_moonshots_shape(standin):
    response = httpx.get(f"{standin.url}/files", headers={"Authorization": f"Bearer {KEY}"}, timeout=10)
    assert response.status_code == 404
    assert response.json()["error"]["type"] == "resource_not_found_error"


def test_requests_are_recorded_without_the_key(standin):
    """`requests` says what came in and whether the key matched; neither its repr nor its fields hold the key."""
    get_models(standin.url)
    chat(standin.url, CHAT)
    first, second = standin.requests
    assert (first.method, first.path, first.json, first.key_ok) == ("GET", "/v1/models", None, True)
    assert (second.method, second.path, second.json["model"]) == ("POST", "/v1/chat/completions", "kimi-k2.5")
    assert first.bearer_matches(KEY) and not first.bearer_matches("sk-other")
    assert KEY not in repr(standin.requests) and KEY not in repr(vars(standin))


def test_requests_are_recorded_from_concurrent_clients(standin):
    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = list(pool.map(lambda _: get_models(standin.url).status_code, range(24)))
    assert statuses == [200] * 24
    assert len(standin.requests) == 24


@pytest.mark.parametrize(("model", "reasoning"), [("kimi-k2.5", False), ("kimi-k2.6", True), ("kimi-k9-standin", False)])
def test_chat_answers_the_recorded_completion_for_the_model(standin, model, reasoning):
    """A chat completion is the cassette recorded for that model (reasoning for a thinking model), naming the model asked for."""
    response = chat(standin.url, {**CHAT, "model": model})
    assert response.status_code == 200
    message = response.json()["choices"][0]["message"]
    assert response.json()["model"] == model
    assert message["tool_calls"][0]["function"]["name"] == "get_weather"
    assert bool(message.get("reasoning_content")) is reasoning


def test_chat_streams_server_sent_events(standin):
    response = chat(standin.url, {**CHAT, "stream": True})
    assert response.headers["content-type"] == "text/event-stream"
    events = [line[len("data: "):] for line in response.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    # Moonshot's order: role delta, then the tool call split (id and name with "" arguments, then the pieces)
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    calls = [c for chunk in chunks for choice in chunk["choices"] for c in choice["delta"].get("tool_calls") or []]
    assert calls[0]["id"] == "functions.get_weather:0" and calls[0]["function"]["arguments"] == ""
    assert "city" in json.loads("".join(c["function"]["arguments"] for c in calls)), "the argument pieces join into the recorded JSON"
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_refuses_what_moonshot_refuses(standin):
    """A fixed-temperature thinking model asked with temperature 0.7 gets Moonshot's 400 (kimi_conformance.moonshot_chat)."""
    response = chat(standin.url, {**CHAT, "temperature": 0.7})
    assert response.status_code == 400
    assert response.json()["error"] == {"message": "invalid temperature: only 1 is allowed for this model", "type": "invalid_request_error"}


@pytest.mark.parametrize(
    ("body", "status", "error_type"),
    [
        ({**CHAT, "model": "kimi-k0-unknown"}, 404, "resource_not_found_error"),
        ({"model": "kimi-k2.5"}, 400, "invalid_request_error"),
        ([1, 2], 400, "invalid_request_error"),
    ],
    ids=["unknown-model", "no-messages", "not-an-object"],
)
def test_bad_chat_requests_get_moonshot_errors(standin, body, status, error_type):
    response = chat(standin.url, body)
    assert response.status_code == status
    assert response.json()["error"]["type"] == error_type


def test_a_chat_responder_overrides_the_cassette():
    seen = []

    def responder(request: dict) -> dict:
        seen.append(request["model"])
        return {"id": "x", "object": "chat.completion", "model": request["model"], "choices": []}

    with MoonshotStandIn(KEY, chat_responder=responder) as server:
        assert chat(server.url, CHAT).json()["choices"] == []
    assert seen == ["kimi-k2.5"]


@pytest.mark.parametrize(
    ("status", "retry_after", "error_type", "expected_type"),
    [
        (429, 1.5, None, "rate_limit_reached_error"),
        (429, None, "exceeded_current_quota_error", "exceeded_current_quota_error"),
        (500, None, None, "server_error"),
        (503, 2, None, "engine_overloaded_error"),
    ],
)
def test_fail_next_answers_the_next_n_requests_with_an_error(standin, status, retry_after, error_type, expected_type):
    """`fail_next(n, status, retry_after)` fails exactly the next n requests (whatever their key), with Moonshot's body."""
    standin.fail_next(2, status, retry_after, error_type=error_type)
    answers = [get_models(standin.url) for _ in range(3)]
    assert [a.status_code for a in answers] == [status, status, 200]
    assert answers[0].json()["error"]["type"] == expected_type
    assert answers[0].headers.get("retry-after") == (None if retry_after is None else f"{retry_after:g}")


def test_a_missing_cassette_is_named(tmp_path):
    with pytest.raises(StandInError, match="models/current.yaml does not exist"):
        MoonshotStandIn(KEY, cassette_dir=tmp_path)


def test_stop_frees_the_port(standin):
    url = standin.url
    standin.stop()
    with pytest.raises(httpx.ConnectError):
        get_models(url)


def test_the_command_line_prints_one_url_line_and_stops_on_sigterm():
    """`python -m kimi_conformance.standin` prints exactly MOONSHOT_STANDIN_URL=..., serves, and exits 0 on SIGTERM; the key is never printed."""
    cmd = [sys.executable, "-m", "kimi_conformance.standin", "--port", "0", "--api-key", KEY, "--extra-model-id", "kimi-k9-cli"]
    process = subprocess.Popen(cmd, cwd=KIT_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = process.stdout.readline().strip()
        assert line.startswith("MOONSHOT_STANDIN_URL=http://127.0.0.1:") and line.endswith("/v1"), line
        url = line.split("=", 1)[1]
        assert get_models(url).json()["data"][-1]["id"] == "kimi-k9-cli"
        assert get_models(url, "sk-bad").status_code == 401
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0
    assert out == "", "exactly one line on stdout"
    assert KEY not in err and "GET /v1/models" not in err


def test_the_command_line_names_a_bad_cassette_folder(tmp_path):
    cmd = [sys.executable, "-m", "kimi_conformance.standin", "--api-key", KEY, "--cassette-dir", str(tmp_path / "none")]
    done = subprocess.run(cmd, cwd=KIT_ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 4
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and str(tmp_path / "none") in done.stderr
