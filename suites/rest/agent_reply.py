"""What the stand-in answers to Letta's agent loop: the cassette's tool-call completion, reshaped.

A Letta agent's turn ends when the model calls ``send_message`` (0.11's memgpt agents,
which offer that tool) or answers with plain content (0.16's ``letta_v1_agent``, which
does not offer it). ``AgentLoopReply`` takes the recorded Kimi completion of
``chat/tool-calls.yaml`` (its id, usage and tool-call shape: ``functions.<name>:<n>`` ids,
``finish_reason: "tool_calls"``) and answers each request with whichever of the two the
request's tools call for, carrying ``REPLY_TEXT``.

Before that answer, a turn has a tool step (REST-AGENT, CLIENT-HISTORY over HTTP): when the
request offers one of ``STEP_TOOLS`` and no message yet answers a call to it, the model
calls it with a K2 id longer than Letta's 29-character cut (``functions.<tool>:<n>``) and,
for a thinking model, ``STEP_REASONING``; the stand-in then checks the second request as
Moonshot does (kimi_conformance.moonshot_chat), and the test reads it from the stand-in.
"""

from __future__ import annotations

import copy
import itertools
import json
from pathlib import Path

from kimi_conformance.moonshot_chat import thinking
from kimi_conformance.replay import cassette_path, load_cassette

REPLY_TEXT = "Hello from the replayed Kimi model (kit stand-in)."
SEND_MESSAGE = "send_message"
# Arguments Letta adds to its tools besides the message (kept only when the schema asks).
EXTRA_ARGUMENTS = {"inner_thoughts": "The user greeted me; I answer.", "request_heartbeat": False}
# Letta's own tools an agent is given in both versions, harmless to call: the step's tool call.
STEP_TOOLS = ("conversation_search", "archival_memory_search")
REPLY_REASONING = "I have what I need; I answer the user."
STEP_REASONING = "The user greets me; let me first look at what we talked about before."
STEP_ARGUMENTS = {"query": "hello", "inner_thoughts": "Let me search the conversation first.", "request_heartbeat": True}


def step_tool(request: dict) -> str | None:
    """The tool of the turn's tool step: offered by the request and not yet answered in it (None: step done or impossible)."""
    answered = [str(m.get("tool_call_id", "")) for m in request.get("messages") or [] if isinstance(m, dict) and m.get("role") == "tool"]
    for name in STEP_TOOLS:
        if _tool_schema(request, name) is not None:
            return None if any(a.startswith(f"functions.{name}:") for a in answered) else name
    return None


def step_call_id(name: str, n: int) -> str:
    return f"functions.{name}:{n}"


def _tool_schema(request: dict, name: str) -> dict | None:
    for tool in request.get("tools") or []:
        function = tool.get("function") if isinstance(tool, dict) else None
        if isinstance(function, dict) and function.get("name") == name:
            return function.get("parameters") or {}
    return None


class AgentLoopReply:
    """``chat_responder`` for the stand-in: ``reply(request_json) -> completion_json``."""

    def __init__(self, cassette_dir: Path):
        bodies = load_cassette(cassette_path("chat/tool-calls", cassette_dir)).json_bodies("/chat/completions")
        self.template = next(b for b in bodies if b["choices"][0]["message"].get("tool_calls"))
        self._call_ids = itertools.count()  # thread-safe: the stand-in answers from several threads

    def __call__(self, request: dict) -> dict:
        reply = copy.deepcopy(self.template)
        reply["model"] = request.get("model", reply.get("model"))
        choice = reply["choices"][0]
        tool = step_tool(request)
        if tool is not None:
            properties = (_tool_schema(request, tool) or {}).get("properties") or {}
            arguments = {k: v for k, v in STEP_ARGUMENTS.items() if k in properties or k == "query"}
            call = choice["message"]["tool_calls"][0]
            call["id"] = step_call_id(tool, next(self._call_ids))
            call["function"] = {"name": tool, "arguments": json.dumps(arguments)}
            choice["message"]["tool_calls"] = [call]
            if thinking(request):
                choice["message"]["reasoning_content"] = STEP_REASONING
            return reply
        schema = _tool_schema(request, SEND_MESSAGE)
        if schema is None:
            choice["message"] = {"role": "assistant", "content": REPLY_TEXT}
            choice["finish_reason"] = "stop"
            return reply
        properties = schema.get("properties") or {}
        arguments = {"message": REPLY_TEXT, **{k: v for k, v in EXTRA_ARGUMENTS.items() if k in properties}}
        call = choice["message"]["tool_calls"][0]
        call["id"] = f"functions.{SEND_MESSAGE}:{next(self._call_ids)}"
        call["function"] = {"name": SEND_MESSAGE, "arguments": json.dumps(arguments)}
        choice["message"]["tool_calls"] = [call]
        if thinking(request):
            choice["message"]["reasoning_content"] = REPLY_REASONING
        return reply
