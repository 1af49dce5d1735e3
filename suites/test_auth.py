"""AUTH: key checking (guide §2.2, §4.2)."""

from __future__ import annotations

import httpx
import pytest

from suites.helpers import KIMI_KEY

UNAUTHORIZED = ["errors/models-401-invalid-authentication", "errors/models-401-incorrect-api-key"]
OTHER_HTTP = [
    "errors/models-403-permission-denied",
    "errors/models-404-not-found",
    "errors/models-429-rate-limit",
    "errors/models-429-engine-overloaded",
    "errors/models-429-quota",
    "errors/models-500-server-error",
    "errors/models-503-overloaded",
    "errors/models-404-url-not-found", "errors/models-500-unexpected-output", "errors/models-502-bad-gateway", "errors/models-504-gateway-timeout",
]
# Error statuses no cassette holds, answered in Moonshot's error format: 400 is the lowest one.
INJECTED_HTTP = {"injected-400-invalid-request": (400, "invalid_request_error")}
NETWORK = ["connect-error", "timeout"]


def error_answer(status: int, error_type: str):
    """A replay fault: /models answers ``status`` with Moonshot's error body."""
    body = {"error": {"message": f"[injected] HTTP {status}", "type": error_type}}
    return lambda request: httpx.Response(status, json=body)


@pytest.mark.behavior("AUTH-401")
@pytest.mark.parametrize("cassette", UNAUTHORIZED)
async def test_401_raises_the_authentication_error(kimi, make_provider, moonshot, base_url, cassette):
    """`check_api_key()` raises `LLMAuthenticationError` (or a subclass) with `ErrorCode.UNAUTHENTICATED` on a 401, whatever the body.

    If this fails: test `response.status_code == 401` before any catch-all and raise
    `LLMAuthenticationError(message=..., code=ErrorCode.UNAUTHENTICATED)`; do not let an
    `except Exception` re-wrap it as a plain `LLMError`.
    """
    moonshot.serve(cassette, base_url)
    with pytest.raises(kimi.llm_error) as raised:
        await make_provider(base_url).check_api_key()
    assert isinstance(raised.value, kimi.auth_error), f"got {type(raised.value).__name__}, not {kimi.auth_error.__name__}"
    assert getattr(raised.value, "code", None) == kimi.unauthenticated_code


@pytest.mark.behavior("AUTH-NOKEY")
async def test_no_key_raises_value_error_before_any_request(make_provider, moonshot, base_url):
    """`check_api_key()` without a key raises `ValueError` and sends nothing.

    If this fails: start `check_api_key` with `if not self.api_key: raise ValueError(...)`.
    """
    with pytest.raises(ValueError):
        await make_provider(base_url, api_key=None).check_api_key()
    assert moonshot.requests == [], "no request may be sent without a key"


@pytest.mark.behavior("AUTH-OTHER")
@pytest.mark.parametrize("answer", OTHER_HTTP + list(INJECTED_HTTP))
async def test_other_http_errors_raise_llm_error_not_auth(kimi, make_provider, moonshot, base_url, answer):
    """Other HTTP errors (400, 403, 404, 429, 500, 503) raise `LLMError`, never the authentication error and never silence.

    If this fails: after the 401 check, `raise_for_status()` and map `HTTPStatusError` to
    `LLMError`; only 401 is an authentication failure, and every status from 400 up is an error.
    """
    if answer in INJECTED_HTTP:
        moonshot.inject("GET", f"{base_url}/models", error_answer(*INJECTED_HTTP[answer]))
    else:
        moonshot.serve(answer, base_url)
    with pytest.raises(kimi.llm_error) as raised:
        await make_provider(base_url).check_api_key()
    assert not isinstance(raised.value, kimi.auth_error), f"{answer} must not be reported as an authentication failure"


@pytest.mark.behavior("AUTH-OTHER")
@pytest.mark.parametrize("fault", NETWORK)
async def test_network_errors_raise_llm_error(kimi, make_provider, moonshot, base_url, fault):
    """A refused connection or a timeout raises `LLMError` (not the authentication error).

    If this fails: wrap transport exceptions of the /models call in `LLMError`.
    """
    moonshot.inject("GET", f"{base_url}/models", fault)
    with pytest.raises(kimi.llm_error) as raised:
        await make_provider(base_url).check_api_key()
    assert not isinstance(raised.value, kimi.auth_error)


@pytest.mark.behavior("AUTH-OK")
async def test_200_returns_and_carried_the_bearer_key(make_provider, moonshot, base_url):
    """A 200 from /models returns normally, and the request carried `Authorization: Bearer <key>`.

    If this fails: send the provider's key as a Bearer token to `{base_url}/models`
    and return without raising on 2xx.
    """
    moonshot.serve("models/current", base_url)
    await make_provider(base_url).check_api_key()
    sent = moonshot.to(f"{base_url}/models", "GET")
    assert sent and all(r.bearer == KIMI_KEY for r in sent)
