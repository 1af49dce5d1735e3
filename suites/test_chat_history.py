"""CLIENT-HISTORY: the second request of an agent step keeps Moonshot's tool-call ids and the reasoning (guide §3.3.1–§3.3.3)."""

from __future__ import annotations

import pytest

from kimi_conformance.letta_compat import maybe_await
from kimi_conformance.moonshot_chat import thinking
from suites.chat_helpers import (
    build_request,
    kimi_client,
    listed_config,
    long_history,
    run_tool_step,
    skip_unless_chat_reached,
    tool_call_messages,
    tool_messages,
    tool_schema,
)
from suites.helpers import KIMI_KEY

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

    Owed when the second request is thinking by Moonshot's rule (``moonshot_chat.thinking``):
    a request that switches thinking off (`thinking: {"type": "disabled"}` to K2.5+/K3) owes none.

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
    if not thinking(step.second):
        finding(f"the second request to {step.second.get('model')} switches thinking off: no reasoning_content is owed")
        return
    sent = calls[-1].get("reasoning_content")
    assert sent == step.delivered["reasoning_content"], (
        f"reasoning_content of the tool-call message: sent {sent!r}, Moonshot's reply had {step.delivered['reasoning_content']!r}"
        + (f"; Moonshot answered: {step.second_error}" if step.second_error else "")
    )


@pytest.mark.behavior("CLIENT-HISTORY")
async def test_a_long_history_keeps_every_tool_call(kimi, kimi_env, make_provider, moonshot, base_url):
    """A request built from a long agent history keeps every tool call: Letta's opening `send_message` call and 300 tool steps of a thinking model.

    Each tool-call id goes back exactly as stored (a uuid, K2's `functions.<name>:<n>`), each
    tool message answers its call, each of the model's tool-call messages carries its own
    `reasoning_content`, and the opening call (made by Letta, without reasoning) carries one
    too (empty, say): Moonshot refuses any assistant tool-call message without it when thinking.
    The reasoning is owed only when the request is thinking by Moonshot's rule (``moonshot_chat.thinking``).

    If this fails: restore the ids and the reasoning for every assistant tool-call message of
    the history, not only the last one nor only the first 256, and send a
    `reasoning_content` (e.g. `""`) for a tool call that has no stored reasoning.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)  # not about the setting: a build without one is judged at its default URL
    config = await listed_config(make_provider, moonshot, base_url, thinking_model=True)
    moonshot.serve("chat/reasoning", base_url)
    client = kimi_client(kimi, config)
    history, want, reasonings = long_history(300)
    try:
        await maybe_await(client.request_async(await build_request(client, history, config, [tool_schema("conversation_search"), tool_schema("send_message")]), config))
    except Exception:  # noqa: BLE001 - Moonshot's refusal is judged from the request itself
        pass
    skip_unless_chat_reached(moonshot, base_url)
    body = moonshot.to(f"{base_url}/chat/completions", "POST")[0].json()
    calls = tool_call_messages(body)
    sent = [c.get("id") for m in calls for c in m["tool_calls"]]
    assert sent == want, f"tool-call ids rewritten: {[(s, w) for s, w in zip(sent, want) if s != w][:3] or (len(sent), len(want))} (sent, stored)"
    answered = [m.get("tool_call_id") for m in tool_messages(body)]
    assert answered == want, f"tool messages answer other ids: {[(a, w) for a, w in zip(answered, want) if a != w][:3] or (len(answered), len(want))}"
    if not thinking(body):
        return  # thinking switched off: Moonshot asks for no reasoning_content
    assert isinstance(calls[0].get("reasoning_content"), str), (
        f"Letta's opening send_message call is sent without reasoning_content ({calls[0].get('reasoning_content')!r}): Moonshot refuses it when thinking")
    own = [m.get("reasoning_content") for m in calls[1:]]
    assert own == reasonings, f"reasoning_content of the model's tool-call messages: sent {[(o, r) for o, r in zip(own, reasonings) if o != r][:2] or len(own)}, stored otherwise"
