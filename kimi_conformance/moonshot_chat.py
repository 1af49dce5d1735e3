"""How Moonshot checks a chat request: one definition for the replay and the local stand-in.

``check_chat_request(body)`` returns ``None`` when Moonshot would accept the request, else
``(400, error_body)`` with the body Moonshot answers. Each rule names where it comes from
(``RULE_SOURCES``); the replay and the stand-in answer with these bodies, so a build that
sends what Moonshot refuses gets Moonshot's refusal, not a recorded success.

Which models are thinking models with a fixed temperature: ``kimi-k2.5``, ``kimi-k2.6`` and
later K2 models (``kimi-k2.7-code`` ...) and the K3 series. On them thinking is on unless the
request sends ``"thinking": {"type": "disabled"}``; the older ``kimi-k2-thinking*`` ids think
always. ``moonshot-v1-*`` and the K2 preview ids do not think.
"""

from __future__ import annotations

import re
from typing import Any

# Where each rule comes from (CONTRACT.md, "Wire formats" and CLIENT-PARAMS / CLIENT-HISTORY).
RULE_SOURCES: dict[str, str] = {
    "temperature": "Moonshot platform docs, kimi-k2.5/kimi-k2.6 model pages (temperature fixed: 1.0 thinking, 0.6 non-thinking; "
    "top_p 0.95); public bug reports of agent frameworks quoting the 400 'invalid temperature: only 1 is allowed for this model'",
    "tool_choice": "Moonshot platform docs, thinking models and tool use (tool_choice only 'auto' or 'none' while thinking is enabled); "
    "public bug reports quoting the 400 '... incompatible with thinking enabled'",
    "reasoning_content": "public capture of Moonshot's 400 (shared/data/moonshot-wire/errors/chat-400-reasoning-content-missing.yaml): "
    "'thinking is enabled but reasoning_content is missing in assistant tool call message at index N'",
    "tool_call_id": "OpenAI-compatible chat API as Moonshot documents it (a tool message answers an earlier assistant tool call by its id); "
    "the message wording is the kit's",
}

_FIXED_TEMPERATURE = re.compile(r"^kimi-(k2\.([5-9]|\d\d+)|k[3-9])(\b|[.-])")
_ALWAYS_THINKING = re.compile(r"^kimi-k2-thinking")
THINKING_TEMPERATURE, INSTANT_TEMPERATURE = 1.0, 0.6


def fixed_temperature_model(model: str) -> bool:
    """kimi-k2.5, kimi-k2.6, later K2 (kimi-k2.7-code ...) and K3 models: the API fixes the temperature."""
    return bool(_FIXED_TEMPERATURE.match(model or ""))


def thinking(body: dict) -> bool:
    """Whether Moonshot thinks on this request (a fixed-temperature model thinks unless told not to)."""
    model = str(body.get("model") or "")
    if _ALWAYS_THINKING.match(model):
        return True
    if not fixed_temperature_model(model):
        return False
    switch = body.get("thinking")
    return not (isinstance(switch, dict) and switch.get("type") == "disabled")


def invalid(message: str) -> tuple[int, dict]:
    return 400, {"error": {"message": message, "type": "invalid_request_error"}}


def _temperature(body: dict, thinks: bool) -> tuple[int, dict] | None:
    value = body.get("temperature")
    if value is None or not fixed_temperature_model(str(body.get("model") or "")):
        return None
    allowed = THINKING_TEMPERATURE if thinks else INSTANT_TEMPERATURE
    if isinstance(value, (int, float)) and abs(float(value) - allowed) < 1e-9:
        return None
    return invalid(f"invalid temperature: only {allowed:g} is allowed for this model")


def _tool_choice(body: dict, thinks: bool) -> tuple[int, dict] | None:
    choice = body.get("tool_choice")
    if not thinks or choice in (None, "auto", "none"):
        return None
    shown = choice if isinstance(choice, str) else "specified tool"
    return invalid(f"tool_choice '{shown}' is incompatible with thinking enabled")


def _history(messages: list, thinks: bool) -> tuple[int, dict] | None:
    called: set[str] = set()
    for index, message in enumerate(messages):
        if not isinstance(message, dict):
            continue
        if message.get("role") == "assistant" and message.get("tool_calls"):
            if thinks and message.get("reasoning_content") is None:
                return invalid(f"thinking is enabled but reasoning_content is missing in assistant tool call message at index {index}")
            called.update(str(c.get("id")) for c in message["tool_calls"] if isinstance(c, dict))
        elif message.get("role") == "tool" and str(message.get("tool_call_id")) not in called:
            return invalid(f"Invalid request: tool_call_id {message.get('tool_call_id')} is not found in the previous assistant tool calls (message at index {index})")
    return None


def check_chat_request(body: Any) -> tuple[int, dict] | None:
    """``None`` if Moonshot accepts the chat request ``body``, else ``(status, error body)``."""
    if not isinstance(body, dict):
        return invalid("Invalid request: the body is not a JSON object")
    thinks = thinking(body)
    messages = body.get("messages") if isinstance(body.get("messages"), list) else []
    return _temperature(body, thinks) or _tool_choice(body, thinks) or _history(messages, thinks)


def stream_chunks(reply: dict, *, include_usage: bool = True, pieces: int = 3) -> list[dict]:
    """A chat completion as Moonshot streams it (CONTRACT.md, "Wire formats"; public 2026 captures).

    A ``{role, content: ""}`` delta, the ``reasoning_content`` and ``content`` in deltas, each
    tool call split (id, type and name with ``""`` arguments, then the arguments in
    ``pieces``), the finish chunk carrying ``usage`` inside ``choices[0]``, then (when usage
    is requested) a ``choices: []`` chunk with ``usage`` top-level. ``[DONE]`` is the caller's.
    """
    head = {"id": reply.get("id"), "object": "chat.completion.chunk", "created": reply.get("created"), "model": reply.get("model")}
    usage = reply.get("usage")
    chunks = []
    for choice in reply.get("choices", []):
        index, message = choice.get("index", 0), choice.get("message") or {}

        def chunk(delta: dict, finish=None, **extra) -> dict:
            return {**head, "choices": [{"index": index, "delta": delta, "finish_reason": finish, **extra}]}

        chunks.append(chunk({"role": message.get("role", "assistant"), "content": ""}))
        for key in ("reasoning_content", "content"):
            chunks += [chunk({key: part}) for part in _split(message.get(key) or "", 2)]
        for n, call in enumerate(message.get("tool_calls") or []):
            function = call.get("function") or {}
            first = {"index": call.get("index", n), "id": call.get("id"), "type": call.get("type", "function"),
                     "function": {"name": function.get("name"), "arguments": ""}}
            chunks.append(chunk({"tool_calls": [first]}))
            chunks += [chunk({"tool_calls": [{"index": call.get("index", n), "function": {"arguments": part}}]})
                       for part in _split(function.get("arguments") or "", pieces)]
        chunks.append(chunk({}, choice.get("finish_reason", "stop"), **({"usage": usage} if usage else {})))
    if include_usage and usage:
        chunks.append({**head, "choices": [], "usage": usage})
    return chunks


def _split(text: str, pieces: int) -> list[str]:
    """``text`` in up to ``pieces`` non-empty parts (none for an empty text)."""
    size = max(1, -(-len(text) // pieces))
    return [text[i : i + size] for i in range(0, len(text), size)]
