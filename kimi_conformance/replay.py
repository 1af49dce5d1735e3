"""Hermetic replay of Moonshot cassettes.

Cassettes are vcrpy (format version 1) YAML files with a ``metadata`` block:
``origin`` (``synthesized``, ``reconstructed`` from a third party's public capture, or
``recorded`` by the kit's ``--record``), ``base_url`` (where the traffic was
recorded or is meant to come from), ``source`` and ``written``. They are read with
vcrpy's safe loader and served through respx, *rebased*: a cassette recorded at
``https://api.moonshot.cn/v1`` answers the same paths under whatever base URL the
test mounts it at, and nothing else.

While a replay is active, every request is logged (method, URL, headers, body),
a request with no recorded answer is a *miss* (it gets a connection error and the
test fails at teardown naming method and URL, even if the code under test
swallowed the error), and any socket opened to a non-loopback address is refused
and reported the same way: no request leaves the process.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import httpx
import respx

from kimi_conformance import builds
from kimi_conformance.inputs import UnreadableCassette, read_cassette_text
from kimi_conformance.moonshot_chat import check_chat_request
from kimi_conformance.redact import WINDOW, find_secrets, known_secrets

KIT_ROOT = builds.KIT_ROOT  # the checkout, or the installed kimi_conformance_kit tree
DEFAULT_CASSETTE_DIR = KIT_ROOT / "cassettes"
ORIGINS = ("synthesized", "reconstructed", "recorded")


class CassetteError(Exception):
    """A cassette is missing or unusable; the message names the file."""


@dataclass
class Interaction:
    method: str
    path: str  # below the cassette's base URL, e.g. "/models"
    status: int
    headers: dict[str, str]
    body: bytes
    request_body: bytes = b""  # what was sent (a chat cassette's model, messages ...)


@dataclass
class Cassette:
    path: Path
    metadata: dict
    interactions: list[Interaction]

    @property
    def origin(self) -> str:
        return self.metadata["origin"]

    @property
    def base_url(self) -> str:
        return self.metadata["base_url"].rstrip("/")

    def json_bodies(self, path: str) -> list:
        return [json.loads(i.body) for i in self.interactions if i.path == path and i.body]


def cassette_path(name: str, directory: Path = DEFAULT_CASSETTE_DIR) -> Path:
    return directory / (name if name.endswith(".yaml") else f"{name}.yaml")


_LOADED: dict[tuple, Cassette] = {}


def load_cassette(path: Path) -> Cassette:
    """A cassette, checked; parsed once per process while the file stays the same (size, mtime)."""
    try:
        stat = path.stat()
    except OSError:
        stat = None
    key = (str(path), stat.st_mtime_ns, stat.st_size) if stat else None
    if key not in _LOADED:
        cassette = _parse_cassette(path)
        if key is None:
            return cassette
        _LOADED[key] = cassette
    cached = _LOADED[key]
    return Cassette(cached.path, dict(cached.metadata), list(cached.interactions))


def _parse_cassette(path: Path) -> Cassette:
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    try:
        text = read_cassette_text(path)  # a small regular file of shallow YAML (inputs.py)
    except UnreadableCassette as e:
        raise CassetteError(str(e)) from None
    # key shapes, live account ids, and any piece of the run's own keys (the live key, KIMI_API_KEY ...)
    secrets = find_secrets(text, [s for s in known_secrets() if len(s) >= WINDOW])
    if secrets:
        where = ", ".join(f"line {n}: {excerpt}" for n, excerpt in secrets[:3])
        raise CassetteError(
            f"cassette {path} holds what looks like a live API key ({where}); the kit does not replay it. "
            "Remove the key (and the Authorization header) from the file, and revoke the key if it was real."
        )
    try:
        loaded = deserialize(text, yamlserializer)
    except Exception as e:  # yaml errors, vcrpy's ValueError, KeyError on a bad structure
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise CassetteError(f"cassette {path} is not a valid vcrpy cassette: {type(e).__name__}: {first}") from None
    if len(loaded) != 3:
        raise CassetteError(f"cassette {path} has no metadata block (origin, base_url)")
    requests, responses, metadata = loaded
    if metadata.get("origin") not in ORIGINS:
        raise CassetteError(f"cassette {path}: metadata.origin must be one of {ORIGINS}, not {metadata.get('origin')!r}")
    base = str(metadata.get("base_url", "")).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise CassetteError(f"cassette {path}: metadata.base_url must be an http(s) URL")
    interactions = []
    for request, response in zip(requests, responses):
        if not request.uri.startswith(base):
            raise CassetteError(f"cassette {path}: {request.method} {request.uri} is not below metadata.base_url {base}")
        headers = {k: (v[0] if isinstance(v, list) else v) for k, v in (response.get("headers") or {}).items()}
        body = (response.get("body") or {}).get("string") or b""
        sent = request.body or b""
        interactions.append(
            Interaction(request.method.upper(), request.uri[len(base) :] or "/", int(response["status"]["code"]), headers, body,
                        sent.encode() if isinstance(sent, str) else sent)
        )
    return Cassette(path, metadata, interactions)


@dataclass
class SeenRequest:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    response: httpx.Response | None = field(default=None, repr=False)  # what the replay answered (for reports)
    error: str | None = field(default=None, repr=False)  # or the error it raised instead

    @property
    def bearer(self) -> str | None:
        auth = self.headers.get("authorization", "")
        return auth[len("Bearer ") :] if auth.startswith("Bearer ") else None

    def json(self):
        return json.loads(self.body) if self.body else None


Fault = Callable[[httpx.Request], httpx.Response]


def connect_error(request: httpx.Request) -> httpx.Response:
    raise httpx.ConnectError("[injected] connection refused", request=request)


def read_timeout(request: httpx.Request) -> httpx.Response:
    raise httpx.ReadTimeout("[injected] read timed out", request=request)


def malformed_json(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "application/json"}, content=b'{"object": "list", "data": [')


FAULTS: dict[str, Fault] = {"connect-error": connect_error, "timeout": read_timeout, "malformed-json": malformed_json}


@dataclass
class _Mount:
    base_url: str
    cassette: Cassette
    played: set[int] = field(default_factory=set)

    def answer(self, method: str, url: str) -> Interaction | None:
        if not url.startswith(self.base_url + "/") and url != self.base_url:
            return None
        path = url[len(self.base_url) :].split("?", 1)[0] or "/"
        matches = [i for i, it in enumerate(self.cassette.interactions) if it.method == method and it.path == path]
        if not matches:
            return None
        fresh = [i for i in matches if i not in self.played]
        index = fresh[0] if fresh else matches[-1]
        self.played.add(index)
        return self.cassette.interactions[index]

    def respond(self, request: httpx.Request, method: str, url: str) -> httpx.Response | None:
        """The answer to ``request`` (None: not this mount's). Live mode's mounts forward instead."""
        interaction = self.answer(method, url)
        if interaction is None:
            return None
        if method == "POST" and interaction.path == CHAT_PATH and interaction.status == 200:
            refused = _refused_chat(request)
            if refused is not None:
                return refused
        return httpx.Response(interaction.status, headers=interaction.headers, content=interaction.body)


CHAT_PATH = "/chat/completions"


def _refused_chat(request: httpx.Request) -> httpx.Response | None:
    """Moonshot's 400 for a chat request it refuses (kimi_conformance.moonshot_chat), instead of the recorded answer."""
    try:
        body = json.loads(request.content) if request.content else None
    except ValueError:
        body = None
    refused = check_chat_request(body)
    if refused is None:
        return None
    status, error = refused
    return httpx.Response(status, headers={"content-type": "application/json; charset=utf-8"}, json=error)


class Replay:
    """Serves cassettes (and injected faults) to httpx, logs requests, guards sockets."""

    def __init__(self, cassette_dir: Path = DEFAULT_CASSETTE_DIR):
        self.cassette_dir = cassette_dir
        self.requests: list[SeenRequest] = []
        self.misses: list[str] = []
        self.blocked: list[str] = []
        self._mounts: list[_Mount] = []
        self._faults: list[tuple[str, str, Fault]] = []
        self._router: respx.MockRouter | None = None
        self._socket_patches: list[tuple[object, str, object]] = []

    # -- what to serve -----------------------------------------------------------------
    def serve(self, name: str, base_url: str) -> Cassette:
        """Mount cassette ``name`` (relative to the cassette folder) at ``base_url``."""
        cassette = load_cassette(cassette_path(name, self.cassette_dir))
        self._mounts.insert(0, _Mount(base_url.rstrip("/"), cassette))
        return cassette

    def serve_fallback(self, name: str, base_url: str) -> Cassette:
        """Mount cassette ``name`` at ``base_url`` after every mount so far: it answers only what they do not.

        Always the recording, in live mode too (``Replay.serve``, not a subclass's): what it answers
        (a server's start-up listing) is not what a test judges, and a live request per server start
        (about 30 a run) would spend the account's rate limit.
        """
        cassette = Replay.serve(self, name, base_url)
        self._mounts.append(self._mounts.pop(0))
        return cassette

    def inject(self, method: str, url: str, fault: str | Fault) -> None:
        """Answer ``method url`` with a fault (a name from FAULTS, or a callable)."""
        handler = FAULTS[fault] if isinstance(fault, str) else fault
        self._faults.insert(0, (method.upper(), url, handler))

    def to(self, url_prefix: str, method: str | None = None) -> list[SeenRequest]:
        return [r for r in self.requests if r.url.startswith(url_prefix) and (method is None or r.method == method)]

    # -- the transport -----------------------------------------------------------------
    def _forwarding(self) -> bool:
        """True while live mode's own transport sends a request upstream (never in replay)."""
        return False

    def _handle(self, request: httpx.Request) -> httpx.Response | httpx.Request:
        if self._forwarding():
            return request  # live mode's upstream request: respx passes it through to the network
        url = str(request.url)
        method = request.method.upper()
        seen = SeenRequest(method, url, {k.lower(): v for k, v in request.headers.items()}, request.content)
        self.requests.append(seen)
        try:
            seen.response = self._answer(request, method, url)
        except Exception as e:
            seen.error = f"{type(e).__name__}: {e}"
            raise
        return seen.response

    def _answer(self, request: httpx.Request, method: str, url: str) -> httpx.Response:
        for f_method, f_url, handler in self._faults:
            if f_method == method and url.split("?", 1)[0] == f_url:
                return handler(request)
        for mount in self._mounts:
            response = mount.respond(request, method, url)
            if response is not None:
                return response
        cassettes = ", ".join(str(m.cassette.path.relative_to(self.cassette_dir)) for m in self._mounts) or "no cassette mounted"
        self.misses.append(f"{method} {url} (served: {cassettes})")
        raise httpx.ConnectError(f"[replay] no recorded answer for {method} {url}", request=request)

    # -- socket guard ------------------------------------------------------------------
    def _guard_sockets(self) -> None:
        replay = self

        def allowed(address) -> bool:
            if isinstance(address, (str, bytes)):  # AF_UNIX
                return True
            host = str(address[0])
            return host in ("localhost", "::1") or host.startswith("127.")

        def wrap(owner, name):
            original = getattr(owner, name)

            def guarded(sock, address, *a, **kw):
                if not allowed(address) and not replay._forwarding():
                    replay.blocked.append(f"socket connect to {address!r}")
                    raise ConnectionRefusedError(f"[replay] outbound connection to {address!r} refused: replay mode is offline")
                return original(sock, address, *a, **kw)

            self._socket_patches.append((owner, name, original))
            setattr(owner, name, guarded)

        def guarded_getaddrinfo(host, *a, _orig=socket.getaddrinfo, **kw):
            name = host.decode() if isinstance(host, bytes) else str(host)
            if host is not None and not (name in ("localhost", "::1", "") or name.startswith("127.")) and not replay._forwarding():
                replay.blocked.append(f"DNS lookup of {name}")
                raise socket.gaierror(socket.EAI_NONAME, f"[replay] DNS lookup of {name} refused: replay mode is offline")
            return _orig(host, *a, **kw)

        wrap(socket.socket, "connect")
        wrap(socket.socket, "connect_ex")
        self._socket_patches.append((socket, "getaddrinfo", socket.getaddrinfo))
        socket.getaddrinfo = guarded_getaddrinfo

    # -- TLS contexts ------------------------------------------------------------------
    def _share_tls_contexts(self) -> None:
        """Build each TLS context once per process instead of once per httpx client.

        Every ``httpx.Client()`` loads the CA bundle (~20 ms); the code under test makes
        a client per request, and replayed requests never reach TLS anyway. The shared
        context is the one httpx would have made for the same arguments.
        """
        try:
            from httpx._transports import default as transport_module
        except ImportError:  # another httpx layout: keep its behaviour, only slower
            return
        original = getattr(transport_module, "create_ssl_context", None)
        if original is None:
            return
        self._socket_patches.append((transport_module, "create_ssl_context", original))
        transport_module.create_ssl_context = _shared_tls_context(original)

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> "Replay":
        self._router = respx.mock(assert_all_called=False, assert_all_mocked=True)
        self._router.start()
        self._router.route().mock(side_effect=self._handle)
        self._guard_sockets()
        self._share_tls_contexts()
        return self

    def stop(self) -> None:
        while self._socket_patches:
            owner, name, original = self._socket_patches.pop()
            setattr(owner, name, original)
        if self._router is not None:
            self._router.stop(quiet=True)
            self._router = None

    def problems(self) -> list[str]:
        return [f"replay miss: {m}" for m in self.misses] + [f"blocked: {b}" for b in self.blocked]


_TLS_CONTEXTS: dict[tuple, object] = {}


def _shared_tls_context(original):
    import os

    def create(verify=True, cert=None, trust_env=True, **kw):
        try:
            key = (verify, cert, trust_env, tuple(sorted(kw.items())), os.environ.get("SSL_CERT_FILE"), os.environ.get("SSL_CERT_DIR"))
            hash(key)
        except TypeError:  # an SSLContext or other unhashable argument: not ours to share
            return original(verify=verify, cert=cert, trust_env=trust_env, **kw)
        if key not in _TLS_CONTEXTS:
            _TLS_CONTEXTS[key] = original(verify=verify, cert=cert, trust_env=trust_env, **kw)
        return _TLS_CONTEXTS[key]

    return create
