"""REST-AGENT: an agent on a Kimi model, created and messaged over HTTP, answers with the replayed reply."""

from __future__ import annotations

import json
import re

import pytest

from kimi_conformance.moonshot_chat import thinking
from suites.rest.agent_reply import REPLY_TEXT, STEP_REASONING, STEP_TOOLS

pytestmark = pytest.mark.rest


def pick_model(entries: list[dict]) -> str:
    """A listed Kimi model id, preferring a ``kimi-`` one (the K2/K3 series Letta users pick)."""
    ids = sorted(str(m.get("model")) for m in entries)
    return next((i for i in ids if i.startswith("kimi-")), ids[0])


def assistant_texts(answer: dict) -> list[str]:
    texts = []
    for message in answer.get("messages", []):
        if message.get("message_type") == "assistant_message":
            content = message.get("content")
            texts.extend([content] if isinstance(content, str) else [c.get("text", "") for c in content or [] if isinstance(c, dict)])
    return texts


def one_turn(server, kimi, configured) -> tuple[str, str, dict, int]:
    """A new agent on a listed Kimi model, sent one message: ``(model id, handle, answer, stand-in requests before)``."""
    model_id = pick_model(configured(server))
    handle = f"{kimi.provider_name}/{model_id}"
    agent = server.json(server.new_agent(handle), f"creating an agent with model={handle!r}")
    try:
        seen_before = len(server.standin.requests)
        answer = server.json(server.post(f"/v1/agents/{agent['id']}/messages", {"messages": [{"role": "user", "content": "Hello?"}]}),
                             f"sending a message to the agent on {handle}")
    finally:
        server.delete(f"/v1/agents/{agent['id']}")
    return model_id, handle, answer, seen_before


@pytest.mark.behavior("REST-AGENT")
def test_agent_on_a_kimi_handle_answers_with_the_kimi_reply(letta_with_key, kimi, configured):
    """``POST /v1/agents/`` with ``model="kimi/<id>"``, then a message: the reply is Kimi's, fetched with the Kimi key.

    If it fails: creating the agent must resolve the Kimi handle (RESOLVE-HANDLE), and its
    messages must go to ``{KIMI_BASE_URL}/chat/completions`` with the Kimi key and the
    model id (CLIENT-CHAT, ROUTE-KEY); the agent's reply is the completion's.
    """
    server = letta_with_key
    model_id, handle, answer, seen_before = one_turn(server, kimi, configured)
    chats = [r for r in server.standin.requests[seen_before:] if r.method == "POST" and r.path.endswith("/chat/completions")]
    assert chats, f"the agent on {handle} answered without a chat completion reaching Kimi's base URL {server.standin.url}"
    assert all(r.key_ok for r in chats), f"the agent's chat completions reached {server.standin.url} without the Kimi key"
    assert {r.json.get("model") for r in chats} == {model_id}, f"the chat completions asked for {sorted({str(r.json.get('model')) for r in chats})}, not {model_id!r}"
    assert REPLY_TEXT in assistant_texts(answer), f"the agent's reply is not the replayed Kimi reply {REPLY_TEXT!r}: {assistant_texts(answer) or answer}"


def step_requests(server, seen_before: int) -> tuple[list, list]:
    """The chat requests of the turn, and those that carry the answered tool step (the second request of the step on)."""
    chats = [r for r in server.standin.requests[seen_before:] if r.method == "POST" and r.path.endswith("/chat/completions")]
    after = [r for r in chats if any(m.get("role") == "tool" and str(m.get("tool_call_id", "")).startswith(tuple(f"functions.{t}:" for t in STEP_TOOLS))
                                     for m in (r.json or {}).get("messages", []) if isinstance(m, dict))]
    return chats, after


@pytest.mark.behavior("REST-AGENT")
def test_a_tool_step_completes_and_its_second_request_keeps_the_history(letta_with_key, kimi, configured):
    """A turn in which the Kimi model first calls a tool completes, and the request after the tool keeps Moonshot's promises.

    The stand-in answers the first request with a call to one of Letta's search tools (a K2
    id longer than 29 characters and, for a thinking model, `reasoning_content`) and checks
    the second request as Moonshot does (temperature, tool_choice, reasoning_content,
    tool_call_id). If it fails: see CLIENT-HISTORY and CLIENT-PARAMS; the server's Kimi
    client must send the stored tool call back with its full id and reasoning.
    """
    server = letta_with_key
    _, _, answer, seen_before = one_turn(server, kimi, configured)
    chats, after = step_requests(server, seen_before)
    if not after and not any(t in json.dumps(r.json) for r in chats for t in STEP_TOOLS):
        pytest.skip(f"precondition not met: the agent offers none of {STEP_TOOLS}, so the stand-in made no tool step")
    assert after, f"the tool step did not continue: no request after the tool's answer reached {server.standin.url} (agent reply: {assistant_texts(answer) or answer})"
    second = after[0].json
    calls = [c for m in second["messages"] if m.get("role") == "assistant" for c in m.get("tool_calls") or []]
    ids = [c["id"] for c in calls if c.get("function", {}).get("name") in STEP_TOOLS]
    assert ids and all(re.fullmatch(rf"functions\.({'|'.join(STEP_TOOLS)}):\d+", i) for i in ids), f"the step's tool-call id came back as {ids}"
    answered = [m.get("tool_call_id") for m in second["messages"] if m.get("role") == "tool" and str(m.get("tool_call_id", "")).startswith("functions.")]
    assert answered == ids, f"the tool message answers {answered}, the tool call was {ids}"
    if thinking(second):
        reasoning = [m.get("reasoning_content") for m in second["messages"] if m.get("role") == "assistant" and any(c["id"] in ids for c in m.get("tool_calls") or [])]
        assert reasoning == [STEP_REASONING], f"the step's reasoning_content came back as {reasoning}"
    assert REPLY_TEXT in assistant_texts(answer), f"the turn did not end with the replayed reply {REPLY_TEXT!r}: {assistant_texts(answer) or answer}"
