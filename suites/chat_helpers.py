"""The chat side of an agent step, driven the way Letta's agent loop drives the Kimi client.

Letta's agent loop (``letta/agents/letta_agent*.py``) builds each request from the stored
messages with ``client.build_request_data(messages, llm_config, tools)``, sends it with
``client.request_async(data, llm_config)`` (or ``stream_async``), converts the answer with
``client.convert_response_to_chat_completion(...)``, and stores a tool call as an assistant
message (its reasoning as native ``ReasoningContent``, the tool call with Moonshot's id)
followed by a tool message answering that id (``create_letta_messages_from_llm_response``).
The next request of the step is built from those stored messages: that is the request
CLIENT-HISTORY and CLIENT-PARAMS judge, as the replay observed it. The call and the stored
step go through the build's own code (``letta_compat.agent_llm_call`` / ``stored_tool_step``):
a build that loses the reasoning or rewrites an id where it stores the reply is judged here.

Letta's message schema (``letta.schemas.message.Message``) is Letta's, not the Kimi build's,
and the same in the supported versions; the Kimi build is reached only through its provider
and its client.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import pytest

from kimi_conformance.letta_compat import agent_llm_call, maybe_await, request_arguments, stored_tool_step, takes_forced_tool
from kimi_conformance.moonshot_chat import thinking
from suites.helpers import KIMI_KEY

SYSTEM_PROMPT = "You are a helpful assistant. Use the tools you are given."
USER_TEXT = "What's the weather?"
TOOL_RESULT = '{"status": "OK", "message": "Sunny, 21 C", "time": "2026-12-01 09:00:00 AM UTC+0000"}'
REQUEST_HEARTBEAT = "request_heartbeat"


def tool_schema(name: str) -> dict:
    """A Letta tool's JSON schema (function form), as the agent hands tools to ``build_request_data``."""
    return {
        "name": name,
        "description": f"The {name} tool.",
        "parameters": {
            "type": "object",
            "properties": {"query": {"type": "string"}, "city": {"type": "string"}, REQUEST_HEARTBEAT: {"type": "boolean"}},
            "required": [],
        },
    }


async def listed_config(make_provider, moonshot, base_url: str, *, thinking_model: bool | None, models: str = "models/current"):
    """A Kimi ``LLMConfig`` from the build's provider over a served ``/models`` answer.

    The model is taken from the served answer: an entry with ``supports_reasoning: true``
    for a thinking model, else one without; ``thinking_model=None`` takes any kept entry
    (one without reasoning first: a 2026 account may list only thinking models). Skips
    when the answer has none, or the listing does not keep it (judged by LIST-PREFIX).
    """
    served = moonshot.serve(models, base_url)
    configs = {c.model: c for c in await make_provider(base_url).list_llm_models_async()}
    # what was served (in live mode: what the live API answered the listing)
    entries = [e for body in served.json_bodies("/models") for e in body.get("data", []) if isinstance(e, dict) and isinstance(e.get("id"), str)]
    kept = [e for e in entries if e["id"].startswith(("kimi-", "moonshot-"))]
    if thinking_model is None:
        kept.sort(key=lambda e: bool(e.get("supports_reasoning")))
    wanted = [e["id"] for e in kept if thinking_model is None or bool(e.get("supports_reasoning")) == thinking_model]
    if thinking_model:
        wanted = [i for i in wanted if thinking({"model": i})] or wanted
    if not wanted:
        kind = {None: "Moonshot", True: "thinking", False: "non-thinking"}[thinking_model]
        pytest.skip(f"precondition not met: {models} serves no {kind} model")
    for model_id in wanted:
        if model_id in configs:
            return configs[model_id]
    pytest.skip(f"precondition not met: none of {wanted} was listed (judged by LIST-PREFIX)")


def kimi_client(kimi, config):
    """The client Letta's agent gets for the config; a non-Kimi client is CLIENT-DISPATCH's / ROUTE-KEY's verdict."""
    client = kimi.client_factory(provider_type=config.model_endpoint_type)
    if not isinstance(client, kimi.client_class):
        pytest.skip(f"precondition not met: the config's client is {type(client).__name__}, not the Kimi client (judged by ROUTE-KEY)")
    return client


