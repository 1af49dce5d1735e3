"""ENABLE-FLAG over HTTP: a server started with the disabling flag has no Kimi provider to use."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.rest


@pytest.mark.behavior("ENABLE-FLAG")
def test_flag_refuses_agents_on_kimi_handles(key_alone_lists_kimi, letta_with_flag, kimi, served_windows):
    """With the key and the disabling flag, creating an agent on ``kimi/<id>`` is refused and Moonshot is never asked.

    Judged only where the key alone makes Kimi models visible (``key_alone_lists_kimi``).

    If it fails: when the flag is set to a non-empty value the build must not enable the
    Kimi provider at all, even with a key: nothing resolves a Kimi handle, nothing calls
    Kimi's base URL.
    """
    server = letta_with_flag
    handle = f"{kimi.provider_name}/{sorted(served_windows)[0]}"
    response = server.new_agent(handle)
    if response.is_success:
        server.delete(f"/v1/agents/{response.json()['id']}")
    assert not response.is_success, f"with {kimi.disable_env}=1, {server.url} created an agent on {handle}"
    keyed = [f"{r.method} {r.path}" for r in server.standin.requests if r.key_ok]
    assert not keyed, f"with {kimi.disable_env}=1, the server still called Kimi's base URL with the key: {keyed}"
