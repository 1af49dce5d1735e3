"""LIST: model listing (guide §2.1, §2.3, §3.2)."""

from __future__ import annotations

import pytest

from kimi_conformance.letta_compat import call
from suites.helpers import (
    CONTRACT_FOREIGN_IDS,
    HARDCODED,
    KIMI_KEY,
    by_model,
    capture_notices,
    filter_drops_every_entry,
    from_the_api,
    list_inline,
    new_notices,
    served_ids,
)

# The contract's own examples of the filter (LIST-PREFIX), served inline beside a kept entry.
FOREIGN_IDS = [*CONTRACT_FOREIGN_IDS, None]
KEPT_IDS = ["moonshot-v1-8k", "moonshot-v1-128k", "moonshot-v1-auto", "kimi-k2.5", "kimi-k2.6", "kimi-k3", "kimi-k2-0905-preview", "kimi-latest"]
# cassettes whose lists hold no usable entry; failed /models calls come from the folder (conftest: models_error)
NOTHING_USABLE = ["models/empty", "models/foreign-only"]
INJECTED_FAILURES = ["connect-error", "timeout", "malformed-json"]


def entry(model_id, **extra) -> dict:
    e = {"object": "model", "created": 1774915200, "owned_by": "moonshot", **extra}
    if model_id is not None:
        e["id"] = model_id
    return e


@pytest.mark.behavior("LIST-PREFIX")
@pytest.mark.parametrize("foreign", FOREIGN_IDS, ids=[str(f) for f in FOREIGN_IDS])
async def test_foreign_ids_are_dropped(make_provider, moonshot, foreign):
    """`list_llm_models_async()` drops ids that do not start with `moonshot-`/`kimi-` (case-sensitive), and entries without an id.

    If this fails: filter with `id.startswith("moonshot-") or id.startswith("kimi-")` on the
    exact id, without lower-casing, and skip entries that have no `id`.
    """
    configs = await list_inline(make_provider, moonshot, [entry("moonshot-v1-8k", context_length=8192), entry(foreign, context_length=8192)])
    assert [c.model for c in configs] == ["moonshot-v1-8k"], f"{foreign!r} must be dropped"


@pytest.mark.behavior("LIST-PREFIX")
@pytest.mark.parametrize("kept", KEPT_IDS)
async def test_moonshot_and_kimi_ids_are_kept(make_provider, moonshot, kept):
    """`list_llm_models_async()` keeps every id starting with `moonshot-` or `kimi-` (the K2 series included).

    If this fails: the filter is too strict: the guide's "before the fix" code keeps only
    `moonshot-`; keep `kimi-` ids too.
    """
    configs = await list_inline(make_provider, moonshot, [entry("moonshot-v1-32k", context_length=32768), entry(kept, context_length=131072)])
    assert sorted(c.model for c in configs) == sorted({"moonshot-v1-32k", kept})


@pytest.mark.behavior("LIST-PREFIX")
async def test_listing_a_mixed_api_answer_keeps_exactly_the_moonshot_ids(make_provider, moonshot, base_url):
    """Through `list_llm_models_async`, a /models answer mixing Moonshot and foreign ids yields exactly the Moonshot ones.

    If this fails: apply the prefix filter to the API's `data` entries (see the other LIST-PREFIX tests).
    """
    served = moonshot.serve("models/mixed-ids", base_url)
    configs = await call(make_provider(base_url).list_llm_models_async)
    assert sorted(c.model for c in configs) == sorted(served_ids(served, behavior="LIST-PREFIX"))


