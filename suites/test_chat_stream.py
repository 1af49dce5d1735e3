"""CLIENT-STREAM: a streamed chat completion assembles the same message as the unstreamed one (guide §3.3.6)."""

from __future__ import annotations

import json

import pytest

from kimi_conformance.letta_compat import maybe_await
from kimi_conformance.replay import cassette_path, load_cassette
from suites.chat_helpers import build_request, kimi_client, listed_config, opening_messages, skip_unless_chat_reached, tool_schema
from suites.helpers import KIMI_KEY

# each stream cassette holds the first answer of a tool-step cassette, in Moonshot's SSE chunk order
STREAMS = {"k2": ("chat/stream-k2", "chat/tool-step-k2"), "k3": ("chat/stream-k3", "chat/tool-step-k3")}


def as_dict(chunk) -> dict:
    return chunk if isinstance(chunk, dict) else chunk.model_dump()


def assemble(chunks: list) -> dict:
    """OpenAI delta semantics: content and reasoning joined, tool calls by index (id and name once, arguments joined)."""
    content, reasoning, calls, finish, usage = "", "", {}, None, None
    for chunk in map(as_dict, chunks):
        usage = chunk.get("usage") or usage
        for choice in chunk.get("choices") or []:
            delta = choice.get("delta") or {}
            content += delta.get("content") or ""
            reasoning += delta.get("reasoning_content") or ""
            for call in delta.get("tool_calls") or []:
                slot = calls.setdefault(call.get("index", 0), {"id": None, "name": "", "arguments": ""})
                function = call.get("function") or {}
                slot["id"] = call.get("id") or slot["id"]
                slot["name"] = function.get("name") or slot["name"]
                slot["arguments"] += function.get("arguments") or ""
            finish = choice.get("finish_reason") or finish
            usage = choice.get("usage") or usage
    return {"content": content, "reasoning_content": reasoning, "tool_calls": [calls[i] for i in sorted(calls)], "finish_reason": finish,
            "usage": {k: (usage or {}).get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}


def unstreamed(body: dict) -> dict:
    choice = body["choices"][0]
    message = choice["message"]
    return {"content": message.get("content") or "", "reasoning_content": message.get("reasoning_content") or "",
            "tool_calls": [{"id": c["id"], "name": c["function"]["name"], "arguments": c["function"]["arguments"]} for c in message.get("tool_calls") or []],
            "finish_reason": choice["finish_reason"], "usage": {k: body["usage"].get(k) for k in ("prompt_tokens", "completion_tokens", "total_tokens")}}


@pytest.mark.behavior("CLIENT-STREAM")
@pytest.mark.parametrize("kind", list(STREAMS))
async def test_a_streamed_completion_is_the_unstreamed_message(kimi, kimi_env, make_provider, moonshot, base_url, kind):
    """The stream the Kimi client hands Letta's streaming loop (`stream_async`) assembles into the unstreamed message.

    Content, `reasoning_content`, each tool call's id, name and arguments joined across
    chunks, the finish reason and the usage (inside `choices[0]` of the last content chunk,
    then top-level in a `choices: []` chunk) must all survive.

    If this fails: pass Moonshot's chunks through unchanged (or re-chunk without losing
    pieces): a tool call arrives split, id and name first with "" arguments, then the
    arguments in pieces; keep `reasoning_content` deltas and the final usage chunk.
    """
    stream_cassette, step_cassette = STREAMS[kind]
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)  # not about the setting: a build without one is judged at its default URL
    config = await listed_config(make_provider, moonshot, base_url, thinking_model=True)
    want = unstreamed(load_cassette(cassette_path(step_cassette, moonshot.cassette_dir)).json_bodies("/chat/completions")[0])
    moonshot.serve(stream_cassette, base_url)
    client = kimi_client(kimi, config)
    data = await build_request(client, opening_messages(), config, [tool_schema(want["tool_calls"][0]["name"]), tool_schema("send_message")])
    try:
        stream = await maybe_await(client.stream_async(data, config))
    except Exception as e:  # noqa: BLE001 - a refused request is CLIENT-PARAMS's verdict
        skip_unless_chat_reached(moonshot, base_url)
        sent = moonshot.to(f"{base_url}/chat/completions", "POST")
        if not sent or sent[-1].bearer != KIMI_KEY:  # CLIENT-KWARGS judges the streamed request's key and endpoint
            pytest.skip(f"precondition not met: no streamed request reached Moonshot with the Kimi key ({type(e).__name__}; judged by CLIENT-KWARGS)")
        if sent and sent[-1].response is not None and sent[-1].response.status_code == 400:
            pytest.skip(f"precondition not met: Moonshot refused the streamed request ({sent[-1].response.text[:160]}) (judged by CLIENT-PARAMS)")
        raise AssertionError(f"stream_async raised {type(e).__name__}: {e}") from e
    chunks = [chunk async for chunk in stream]
    got = assemble(chunks)
    for part in ("tool_calls", "content", "reasoning_content", "finish_reason", "usage"):
        assert got[part] == want[part], f"the streamed {part} is {json.dumps(got[part])}, unstreamed {json.dumps(want[part])}"
