"""HANDLE: handle format (guide §3.1.1, §3.2.4, §4.1.3)."""

from __future__ import annotations

import pytest

from kimi_conformance.letta_compat import call

CASES = [
    ("kimi", "kimi-k2-0905-preview", "kimi/kimi-k2-0905-preview"),
    ("kimi", "kimi-k2.6", "kimi/kimi-k2.6"),
    ("kimi", "moonshot-v1-8k", "kimi/moonshot-v1-8k"),
    ("kimi", "moonshotai/kimi-k2", "kimi/kimi-k2"),
    ("kimi", "org/team/kimi-k3", "kimi/kimi-k3"),
    ("my-kimi", "kimi-k2.5", "my-kimi/kimi-k2.5"),
    ("my-kimi", "moonshotai/kimi-k2", "my-kimi/kimi-k2"),
    ("moonshot", "kimi-latest", "moonshot/kimi-latest"),
]


@pytest.mark.behavior("HANDLE-FORMAT")
@pytest.mark.parametrize(("name", "model", "handle"), CASES, ids=[f"{n}:{m}" for n, m, _ in CASES])
async def test_handle_is_provider_name_slash_last_segment(make_provider, name, model, handle):
    """`get_handle(m)` is `f"{provider.name}/{m}"`, keeping only the last `/` segment of `m`.

    If this fails: `model = model_name.split("/")[-1]; return f"{self.name}/{model}"` —
    use the provider's own name (a user's `my-kimi` too), never a hard-coded `kimi`,
    never the first segment or the whole slash path.
    """
    assert await call(make_provider("https://api.moonshot.cn/v1", name=name).get_handle, model) == handle
