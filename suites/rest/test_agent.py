"""REST-AGENT: an agent on a Kimi model, created and messaged over HTTP, answers with the replayed reply."""

from __future__ import annotations

import pytest

from suites.rest.agent_reply import REPLY_TEXT

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


@pytest.mark.behavior("REST-AGENT")
def test_agent_on_a_kimi_handle_answers_with_the_kimi_reply(letta_with_key, kimi, configured):
    """``POST /v1/agents/`` with ``model="kimi/<id>"``, then a message: the reply is Kimi's, fetched with the Kimi key.

    If it fails: creating the agent must resolve the Kimi handle (RESOLVE-HANDLE), and its
    messages must go to ``{KIMI_BASE_URL}/chat/completions`` with the Kimi key and the
    model id (CLIENT-CHAT, ROUTE-KEY); the agent's reply is the completion's.
    """
    server = letta_with_key
    model_id = pick_model(configured(server))
    handle = f"{kimi.provider_name}/{model_id}"
    agent = server.json(server.new_agent(handle), f"creating an agent with model={handle!r}")
    try:
        seen_before = len(server.standin.requests)
        answer = server.json(server.post(f"/v1/agents/{agent['id']}/messages", {"messages": [{"role": "user", "content": "Hello?"}]}),
                             f"sending a message to the agent on {handle}")
    finally:
        server.delete(f"/v1/agents/{agent['id']}")
    chats = [r for r in server.standin.requests[seen_before:] if r.method == "POST" and r.path.endswith("/chat/completions")]
    assert chats, f"the agent on {handle} answered without a chat completion reaching Kimi's base URL {server.standin.url}"
    assert all(r.key_ok for r in chats), f"the agent's chat completions reached {server.standin.url} without the Kimi key"
    assert {r.json.get("model") for r in chats} == {model_id}, f"the chat completions asked for {sorted({str(r.json.get('model')) for r in chats})}, not {model_id!r}"
    assert REPLY_TEXT in assistant_texts(answer), f"the agent's reply is not the replayed Kimi reply {REPLY_TEXT!r}: {assistant_texts(answer) or answer}"
