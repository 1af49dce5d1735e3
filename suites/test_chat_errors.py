"""CLIENT-ERRORS: a failed chat request surfaces as Letta's error for its kind (guide §6.1)."""

from __future__ import annotations

import sys

import pytest

from suites.chat_helpers import build_request, kimi_client, listed_config, opening_messages, skip_unless_chat_reached, tool_schema
from suites.helpers import KIMI_KEY

# (cassette, the Letta error class the agent loop must get, what it must never be)
ERRORS = {
    "401": ("chat/error-401-invalid-authentication", "LLMAuthenticationError", None),
    "403": ("chat/error-403-permission-denied", "LLMPermissionDeniedError", "LLMAuthenticationError"),
    "400": ("chat/error-400-invalid-request", "LLMBadRequestError", "LLMAuthenticationError"),
    "400-reasoning": ("chat/error-400-reasoning-content-missing", "LLMBadRequestError", "LLMAuthenticationError"),
    "429-rate-limit": ("chat/error-429-rate-limit", "LLMRateLimitError", "LLMAuthenticationError"),
    "429-overloaded": ("chat/error-429-engine-overloaded", "LLMRateLimitError", "LLMAuthenticationError"),
    "429-quota": ("chat/error-429-quota", "LLMError", "LLMAuthenticationError"),
    "500": ("chat/error-500-server-error", "LLMServerError", "LLMAuthenticationError"),
    "502-html": ("chat/error-502-gateway-html", "LLMServerError", "LLMAuthenticationError"),
}

# the error classes Letta's agent loop retries (letta_agent_v3: rate limits, server errors, overload)
RETRIED = ("LLMRateLimitError", "LLMServerError", "LLMProviderOverloaded")


async def failed_chat(kimi, kimi_env, make_provider, moonshot, base_url, cassette):
    """The error the agent loop gets for a chat request answered by ``cassette``: ``(error, answer body, requests sent)``.

    Letta's agent loop calls ``request_async`` and raises ``client.handle_llm_error(e)`` for
    what it raises; an error that is already Letta's is kept as it is.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)  # not about the setting: a build without one is judged at its default URL
    config = await listed_config(make_provider, moonshot, base_url, thinking_model=None)  # an error's kind does not depend on the model
    served = moonshot.serve(cassette, base_url)
    client = kimi_client(kimi, config)
    data = await build_request(client, opening_messages(), config, [tool_schema("send_message")])
    try:
        await client.request_async(data, config)
    except Exception as e:  # noqa: BLE001 - the error is what is judged
        skip_unless_chat_reached(moonshot, base_url)
        error = e if isinstance(e, kimi.llm_error) else client.handle_llm_error(e)
    else:
        pytest.fail(f"the chat request answered {served.interactions[0].status} returned normally", pytrace=False)
    return error, served.interactions[0].body.decode(errors="replace"), moonshot.to(f"{base_url}/chat/completions", "POST")


def letta_error(kimi, name: str):
    """Letta's error class ``name``, beside the build's ``LLMError`` (the binding's errors module)."""
    return getattr(sys.modules[kimi.llm_error.__module__], name)


@pytest.mark.behavior("CLIENT-ERRORS")
@pytest.mark.parametrize("kind", list(ERRORS))
async def test_a_failed_chat_request_raises_the_error_of_its_kind(kimi, kimi_env, make_provider, moonshot, base_url, kind):
    """Each Moonshot error answer on the chat call becomes Letta's error of that kind, and never an authentication error unless it is a 401.

    If this fails: map the openai SDK's errors the way `OpenAIClient.handle_llm_error` does
    (401 -> LLMAuthenticationError, 403 -> LLMPermissionDeniedError, 400 -> LLMBadRequestError,
    429 -> LLMRateLimitError, 5xx and HTML pages -> LLMServerError); a billing 429
    (`exceeded_current_quota_error`) must not become an authentication error.
    """
    cassette, want, never = ERRORS[kind]
    error, _, _ = await failed_chat(kimi, kimi_env, make_provider, moonshot, base_url, cassette)
    assert isinstance(error, letta_error(kimi, want)), f"a {kind} answer raised {type(error).__name__}: {error}; want {want}"
    if never:
        assert not isinstance(error, letta_error(kimi, never)), f"a {kind} answer raised {type(error).__name__}, an authentication error"


@pytest.mark.behavior("CLIENT-ERRORS")
async def test_a_bad_request_carries_moonshots_message(kimi, kimi_env, make_provider, moonshot, base_url):
    """A 400 on the chat call carries Moonshot's message (so the user sees what Moonshot refused).

    If this fails: keep the SDK error's text (or body) in the `LLMBadRequestError` message.
    """
    error, body, _ = await failed_chat(kimi, kimi_env, make_provider, moonshot, base_url, ERRORS["400-reasoning"][0])
    assert "reasoning_content is missing" in str(error), f"the 400's message was lost: {error}"


@pytest.mark.behavior("CLIENT-ERRORS")
async def test_a_quota_429_is_not_retried(kimi, kimi_env, make_provider, moonshot, base_url):
    """A billing 429 (`exceeded_current_quota_error`) is sent once and raised as an error Letta does not retry.

    If this fails: do not retry a 429 whose type is `exceeded_current_quota_error` (build the
    SDK client with `max_retries=0`, Letta's loop retries rate limits itself) and raise it as
    `LLMInsufficientCreditsError` (or a plain `LLMError`), not `LLMRateLimitError`.
    """
    error, _, sent = await failed_chat(kimi, kimi_env, make_provider, moonshot, base_url, ERRORS["429-quota"][0])
    assert len(sent) == 1, f"the quota 429 was sent {len(sent)} times"
    retryable = [name for name in RETRIED if isinstance(error, getattr(sys.modules[kimi.llm_error.__module__], name, ()))]
    assert not retryable, f"the quota 429 raised {type(error).__name__}, which Letta's agent loop retries ({', '.join(retryable)})"