@pytest.mark.behavior("LIST-CONTEXT")
@pytest.mark.parametrize("cassette", ["models/current", "models/context-override"])
async def test_context_length_from_the_api_wins(make_provider, moonshot, base_url, cassette):
    """Each listed entry's `context_window` is its `context_length`, even where the hardcoded table says otherwise.

    Every served entry with `context_length` is checked (in the kit's cassettes,
    models/context-override lists kimi-k2-0905-preview with 131072 where the table says 262144).
    In live mode: every entry the live API lists.
    If this fails: use `model.get("context_length")` before any table lookup; the table
    is only the fallback list (kimi-k2-0905-preview listed with 131072 must give 131072, not 262144).
    """
    served = moonshot.serve(cassette, base_url)
    configs = by_model(await call(make_provider(base_url).list_llm_models_async))
    with_context = served_ids(served, "with-context", behavior="LIST-CONTEXT")
    answered = {
        e["id"]: e["context_length"]
        for body in served.json_bodies("/models")
        for e in body.get("data", [])
        if isinstance(e, dict) and e.get("id") in configs and e.get("id") in with_context
    }
    if not answered:
        pytest.skip(f"precondition not met: none of {with_context} was listed (judged by LIST-PREFIX)")
    assert {m: configs[m].context_window for m in answered} == answered


@pytest.mark.behavior("LIST-CONTEXT")
async def test_missing_context_length_means_8192(make_provider, moonshot, base_url, finding):
    """Every entry without `context_length` (the 2024 shape) gets 8192.

    If this fails: default to 8192 (`model.get("context_length", 8192)`), as §3.2.3 does.
    How this compares with the hardcoded table for a known id is recorded as INFO.
    """
    cassette = moonshot.serve("models/legacy-2024", base_url)
    configs = by_model(from_the_api(await call(make_provider(base_url).list_llm_models_async), cassette))
    windows = {m: configs[m].context_window for m in served_ids(cassette, "without-context", behavior="LIST-CONTEXT")}
    for model_id, window in windows.items():
        if model_id in HARDCODED and window != HARDCODED[model_id]:
            finding(f"{model_id} listed without context_length gets {window}; the hardcoded table says {HARDCODED[model_id]}")
    assert windows == dict.fromkeys(windows, 8192)


@pytest.mark.behavior("LIST-FALLBACK")
async def test_http_failure_falls_back_with_a_warning(make_provider, moonshot, base_url, models_error):
    """When GET /models answers an HTTP error, `list_llm_models_async` returns the hardcoded list and warns.

    If this fails: catch the failure in `list_llm_models_async`, emit `warnings.warn` or
    `logger.warning`, and return `_list_llm_models_hardcoded()` (exactly the eight models of §2.1).
    """
    moonshot.serve("models/current", base_url)
    with capture_notices() as baseline:
        await call(make_provider(base_url).list_llm_models_async)
    moonshot.serve(models_error, base_url)
    provider = make_provider(base_url)
    with capture_notices() as seen:
        configs = await call(provider.list_llm_models_async)
    assert {c.model: c.context_window for c in configs} == HARDCODED
    assert new_notices(baseline, seen), "falling back after a failed /models call must warn (warnings.warn or a WARNING log record)"


@pytest.mark.behavior("LIST-FALLBACK")
@pytest.mark.parametrize("fault", INJECTED_FAILURES)
async def test_network_failure_falls_back_with_a_warning(make_provider, moonshot, base_url, fault):
    """Connection refused, a timeout or malformed JSON from /models give the hardcoded list and a warning.

    If this fails: treat every exception of the /models call (not only HTTP status errors)
    as a reason to fall back, and warn.
    """
    moonshot.serve("models/current", base_url)
    with capture_notices() as baseline:
        await call(make_provider(base_url).list_llm_models_async)
    moonshot.inject("GET", f"{base_url}/models", fault)
    with capture_notices() as seen:
        configs = await call(make_provider(base_url).list_llm_models_async)
    assert {c.model: c.context_window for c in configs} == HARDCODED
    assert new_notices(baseline, seen), f"falling back after {fault} must warn"


@pytest.mark.behavior("LIST-FALLBACK")
async def test_no_api_key_falls_back_without_a_request(make_provider, moonshot, base_url):
    """Without an API key, listing returns the hardcoded list (and sends nothing).

    If this fails: check the key before requesting (the guide's `_get_models_async` raises on a
    missing key) and let `list_llm_models_async` fall back instead of propagating it.
    """
    configs = await call(make_provider(base_url, api_key=None).list_llm_models_async)
    assert {c.model: c.context_window for c in configs} == HARDCODED
    assert moonshot.requests == []


