"""CLIENT-PARAMS: only sampling parameters Moonshot accepts for the model (guide §3.3.6)."""

from __future__ import annotations

import pytest

from kimi_conformance.moonshot_chat import INSTANT_TEMPERATURE, THINKING_TEMPERATURE, fixed_temperature_model, thinking
from suites.chat_helpers import run_tool_step

STEPS = ["chat/tool-step-k2", "chat/tool-step-k3"]


def _requests(step):
    return [("first", step.first)] + ([("second", step.second)] if step.second is not None else [])


@pytest.mark.behavior("CLIENT-PARAMS")
@pytest.mark.parametrize("cassette", STEPS, ids=["k2", "k3"])
@pytest.mark.parametrize("temperature", [None, 0.7], ids=["listed", "user-set-0.7"])
async def test_the_temperature_is_one_the_model_accepts(kimi, kimi_env, make_provider, moonshot, base_url, cassette, temperature):
    """A thinking K2.5+/K3 model gets no temperature or exactly 1.0 (0.6 with thinking disabled), on every request of a step.

    Also when the agent's config carries another temperature (Letta 0.11's default 0.7, or
    one a user set): the model accepts only its fixed value.

    If this fails: Moonshot fixes the temperature of these models and answers 400 "invalid
    temperature: only 1 is allowed for this model"; the Kimi client must omit `temperature`
    for them or send the fixed value, not the config's default (0.7).
    """
    step = await _step_or_refusal(kimi, kimi_env, make_provider, moonshot, base_url, cassette, temperature)
    for which, body in step:
        if not fixed_temperature_model(str(body.get("model"))) or "temperature" not in body:
            continue
        allowed = THINKING_TEMPERATURE if thinking(body) else INSTANT_TEMPERATURE
        assert body["temperature"] == allowed, f"the {which} request sends temperature {body['temperature']} to {body['model']} (only {allowed:g} is accepted)"


@pytest.mark.behavior("CLIENT-PARAMS")
@pytest.mark.parametrize("cassette", STEPS, ids=["k2", "k3"])
@pytest.mark.parametrize("force_tool", [False, True], ids=["tools-given", "one-tool-forced"])
async def test_tool_choice_is_auto_with_thinking(kimi, kimi_env, make_provider, moonshot, base_url, cassette, force_tool):
    """With thinking on, `tool_choice` is `auto` (or `none`, or absent): never `required` or a named tool.

    Also when tool rules allow exactly one tool: Letta's agent loop then passes that tool's
    name as `force_tool_call`, which OpenAIClient turns into a named `tool_choice`.

    If this fails: Moonshot answers 400 "tool_choice ... is incompatible with thinking
    enabled"; send `tool_choice: "auto"` to thinking Kimi models whatever the agent asks
    (OpenAIClient's default is "required" whenever tools are given, and a named tool when
    the agent forces one).
    """
    step = await _step_or_refusal(kimi, kimi_env, make_provider, moonshot, base_url, cassette, force_tool=force_tool)
    for which, body in step:
        if thinking(body):
            assert body.get("tool_choice") in (None, "auto", "none"), f"the {which} request sends tool_choice {body.get('tool_choice')!r} with thinking on"


async def _step_or_refusal(kimi, kimi_env, make_provider, moonshot, base_url, cassette, temperature=None, force_tool=False):
    """The requests of a tool step as sent; a first request Moonshot refuses is judged here too."""
    try:
        return _requests(await run_tool_step(kimi, kimi_env, make_provider, moonshot, base_url, cassette, temperature=temperature,
                                             force_tool=force_tool))
    except pytest.skip.Exception:
        sent = moonshot.to(f"{base_url}/chat/completions", "POST")
        if not sent:
            raise
        return [("first", sent[0].json())]
