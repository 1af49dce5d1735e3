"""CLIENT-HISTORY: the second request of an agent step keeps Moonshot's tool-call ids and the reasoning (guide §3.3.1–§3.3.3)."""

from __future__ import annotations

import pytest

from suites.chat_helpers import run_tool_step, tool_call_messages, tool_messages

# K2's long id (functions.conversation_search:1, 31 characters) and K3's get_weather_0 form.
STEPS = ["chat/tool-step-k2", "chat/tool-step-k3"]


@pytest.mark.behavior("CLIENT-HISTORY")
@pytest.mark.parametrize("cassette", STEPS, ids=["k2-id", "k3-id"])
async def test_the_next_request_keeps_the_tool_call_ids(kimi, kimi_env, make_provider, moonshot, base_url, cassette, finding):
    """After the model calls a tool, the next request carries each tool-call id exactly as Moonshot sent it, and the tool message answers it.

    If this fails: the Kimi client must send the stored tool calls back byte for byte (no
    rewriting to [A-Za-z0-9_-], no cut to a length: Letta's serializer cuts ids to 29
    characters by default, so a Kimi client passes the full id, e.g. by building the
    messages with no id length limit), and the tool message's `tool_call_id` must be that id.
    """
    step = await run_tool_step(kimi, kimi_env, make_provider, moonshot, base_url, cassette)
    if step.storing_fallback:
        finding(f"stored step partly built by the kit: {step.storing_fallback}")
    assert step.second is not None, f"the second request of the step never reached Moonshot ({step.second_error})"
    want = [c["id"] for c in step.delivered["tool_calls"]]
    calls = tool_call_messages(step.second)
    assert calls, f"the second request has no assistant tool-call message: {[m.get('role') for m in step.second.get('messages', [])]}"
    assert [c.get("id") for c in calls[-1]["tool_calls"]] == want, f"tool-call ids rewritten: sent {[c.get('id') for c in calls[-1]['tool_calls']]}, Moonshot sent {want}"
    answered = [m.get("tool_call_id") for m in tool_messages(step.second)]
    assert answered == want, f"the tool message answers {answered}, Moonshot's tool call was {want}"


@pytest.mark.behavior("CLIENT-HISTORY")
@pytest.mark.parametrize("cassette", STEPS, ids=["k2-id", "k3-id"])
async def test_the_next_request_keeps_the_reasoning_of_a_thinking_model(kimi, kimi_env, make_provider, moonshot, base_url, cassette, finding):
    """For a thinking model, the assistant tool-call message sent back carries its `reasoning_content` (Moonshot answers 400 without it).

    If this fails: keep the reply's `reasoning_content` (Letta stores it as native
    `ReasoningContent` in the assistant message) and send it back as `reasoning_content`
    beside `tool_calls` in the next request to a thinking model.
    """
    step = await run_tool_step(kimi, kimi_env, make_provider, moonshot, base_url, cassette)
    if step.storing_fallback:
        finding(f"stored step partly built by the kit: {step.storing_fallback}")
    assert step.second is not None, f"the second request of the step never reached Moonshot ({step.second_error})"
    calls = tool_call_messages(step.second)
    assert calls, "the second request has no assistant tool-call message"
    sent = calls[-1].get("reasoning_content")
    assert sent == step.delivered["reasoning_content"], (
        f"reasoning_content of the tool-call message: sent {sent!r}, Moonshot's reply had {step.delivered['reasoning_content']!r}"
        + (f"; Moonshot answered: {step.second_error}" if step.second_error else "")
    )