async def build_request(client, messages, config, tools, force_tool_call: str | None = None) -> dict:
    """``build_request_data`` as the agent calls it, for the stored ``messages`` (letta_compat.request_arguments)."""
    arguments = request_arguments(client, config, messages=messages, tools=tools, force_tool_call=force_tool_call)
    return await maybe_await(client.build_request_data(**arguments))


def opening_messages() -> list:
    """The stored messages before the model is first asked: the system prompt and the user's question."""
    from letta.schemas.letta_message_content import TextContent
    from letta.schemas.message import Message

    return [
        Message(role="system", content=[TextContent(text=SYSTEM_PROMPT)]),
        Message(role="user", content=[TextContent(text=USER_TEXT)]),
    ]


def stored_call(call_id: str, name: str, arguments: dict, content: list, result: str = TOOL_RESULT) -> list:
    """An assistant message (``content``: its reasoning or inner thoughts) calling one tool, and the tool's answer, as Letta stores them."""
    from letta.schemas.letta_message_content import TextContent
    from letta.schemas.message import Message
    from openai.types.chat.chat_completion_message_tool_call import ChatCompletionMessageToolCall, Function

    tool_call = ChatCompletionMessageToolCall(id=call_id, type="function", function=Function(name=name, arguments=json.dumps(arguments)))
    assistant = Message(role="assistant", content=content, tool_calls=[tool_call], tool_call_id=call_id)
    tool = Message(role="tool", content=[TextContent(text=result)], tool_calls=[], tool_call_id=call_id, name=name)
    return [assistant, tool]


def long_history(steps: int) -> tuple[list, list[str], list[str]]:
    """What a long-running agent of a thinking Kimi model has stored, before the user's next question.

    Letta's opening ``send_message`` call (``get_initial_boot_messages``: a uuid id, inner
    thoughts as text, no reasoning), then ``steps`` tool steps of the model, each with its
    reasoning and a K2 id (``functions.conversation_search:<n>``, longer than 29 characters).
    Returns ``(messages, the tool-call ids in order, the reasoning of the model's calls in order)``.
    """
    from letta.schemas.letta_message_content import ReasoningContent, TextContent

    boot_id = "5d1e6c3a-8f2b-4a7d-9c0e-1b2a3f4d5e6f"
    messages = opening_messages()[:1] + stored_call(
        boot_id, "send_message", {"message": "More human than human is our motto."},
        [TextContent(text="Bootup sequence complete. Persona activated. Testing messaging functionality.")],
        result='{"status": "OK", "message": null, "time": "2026-12-01 08:00:00 AM UTC+0000"}')
    ids, reasonings = [boot_id], []
    for n in range(steps):
        call_id, reasoning = f"functions.conversation_search:{n}", f"Step {n}: I should search the conversation."
        messages += stored_call(call_id, "conversation_search", {"query": f"weather {n}", REQUEST_HEARTBEAT: True},
                                [ReasoningContent(reasoning=reasoning, is_native=True, signature=None)])
        ids.append(call_id)
        reasonings.append(reasoning)
    return messages + opening_messages()[1:], ids, reasonings


def skip_unless_chat_reached(moonshot, base_url: str) -> None:
    """Precondition: the chat request reached ``{base_url}/chat/completions`` (where it goes is CLIENT-CHAT's verdict).

    A request sent elsewhere had no recorded answer; it is explained here, so that it is
    not reported a second time as a replay miss of this test.
    """
    url = f"{base_url}/chat/completions"
    if moonshot.to(url, "POST"):
        return
    elsewhere = [r.url for r in moonshot.requests if r.method == "POST" and "/chat/completions" in r.url]
    if elsewhere:
        moonshot.misses[:] = [m for m in moonshot.misses if "/chat/completions" not in m]
        pytest.skip(f"precondition not met: the chat request went to {elsewhere[0]}, not {url} (judged by CLIENT-CHAT / ROUTE-KEY)")


