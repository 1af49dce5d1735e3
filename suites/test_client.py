"""CLIENT and ROUTE-KEY: talking to the model (guide §3.2.3, §3.3.4–§3.3.6).

Judged on the request the client sends (observed in the replay), through the request
path of Letta's agent loop (kimi_conformance.letta_compat.chat_step), for a config the
build's provider lists (the ``kimi_config`` fixture): never on how a client prepares it.
"""

from __future__ import annotations

import pytest

from kimi_conformance import letta_compat
from kimi_conformance.letta_compat import call, chat_step
from kimi_conformance.moonshot_chat import check_chat_request
from suites.helpers import KIMI_KEY, OPENAI_KEY, recorded_model, require

QUESTION = "What's the weather in Beijing?"
# a tool's JSON schema, as Letta's agent loop passes it to build_request_data
TOOLS = [{"name": "get_weather", "description": "The weather in a city.",
          "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}]
CHATS = [("chat/tool-calls", "any"), ("chat/reasoning", "thinking")]  # the model: a served id (a thinking one for reasoning)


def sent_chats(moonshot) -> list:
    return [r for r in moonshot.requests if r.method == "POST" and r.url.endswith("/chat/completions")]


def where(moonshot) -> str:
    return f"requests: {[r.method + ' ' + r.url for r in moonshot.requests]}"


async def chat(moonshot, client, config, **kwargs):
    """``chat_step`` (Letta's agent-loop request path); when it fails because Moonshot refused the
    request's sampling parameters or history (its 400, kimi_conformance.moonshot_chat), the
    behaviour under test is not the judge: CLIENT-PARAMS / CLIENT-HISTORY are (one root cause, one ID)."""
    try:
        return await chat_step(client, config, **kwargs)
    except Exception:
        for request in sent_chats(moonshot):
            refused = check_chat_request(request.json())
            if refused is not None:
                pytest.skip(f"precondition not met: Moonshot refuses the request the build sent "
                            f"({refused[1]['error']['message']}; judged by CLIENT-PARAMS / CLIENT-HISTORY)")
        raise


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
async def test_key_comes_from_settings_else_env(kimi, kimi_env, kimi_config, moonshot, base_url, source, monkeypatch):
    """The chat request carries the key from `model_settings.kimi_api_key`, else from env `KIMI_API_KEY`, and goes to the config's endpoint.

    If this fails: `api_key = model_settings.kimi_api_key or os.environ.get("KIMI_API_KEY")`,
    `base_url = llm_config.model_endpoint or model_settings.kimi_base_url`.
    """
    config = await kimi_config(base_url, behavior="CLIENT-KWARGS")
    if source == "settings":
        require(kimi, "settings_api_key")
        kimi_env._setting("settings_api_key", KIMI_KEY)
    else:
        require(kimi, "api_key_env")
        monkeypatch.setenv(kimi.api_key_env, KIMI_KEY)
    moonshot.serve("chat/tool-calls", base_url)
    await chat(moonshot, kimi.client_class(), config, text=QUESTION, tools=TOOLS)
    sent = sent_chats(moonshot)
    assert [r.url for r in sent] == [f"{base_url}/chat/completions"], where(moonshot)
    assert sent[0].bearer == KIMI_KEY, f"the chat request carried another key than the one in {source}"


@pytest.mark.behavior("CLIENT-KWARGS")
async def test_settings_key_wins_over_env(kimi, kimi_env, kimi_config, moonshot, base_url, monkeypatch):
    """With a key in both the settings and env `KIMI_API_KEY`, the chat request carries the settings' key.

    If this fails: read `model_settings.kimi_api_key` first and the environment only when it is empty.
    """
    require(kimi, "settings_api_key", "api_key_env")
    config = await kimi_config(base_url, behavior="CLIENT-KWARGS")
    kimi_env._setting("settings_api_key", KIMI_KEY)
    monkeypatch.setenv(kimi.api_key_env, "sk-kit-replay-kimi-env-only-0000")
    moonshot.serve("chat/tool-calls", base_url)
    await chat(moonshot, kimi.client_class(), config, text=QUESTION, tools=TOOLS)
    sent = sent_chats(moonshot)
    assert sent, where(moonshot)
    assert sent[0].bearer == KIMI_KEY, "the environment's key was sent although the settings hold one"


@pytest.mark.behavior("CLIENT-KWARGS")
async def test_base_url_falls_back_to_settings(kimi, kimi_env, kimi_config, moonshot, base_url):
    """Without `llm_config.model_endpoint`, the chat request goes to `model_settings.kimi_base_url`.

    If this fails: `base_url = llm_config.model_endpoint or model_settings.kimi_base_url`.
    """
    config = await kimi_config(base_url, behavior="CLIENT-KWARGS")
    kimi_env.api_key(KIMI_KEY)
    kimi_env.base_url(base_url)
    moonshot.serve("chat/tool-calls", base_url)
    without_endpoint = config.model_copy(update={"model_endpoint": None})
    await chat(moonshot, kimi.client_class(), config, text=QUESTION, tools=TOOLS, send_config=without_endpoint)
    assert [r.url for r in sent_chats(moonshot)] == [f"{base_url}/chat/completions"], where(moonshot)


@pytest.mark.behavior("CLIENT-KWARGS")
async def test_no_key_raises_value_error(kimi, kimi_env, kimi_config, moonshot, base_url):
    """Without a Kimi key anywhere, the client raises `ValueError` before any request (no OpenAI or dummy key).

    If this fails: raise `ValueError("Kimi API key is required.")` when neither the settings
    nor the environment have a key (an OpenAI key is set, and must not be used instead).
    """
    config = await kimi_config(base_url, behavior="CLIENT-KWARGS")
    kimi_env.openai_key(OPENAI_KEY)
    moonshot.serve("chat/tool-calls", base_url)
    with pytest.raises(ValueError):
        await chat(moonshot, kimi.client_class(), config, text=QUESTION, tools=TOOLS)
    assert sent_chats(moonshot) == [], f"a request was sent without a Kimi key ({where(moonshot)})"


@pytest.mark.behavior("CLIENT-KWARGS")
@pytest.mark.parametrize("sync", [False, True], ids=["request_async", "request"])
async def test_a_config_without_provider_fields_gets_the_kimi_key(kimi, kimi_env, kimi_config, moonshot, base_url, sync):
    """A Kimi config with no `provider_name`/`provider_category` (an agent's stored config) is sent with the Kimi key to its own endpoint.

    Through `request_async` (Letta's agent loop) and `request` (Letta's legacy agent and
    summarizer, through `send_llm_request`).
    If this fails: test the category with `llm_config.provider_category == ProviderCategory.byok`
    (it may be None: never order it), on the async path Letta's agent loop takes as on the sync one.
    """
    kimi_env.api_key(KIMI_KEY)
    config = await kimi_config(base_url, behavior="CLIENT-KWARGS", provider_name=None, provider_category=None)
    moonshot.serve("chat/tool-calls", base_url)
    await chat(moonshot, kimi.client_class(), config, text=QUESTION, tools=TOOLS, sync=sync)
    sent = sent_chats(moonshot)
    assert [r.url for r in sent] == [f"{base_url}/chat/completions"], where(moonshot)
    assert sent[0].bearer == KIMI_KEY


@pytest.mark.behavior("CLIENT-KWARGS")
async def test_a_streamed_request_carries_the_kimi_key(kimi, kimi_env, kimi_config, moonshot, base_url):
    """A streamed chat request (`stream_async`, what Letta's agent loop uses for streaming steps) carries the Kimi key to the config's endpoint.

    Only the request is judged here (the replayed answer is not a stream; assembling one is CLIENT-STREAM's).
    If this fails: the streaming path must take its key and base URL the way `request_async` does,
    never `OPENAI_API_KEY`.
    """
    stream = getattr(kimi.client_class, "stream_async", None)
    if stream is None:
        pytest.skip("precondition not met: the client has no streaming path (stream_async)")
    config = await kimi_config(base_url, behavior="CLIENT-KWARGS")
    kimi_env.api_key(KIMI_KEY)
    kimi_env.openai_key(OPENAI_KEY)
    moonshot.serve("chat/tool-calls", base_url)
    client = kimi.client_class()
    request_data = await call(client.build_request_data, **letta_compat.request_arguments(client, config, text=QUESTION, tools=TOOLS))
    try:
        chunks = await call(client.stream_async, request_data, config)
        async for _ in chunks:
            pass
    except Exception:  # noqa: BLE001 - the replayed answer is not a stream: the request is the verdict
        pass
    sent = sent_chats(moonshot)
    assert [r.url for r in sent] == [f"{base_url}/chat/completions"], where(moonshot)
    assert sent[0].bearer == KIMI_KEY, "the streamed request carried another key than the Kimi key"


@pytest.mark.behavior("CLIENT-CHAT")
@pytest.mark.parametrize(("cassette", "need"), CHATS, ids=["tool-calls", "reasoning"])
async def test_chat_completion_round_trip(kimi, kimi_env, kimi_config, moonshot, base_url, cassette, need):
    """A chat completion goes to `{base_url}/chat/completions` with the Kimi key and model id; tool calls (and reasoning) come back.

    If this fails: `KimiClient` must send with `OpenAI(api_key=<kimi key>, base_url=<config endpoint>)`,
    and the reply must convert to a `ChatCompletionResponse` keeping `tool_calls` (their ids
    round-trip) and, for thinking models, `reasoning_content`.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)  # a consistent deployment: where the base URL comes from is CLIENT-KWARGS's question
    config = await kimi_config(base_url, need=need, behavior="CLIENT-CHAT", prefer=recorded_model(moonshot, cassette))
    served = moonshot.serve(cassette, base_url)
    reply = await chat(moonshot, kimi.client_class(), config, text=QUESTION, tools=TOOLS)
    sent = sent_chats(moonshot)
    assert len(sent) == 1, where(moonshot)
    assert sent[0].url == f"{base_url}/chat/completions"
    assert sent[0].bearer == KIMI_KEY
    assert sent[0].json()["model"] == config.model
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
async def test_a_listed_model_reaches_moonshot_with_the_kimi_key(kimi, kimi_env, kimi_config, moonshot, base_url):
    """End to end: a model listed by the Kimi provider, used the way Letta's agent uses it, reaches the Kimi base URL with the Kimi key.

    If this fails: the agent picks its client with `LLMClient.create(provider_type=llm_config.model_endpoint_type)`;
    a config listed with `model_endpoint_type="openai"` gets the OpenAI client and sends the
    OpenAI key to Moonshot. List Kimi configs with an endpoint type that dispatches to `KimiClient`,
    whose request carries the Kimi key to the provider's base URL.
    """
    kimi_env.api_key(KIMI_KEY)
    kimi_env.deploy_at(base_url)
    kimi_env.openai_key(OPENAI_KEY)
    config = await kimi_config(base_url, behavior="ROUTE-KEY", check_endpoint=False)
    moonshot.serve("chat/tool-calls", base_url)
    client = await call(kimi.client_factory, provider_type=config.model_endpoint_type)
    try:
        await chat_step(client, config, text=QUESTION, tools=TOOLS)
    except Exception:  # noqa: BLE001 - what reached Moonshot is the verdict, below
        pass
    sent = moonshot.to(f"{base_url}/chat/completions", "POST")
    assert sent, f"nothing reached {base_url}/chat/completions ({where(moonshot)})"
    assert sent[0].bearer != OPENAI_KEY, "the OpenAI key was sent to Moonshot"
    assert sent[0].bearer == KIMI_KEY
