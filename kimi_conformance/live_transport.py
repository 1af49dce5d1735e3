"""The ``moonshot`` fixture of live mode: live answers for what the live API serves, replay for the rest.

A :class:`LiveMoonshot` is a :class:`~kimi_conformance.replay.Replay` whose cassettes of
``LIVE_CASSETTES`` (mounted at the live base URL) are answered by the live API through
:class:`~kimi_conformance.upstream.Upstream`; every other cassette and every injected fault
is replayed as usual, and listed (``injected``) so that the report can say which
behaviours were checked against faults the live API cannot produce on demand.

The build sends the kit's placeholder key; the upstream request carries ``KIMI_API_KEY``
instead (or, for the refused-key cassette of AUTH-401, a deliberately invalid key).
What the live API delivered is what the served cassette's ``json_bodies`` returns, so a
test compares the build's result with the live answer exactly as it does with a cassette.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kimi_conformance.record import Recorder
from kimi_conformance.replay import Cassette, Replay, _Mount, cassette_path, load_cassette
from kimi_conformance.upstream import Upstream, plain_response

INVALID_KEY = "sk-kit-live-deliberately-invalid-key-0000"
OWN_KEY, REFUSED_KEY = "own-key", "invalid-key"
# Cassettes the live API answers itself (with which key); all others stay replayed in live mode.
LIVE_CASSETTES = {
    "models/current": OWN_KEY,
    "chat/tool-calls": OWN_KEY,
    "chat/reasoning": OWN_KEY,
    "errors/models-401-invalid-authentication": REFUSED_KEY,
}


@dataclass
class LiveCassette(Cassette):
    """A live-answered cassette: its JSON bodies are what the live API delivered in this test."""

    delivered: list[tuple[str, bytes]] = field(default_factory=list)

    def json_bodies(self, path: str) -> list:
        return [json.loads(body) for p, body in self.delivered if p == path and body]


class _LiveMount(_Mount):
    """Answers a cassette's own requests (same method and path) from the live API."""

    def __init__(self, base_url: str, cassette: Cassette, owner: "LiveMoonshot", name: str, key_mode: str):
        super().__init__(base_url, cassette)
        self.owner, self.name, self.key_mode = owner, name, key_mode
        self.view = LiveCassette(cassette.path, cassette.metadata, cassette.interactions)

    def respond(self, request: httpx.Request, method: str, url: str) -> httpx.Response | None:
        if self.answer(method, url) is None:
            return None
        owner = self.owner
        sent = owner.upstream.send(method, url, dict(request.headers), request.content, authorization=owner.authorization(request, self.key_mode))
        if sent.trouble:
            owner.unavailable.append(sent.trouble)
        if sent.response is None:
            raise type(sent.error)(f"[live] {sent.trouble}", request=request)
        path = url[len(self.base_url) :].split("?", 1)[0] or "/"
        if sent.trouble is None:
            if sent.response.is_success and "json" in sent.response.headers.get("content-type", ""):
                self.view.delivered.append((path, sent.response.content))
            if owner.recorder is not None:
                owner.recorder.capture(self.name, self.cassette, request, sent.response, path)
        return plain_response(sent.response)


class LiveMoonshot(Replay):
    """The ``moonshot`` fixture in live mode: live answers for LIVE_CASSETTES, replay for the rest."""

    def __init__(self, cassette_dir: Path, upstream: Upstream, recorder: Recorder | None, placeholder_key: str):
        super().__init__(cassette_dir)
        self.upstream, self.recorder, self.placeholder_key = upstream, recorder, placeholder_key
        self.injected: list[str] = []
        self.unavailable: list[str] = []

    def serve(self, name: str, base_url: str) -> Cassette:
        key = name[: -len(".yaml")] if name.endswith(".yaml") else name
        mode = LIVE_CASSETTES.get(key)
        if mode is None or base_url.rstrip("/") != self.upstream.base_url:
            self.injected.append(f"cassette {key}")
            return super().serve(name, base_url)
        mount = _LiveMount(base_url.rstrip("/"), load_cassette(cassette_path(name, self.cassette_dir)), self, key, mode)
        self._mounts.insert(0, mount)
        return mount.view

    def inject(self, method: str, url: str, fault) -> None:
        name = fault if isinstance(fault, str) else getattr(fault, "__name__", "")
        self.injected.append(f"fault {name}" if name and not name.startswith("<") else "an injected answer")
        super().inject(method, url, fault)

    def authorization(self, request: httpx.Request, key_mode: str) -> str | None:
        """What the upstream request carries: the placeholder becomes KIMI_API_KEY; other values go as sent."""
        if key_mode == REFUSED_KEY:
            return f"Bearer {INVALID_KEY}"
        sent = request.headers.get("authorization")
        return self.upstream.bearer() if sent == f"Bearer {self.placeholder_key}" else sent

    def _forwarding(self) -> bool:
        return self.upstream.forwarding()