@dataclass
class Step:
    """What one tool step put on the wire: the delivered tool call and the requests the replay observed."""

    delivered: dict  # the assistant message Moonshot answered the first request with
    first: dict  # the first request's body
    second: dict | None = None  # the second request's body (None: it never left the client)
    second_error: str | None = None  # what the second request raised (Moonshot's 400, ...)
    storing_fallback: str | None = None  # what the kit did by hand where the build has no storing path to call


async def run_tool_step(kimi, kimi_env, make_provider, moonshot, base_url: str, cassette: str, *, thinking_model: bool = True,
                        temperature: float | None = None, force_tool: bool = False) -> Step:
    """One agent step in which the Kimi model calls a tool: the first request, the stored step, the second request.

    ``temperature``: the one a user set on the agent (None: the listed config's). ``force_tool``:
    tool rules allow only the tool the model calls, so the agent loop (``letta_agent.py``) gives
    only that tool and names it (``force_tool_call``); not applicable where the build's
    ``build_request_data`` takes no ``force_tool_call``. Skips
    (naming the judge) when the first request cannot be judged here: refused by Moonshot
    (CLIENT-PARAMS) or not answered with the served tool call (CLIENT-CHAT).
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)  # not about the setting: a build without one is judged at its default URL
    config = await listed_config(make_provider, moonshot, base_url, thinking_model=thinking_model)
    if temperature is not None:
        config = config.model_copy(update={"temperature": temperature})
    served = moonshot.serve(cassette, base_url)
    delivered = served.json_bodies("/chat/completions")[0]["choices"][0]["message"]
    called = delivered["tool_calls"][0]["function"]["name"]
    tools = [tool_schema(called)] + ([] if force_tool else [tool_schema("send_message")])
    forced = called if force_tool else None
    client = kimi_client(kimi, config)
    if force_tool and not takes_forced_tool(client):
        pytest.skip(f"not applicable: {type(client).__name__}.build_request_data takes no force_tool_call: a forced tool does not apply")
    messages = opening_messages()
    url = f"{base_url}/chat/completions"
    try:
        reply = await agent_llm_call(client, config, await build_request(client, messages, config, tools, forced), messages, tools)
    except Exception as e:  # noqa: BLE001 - any failure of the first request is another behaviour's verdict
        skip_unless_chat_reached(moonshot, base_url)
        refused = moonshot.to(url, "POST")
        why = refused[-1].response.text if refused and refused[-1].response is not None else f"{type(e).__name__}: {e}"
        judge = "CLIENT-PARAMS" if refused and refused[-1].response is not None and refused[-1].response.status_code == 400 else "CLIENT-CHAT"
        pytest.skip(f"precondition not met: the step's first request failed ({why[:200]}) (judged by {judge})")
    message = reply.message
    if not message.tool_calls or message.tool_calls[0].id != delivered["tool_calls"][0]["id"]:
        pytest.skip("precondition not met: the reply lost the served tool call (judged by CLIENT-CHAT)")
    step = Step(delivered=delivered, first=moonshot.to(url, "POST")[0].json(), storing_fallback=reply.fallback)
    history = messages + stored_tool_step(config, reply, tool_result=TOOL_RESULT)
    try:
        data = await build_request(client, history, config, tools, forced)
    except Exception as e:  # noqa: BLE001 - a failure to build the request is the verdict itself
        step.second_error = f"building the second request raised {type(e).__name__}: {e}"
        return step
    try:
        await maybe_await(client.request_async(data, config))
    except Exception as e:  # noqa: BLE001 - Moonshot's refusal is reported with the request
        step.second_error = f"{type(e).__name__}: {e}"
    sent = moonshot.to(url, "POST")
    if len(sent) >= 2:
        step.second = sent[1].json()
    return step


def tool_call_messages(body: dict) -> list[dict]:
    return [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "assistant" and m.get("tool_calls")]


def tool_messages(body: dict) -> list[dict]:
    return [m for m in body.get("messages", []) if isinstance(m, dict) and m.get("role") == "tool"]
