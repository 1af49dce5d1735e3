"""Moonshot's chat request checks (kimi_conformance.moonshot_chat), the rules the replay and the stand-in share."""

from __future__ import annotations

import pytest

from kimi_conformance.moonshot_chat import RULE_SOURCES, check_chat_request, stream_chunks, thinking

USER = {"role": "user", "content": "weather?"}
CALL = {"role": "assistant", "content": "", "reasoning_content": "r", "tool_calls": [{"id": "functions.get_weather:0", "type": "function",
                                                                                       "function": {"name": "get_weather", "arguments": "{}"}}]}
TOOL = {"role": "tool", "tool_call_id": "functions.get_weather:0", "content": "sunny"}


@pytest.mark.parametrize(("model", "thinks"), [("kimi-k2.5", True), ("kimi-k2.6", True), ("kimi-k2.7-code", True), ("kimi-k3", True),
                                               ("kimi-k2-0905-preview", False), ("moonshot-v1-8k", False), ("kimi-k2-thinking", True)])
def test_which_models_think(model, thinks):
    assert thinking({"model": model}) is thinks


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "kimi-k2.5", "messages": [USER], "temperature": 0.7}, "invalid temperature: only 1 is allowed for this model"),
        ({"model": "kimi-k3", "messages": [USER], "temperature": 1.0, "thinking": {"type": "disabled"}}, "invalid temperature: only 0.6 is allowed for this model"),
        ({"model": "kimi-k2.6", "messages": [USER], "tool_choice": "required"}, "tool_choice 'required' is incompatible with thinking enabled"),
        ({"model": "kimi-k2.6", "messages": [USER, {**CALL, "reasoning_content": None}, TOOL]},
         "thinking is enabled but reasoning_content is missing in assistant tool call message at index 1"),
        ({"model": "moonshot-v1-8k", "messages": [USER, CALL, {**TOOL, "tool_call_id": "functions.get_weather"}]}, "tool_call_id functions.get_weather is not found"),
    ],
    ids=["temperature", "temperature-no-thinking", "tool-choice", "reasoning-missing", "tool-call-id"],
)
def test_what_moonshot_refuses(body, message):
    status, error = check_chat_request(body)
    assert status == 400 and error["error"]["type"] == "invalid_request_error"
    assert message in error["error"]["message"]


@pytest.mark.parametrize(
    "body",
    [
        {"model": "kimi-k2.5", "messages": [USER, CALL, TOOL], "temperature": 1.0, "tool_choice": "auto"},
        {"model": "kimi-k2.5", "messages": [USER], "temperature": 0.6, "thinking": {"type": "disabled"}, "tool_choice": "required"},
        {"model": "moonshot-v1-8k", "messages": [USER, {**CALL, "reasoning_content": None}, TOOL], "temperature": 0.3, "tool_choice": "required"},
    ],
    ids=["thinking", "thinking-disabled", "moonshot-v1"],
)
def test_what_moonshot_accepts(body):
    assert check_chat_request(body) is None


def test_every_rule_names_its_source():
    assert set(RULE_SOURCES) == {"temperature", "tool_choice", "reasoning_content", "tool_call_id"} and all(RULE_SOURCES.values())


def test_a_stream_is_in_moonshots_chunk_order():
    reply = {"id": "c", "created": 1, "model": "kimi-k3", "usage": {"total_tokens": 3},
             "choices": [{"index": 0, "message": {**CALL, "reasoning_content": "thinking"}, "finish_reason": "tool_calls"}]}
    chunks = stream_chunks(reply)
    deltas = [c["choices"][0]["delta"] for c in chunks[:-1]]
    assert deltas[0] == {"role": "assistant", "content": ""}
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "thinking"
    calls = [t for d in deltas for t in d.get("tool_calls") or []]
    assert calls[0]["id"] == "functions.get_weather:0" and calls[0]["function"] == {"name": "get_weather", "arguments": ""}
    assert "".join(t["function"]["arguments"] for t in calls) == "{}"
    assert chunks[-2]["choices"][0]["usage"] == {"total_tokens": 3} and chunks[-2]["choices"][0]["finish_reason"] == "tool_calls"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == {"total_tokens": 3}
