"""The replay serves a cassette at the host it is mounted at, a gateway's too, and nothing else.

LIST-* tests list behind a gateway host (`suites.helpers.GATEWAY_BASE_URL`, LIST-PREFIX:
"whatever the base URL"): the recorded `/models` answer must come back there exactly as
at Moonshot's hosts, without a socket being opened, while a host nothing is mounted at is
still a miss (the test fails at teardown) and a DNS lookup or connection to it is refused.
"""

from __future__ import annotations

import socket

import httpx
import pytest

from kimi_conformance.replay import Replay, cassette_path, load_cassette
from suites.helpers import BASE_URLS, GATEWAY_BASE_URL, LISTING_BASE_URLS

MODELS = "models/current"


@pytest.fixture
def replay():
    started = Replay().start()
    try:
        yield started
    finally:
        started.stop()


def test_the_gateway_host_is_not_moonshot_and_is_one_of_the_listing_base_urls():
    """The third listing base URL is another host than Moonshot's two (a filter keyed on "moonshot" in the URL shows there)."""
    assert LISTING_BASE_URLS == {**BASE_URLS, "gateway": GATEWAY_BASE_URL}
    host = httpx.URL(GATEWAY_BASE_URL).host
    assert "moonshot" not in GATEWAY_BASE_URL and host not in {httpx.URL(u).host for u in BASE_URLS.values()}
    assert not (host == "localhost" or host.startswith("127.")), "loopback passes the socket guard; the gateway host must not"


@pytest.mark.parametrize("base_url", list(LISTING_BASE_URLS.values()), ids=list(LISTING_BASE_URLS))
def test_the_recorded_models_answer_is_served_at_every_listing_host(replay, base_url):
    """`GET {base_url}/models` answers the cassette's recorded status and body, at a gateway's host as at Moonshot's."""
    recorded = load_cassette(cassette_path(MODELS)).interactions[0]
    replay.serve(MODELS, base_url)
    response = httpx.get(f"{base_url}/models", headers={"Authorization": "Bearer sk-kit-test"})
    assert (response.status_code, response.content) == (recorded.status, recorded.body)
    assert [r.url for r in replay.requests] == [f"{base_url}/models"]
    assert replay.problems() == []


@pytest.mark.parametrize("other", ["https://other-gateway.internal.example/v1", BASE_URLS["cn"], "https://llm-gateway.internal.example/v2"])
def test_a_host_with_no_cassette_is_still_refused(replay, other):
    """With the cassette mounted at the gateway only, another host (or another root on it) is a miss, never an answer."""
    replay.serve(MODELS, GATEWAY_BASE_URL)
    with pytest.raises(httpx.ConnectError, match=r"\[replay\] no recorded answer"):
        httpx.get(f"{other}/models")
    assert replay.problems() == [f"replay miss: GET {other}/models (served: {MODELS}.yaml)"]


def test_the_gateway_host_is_never_looked_up_or_connected_to(replay):
    """No socket reaches the gateway: its DNS lookup is refused and reported, like Moonshot's."""
    replay.serve(MODELS, GATEWAY_BASE_URL)
    with pytest.raises(socket.gaierror):
        socket.getaddrinfo(httpx.URL(GATEWAY_BASE_URL).host, 443)
    assert replay.blocked == [f"DNS lookup of {httpx.URL(GATEWAY_BASE_URL).host}"]


def test_a_server_start_up_listing_is_the_recording_in_live_mode_too():
    """The start-up's `/models` (``serve_fallback``, mounted behind a test's own answers) never goes
    upstream in live mode: it is not what a test judges, and one live request per server start
    (about 30 a run) would spend the account's rate limit."""
    from types import SimpleNamespace

    from kimi_conformance.live_transport import LiveCassette, LiveMoonshot

    upstream = SimpleNamespace(base_url=BASE_URLS["ai"].rstrip("/"))
    live = LiveMoonshot(cassette_path(MODELS).parent.parent, upstream, None, "placeholder")
    served = live.serve_fallback(MODELS, BASE_URLS["ai"])
    assert not isinstance(served, LiveCassette)
    assert isinstance(live.serve(MODELS, BASE_URLS["ai"]), LiveCassette), "a test's own listing still goes upstream"
