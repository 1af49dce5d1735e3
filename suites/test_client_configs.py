"""CLIENT-KWARGS for Kimi configs that did not come straight from the provider's listing (guide §3.3.5).

An agent's stored ``LLMConfig`` may lack the provider fields (``provider_name``,
``provider_category`` are optional: a config written by hand, or stored before they
existed), and Letta's agent loop prepares its client through the async
``_prepare_client_kwargs_async``, not the sync method the other CLIENT-KWARGS tests
call. Found by the mutation benchmark (bench/mutation.py): an ordering comparison on
the category (``>``, ``<=``, ...) raised on such a config, and nothing ran the async path.
"""

from __future__ import annotations

import pytest

from kimi_conformance.letta_compat import maybe_await
from suites.helpers import KIMI_KEY, PROBE_ENTRY

PREPARE = {"sync": "_prepare_client_kwargs", "async": "_prepare_client_kwargs_async"}


@pytest.mark.behavior("CLIENT-KWARGS")
@pytest.mark.parametrize("method", list(PREPARE))
async def test_a_config_without_provider_fields_gets_the_kimi_key(kimi, kimi_env, make_provider, base_url, method):
    """A Kimi config with no `provider_name`/`provider_category` gets the Kimi key and its own endpoint, sync and async.

    If this fails: test the category with `llm_config.provider_category == ProviderCategory.byok`
    (it may be None: never order it), and give `_prepare_client_kwargs_async` the same key and
    base URL as `_prepare_client_kwargs`.
    """
    kimi_env.api_key(KIMI_KEY)
    listed = make_provider(base_url)._list_llm_models([PROBE_ENTRY])
    assert listed, "the provider lists nothing for moonshot-v1-8k (see LIST-PREFIX)"
    config = listed[0].model_copy(update={"provider_name": None, "provider_category": None})
    kwargs = await maybe_await(getattr(kimi.client_class(), PREPARE[method])(config))
    assert kwargs["api_key"] == KIMI_KEY
    assert kwargs["base_url"].rstrip("/") == base_url
