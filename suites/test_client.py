"""CLIENT and ROUTE-KEY: talking to the model (guide §3.2.3, §3.3.4–§3.3.6)."""

from __future__ import annotations

import pytest

from kimi_conformance.letta_compat import maybe_await
from suites.helpers import KIMI_KEY, OPENAI_KEY, listed

CHAT_REQUEST = {
    "messages": [{"role": "user", "content": "What's the weather in Beijing?"}],
    "tools": [{"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
}
CHATS = [("chat/tool-calls", "kimi-k2.5"), ("chat/reasoning", "kimi-k2.6")]  # the second is a thinking model


@pytest.fixture
def kimi_config(make_provider):
    """A Kimi `LLMConfig` as the build's provider makes it: ``kimi_config(model, endpoint)``."""

    def make(model: str, endpoint: str | None):
        template = make_provider("https://api.moonshot.cn/v1")._list_llm_models(
            [{"id": "moonshot-v1-8k", "object": "model", "owned_by": "moonshot", "context_length": 8192}]
        )
        assert template, "the provider lists nothing for moonshot-v1-8k (see LIST-PREFIX)"
        return template[0].model_copy(update={"model": model, "model_endpoint": endpoint})

    return make


@pytest.mark.behavior("CLIENT-DISPATCH")
def test_factory_returns_the_kimi_client(kimi):
    """`LLMClient.create(provider_type=ProviderType.kimi)` returns a `KimiClient`.

    If this fails: add `case ProviderType.kimi:` to the factory's `match`, returning
    `KimiClient(...)` (before the `case _:` that returns `OpenAIClient`).
    """
    client = kimi.client_factory(provider_type=kimi.provider_type)
    assert isinstance(client, kimi.client_class), f"got {type(client).__name__}"


@pytest.mark.behavior("CLIENT-KWARGS")
@pytest.mark.parametrize("source", ["settings", "env"])
def test_key_comes_from_settings_else_env(kimi, kimi_env, kimi_config, base_url, source, monkeypatch):
    """`_prepare_client_kwargs` takes the key from `model_settings.kimi_api_key`, else from env `KIMI_API_KEY`.

    If this fails: `api_key = model_settings.kimi_api_key or os.environ.get("KIMI_API_KEY")`.
    """
    if source == "settings":
        kimi_env._setting(kimi.settings_api_key, KIMI_KEY)
    else:
        monkeypatch.setenv(kimi.api_key_env, KIMI_KEY)
    kwargs = kimi.client_class()._prepare_client_kwargs(kimi_config("kimi-k2.5", base_url))
    assert kwargs["api_key"] == KIMI_KEY
    assert kwargs["base_url"].rstrip("/") == base_url


@pytest.mark.behavior("CLIENT-KWARGS")
def test_base_url_falls_back_to_settings(kimi, kimi_env, kimi_config, base_url):
    """Without `llm_config.model_endpoint`, the base URL is `model_settings.kimi_base_url`.

    If this fails: `base_url = llm_config.model_endpoint or model_settings.kimi_base_url`.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.base_url(base_url)
    kwargs = kimi.client_class()._prepare_client_kwargs(kimi_config("kimi-k2.5", None))
    assert kwargs["base_url"].rstrip("/") == base_url


@pytest.mark.behavior("CLIENT-KWARGS")
def test_no_key_raises_value_error(kimi, kimi_env, kimi_config):
    """Without a Kimi key anywhere, `_prepare_client_kwargs` raises `ValueError` (no OpenAI or dummy key).

    If this fails: raise `ValueError("Kimi API key is required.")` when neither the settings
    nor the environment have a key (an OpenAI key is set, and must not be used instead).
    """
    kimi_env.openai_key(OPENAI_KEY)
    with pytest.raises(ValueError):
        kimi.client_class()._prepare_client_kwargs(kimi_config("kimi-k2.5", "https://api.moonshot.cn/v1"))


@pytest.mark.behavior("CLIENT-CHAT")
@pytest.mark.parametrize(("cassette", "model"), CHATS, ids=["tool-calls", "reasoning"])
async def test_chat_completion_round_trip(kimi, kimi_env, kimi_config, moonshot, base_url, cassette, model):
    """A chat completion goes to `{base_url}/chat/completions` with the Kimi key and model id; tool calls (and reasoning) come back.

    If this fails: `KimiClient` must send with `OpenAI(api_key=<kimi key>, base_url=<config endpoint>)`,
    and the reply must convert to a `ChatCompletionResponse` keeping `tool_calls` (their ids
    round-trip) and, for thinking models, `reasoning_content`.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.base_url(base_url)  # a consistent deployment: where the base URL comes from is CLIENT-KWARGS's question
    served = moonshot.serve(cassette, base_url)
    config = kimi_config(model, base_url)
    client = kimi.client_class()
    raw = client.request({"model": model, **CHAT_REQUEST}, config)
    reply = await maybe_await(client.convert_response_to_chat_completion(raw, [], config))
    sent = moonshot.to(f"{base_url}/chat/completions", "POST")
    assert len(sent) == 1, f"requests: {[r.method + ' ' + r.url for r in moonshot.requests]}"
    assert sent[0].bearer == KIMI_KEY
    assert sent[0].json()["model"] == model
    assert type(reply).__name__ == "ChatCompletionResponse"
    message = reply.choices[0].message
    # what Moonshot answered (the cassette, or in live mode the live reply): ids round-trip, whatever their form
    delivered = served.json_bodies("/chat/completions")[-1]["choices"][0]["message"]
    calls = [(c["id"], c["function"]["name"]) for c in delivered.get("tool_calls") or []]
    if not calls:
        pytest.skip("precondition not met: the model answered without a tool call (live mode): nothing to round-trip")
    assert [(c.id, c.function.name) for c in message.tool_calls or []] == calls
    if delivered.get("reasoning_content"):
        assert message.reasoning_content, "reasoning_content was lost"


@pytest.mark.behavior("ROUTE-KEY")
async def test_a_listed_model_reaches_moonshot_with_the_kimi_key(kimi, kimi_env, make_provider, moonshot, base_url):
    """End to end: a model listed by the Kimi provider, used the way Letta's agent uses it, reaches the Kimi base URL with the Kimi key.

    If this fails: the agent picks its client with `LLMClient.create(provider_type=llm_config.model_endpoint_type)`;
    a config listed with `model_endpoint_type="openai"` gets the OpenAI client and sends the
    OpenAI key to Moonshot. List Kimi configs with an endpoint type that dispatches to `KimiClient`.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.base_url(base_url)
    kimi_env.openai_key(OPENAI_KEY)
    moonshot.serve("models/current", base_url)
    moonshot.serve("chat/tool-calls", base_url)
    config = listed(await make_provider(base_url).list_llm_models_async(), "moonshot-v1-32k")
    client = kimi.client_factory(provider_type=config.model_endpoint_type)
    client.request({"model": config.model, **CHAT_REQUEST}, config)
    sent = moonshot.to(f"{base_url}/chat/completions", "POST")
    assert sent, f"nothing reached {base_url}/chat/completions (requests: {[r.url for r in moonshot.requests]})"
    assert sent[0].bearer != OPENAI_KEY, "the OpenAI key was sent to Moonshot"
    assert sent[0].bearer == KIMI_KEY


# Letta's agent loop prepares its client through the async method; an agent's stored
# config may lack the provider fields (optional in LLMConfig). Found by bench/mutation.py.
PREPARE = {"sync": "_prepare_client_kwargs", "async": "_prepare_client_kwargs_async"}


@pytest.mark.behavior("CLIENT-KWARGS")
@pytest.mark.parametrize("method", list(PREPARE))
async def test_a_config_without_provider_fields_gets_the_kimi_key(kimi, kimi_env, kimi_config, base_url, method):
    """A Kimi config with no `provider_name`/`provider_category` gets the Kimi key and its own endpoint, sync and async.

    If this fails: test the category with `llm_config.provider_category == ProviderCategory.byok`
    (it may be None: never order it), and give `_prepare_client_kwargs_async` the same key and
    base URL as `_prepare_client_kwargs`.
    """
    kimi_env.api_key(KIMI_KEY)
    config = kimi_config("moonshot-v1-8k", base_url).model_copy(update={"provider_name": None, "provider_category": None})
    kwargs = await maybe_await(getattr(kimi.client_class(), PREPARE[method])(config))
    assert kwargs["api_key"] == KIMI_KEY
    assert kwargs["base_url"].rstrip("/") == base_url