@pytest.mark.behavior("LIST-FALLBACK")
@pytest.mark.parametrize("cassette", NOTHING_USABLE)
async def test_nothing_usable_falls_back(make_provider, moonshot, base_url, cassette):
    """An answer with no kept entry (empty `data`, only foreign ids) gives the hardcoded list.

    If this fails: after filtering, return `_list_llm_models_hardcoded()` when no config is left.
    """
    provider = make_provider(base_url)
    await filter_drops_every_entry(make_provider, moonshot, moonshot.serve(cassette, base_url))
    configs = await call(provider.list_llm_models_async)
    assert {c.model: c.context_window for c in configs} == HARDCODED


@pytest.mark.behavior("LIST-FALLBACK-NOTICE")
@pytest.mark.parametrize("cassette", NOTHING_USABLE)
async def test_nothing_usable_fallback_says_so(make_provider, moonshot, base_url, cassette):
    """Falling back because the API listed nothing usable emits a warning or WARNING log record.

    If this fails: §3.2.3 falls back silently here; warn (as for a failed call) so a user can
    tell live models from the stale built-in list.
    """
    moonshot.serve("models/current", base_url)
    with capture_notices() as baseline:
        await call(make_provider(base_url).list_llm_models_async)
    provider = make_provider(base_url)
    await filter_drops_every_entry(make_provider, moonshot, moonshot.serve(cassette, base_url))
    with capture_notices() as seen:
        configs = await call(provider.list_llm_models_async)
    if {c.model for c in configs} != set(HARDCODED):
        pytest.skip("precondition not met: no fallback happened (judged by LIST-FALLBACK)")
    assert new_notices(baseline, seen), "the fallback after an answer with nothing usable was silent"


@pytest.mark.behavior("LIST-FIELDS")
@pytest.mark.parametrize(("name", "category"), [("kimi", "base"), ("my-kimi", "base"), ("my-kimi", "byok")])
async def test_listed_configs_carry_the_provider_fields(kimi, make_provider, moonshot, base_url, name, category):
    """Each listed config has model = id, model_endpoint = base_url, handle = `<name>/<id>`, provider name and category (base or byok).

    If this fails: build each `LLMConfig` with `model_endpoint=self.base_url`,
    `handle=self.get_handle(id)`, `provider_name=self.name`, `provider_category=self.provider_category`.
    """
    cassette = moonshot.serve("models/current", base_url)
    provider_category = kimi.provider_category_byok if category == "byok" else kimi.provider_category_base
    provider = make_provider(base_url, name=name, category=provider_category)
    configs = from_the_api(await call(provider.list_llm_models_async), cassette)
    for config in configs:
        assert config.model_endpoint == base_url
        assert config.handle == f"{name}/{config.model}"
        assert config.provider_name == name
        assert config.provider_category == provider_category


@pytest.mark.behavior("LIST-FIELDS")
async def test_fallback_configs_carry_the_provider_fields(make_provider, moonshot, base_url):
    """The hardcoded fallback list carries the same fields (endpoint, handle, provider) as a live listing.

    If this fails: build the hardcoded configs with the same code path as the live ones.
    """
    moonshot.serve("models/empty", base_url)
    configs = await call(make_provider(base_url, name="my-kimi").list_llm_models_async)
    for config in configs:
        assert (config.model_endpoint, config.handle, config.provider_name) == (base_url, f"my-kimi/{config.model}", "my-kimi")


@pytest.mark.behavior("LIST-REQUEST")
async def test_listing_sends_get_models_with_the_bearer_key(make_provider, moonshot, base_url):
    """Listing sends `GET {base_url}/models` with `Authorization: Bearer <api key>`.

    If this fails: request `f"{self.base_url}/models"` with the provider's own key as a
    Bearer token (not the OpenAI key, not another base URL).
    """
    moonshot.serve("models/current", base_url)
    await call(make_provider(base_url).list_llm_models_async)
    sent = moonshot.to(f"{base_url}/models", "GET")
    assert sent, f"no GET {base_url}/models was sent (requests: {[r.url for r in moonshot.requests]})"
    assert all(r.bearer == KIMI_KEY for r in sent), "the listing request must carry the provider's key as a Bearer token"
    assert len(moonshot.requests) == len(sent), f"unexpected requests: {[r.url for r in moonshot.requests]}"
