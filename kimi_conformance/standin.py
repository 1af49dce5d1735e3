"""A local Moonshot stand-in: a small real HTTP server on 127.0.0.1 for the kit's own tests.

It answers the two requests the Kimi provider makes, the way Moonshot's public
documentation describes them:

* ``GET /v1/models``: the recorded ``/models`` answer of a cassette (``models/current``
  by default), plus any ``extra_model_ids`` (entries shaped like the cassette's first one);
* ``POST /v1/chat/completions``: a ``chat_responder(request_json) -> response_json``, or the
  recorded completion of the chat cassette whose recorded request asked for the same model
  (``chat/*.yaml``), else of ``chat_cassette``; its ``model`` is the one asked for.
  ``"stream": true`` is answered as server-sent events in Moonshot's chunk order
  (kimi_conformance.moonshot_chat.stream_chunks), then ``[DONE]``. A chat request Moonshot
  refuses (temperature, tool_choice, history: kimi_conformance.moonshot_chat) gets its 400.

Every request needs ``Authorization: Bearer <api_key>`` (else 401 with Moonshot's body);
``fail_next(n, 429 | 5xx, retry_after)`` answers the next ``n`` requests with a Moonshot
error instead. An unknown path is 404, an unknown model 404, a bad chat body 400, all in
Moonshot's error shape ``{"error": {"message", "type"}}``. The key is never logged, and
the requests it saw (``requests``) keep only a digest of the Bearer token.

Standard library only, plus PyYAML (a kit requirement) to read the cassettes. CLI::

    python -m kimi_conformance.standin --port 0 --api-key K [--cassette-dir D] [--extra-model-id ID ...]

prints one line ``MOONSHOT_STANDIN_URL=http://127.0.0.1:PORT/v1`` and serves until
SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import hmac
import json
import signal
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Sequence

from kimi_conformance.moonshot_chat import check_chat_request, stream_chunks

DEFAULT_CASSETTE_DIR = Path(__file__).resolve().parent.parent / "cassettes"
PREFIX = "/v1"

# Moonshot's error bodies (CONTRACT.md, "Wire formats"); organization and key ids are fake.
STATUS_ERRORS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("invalid_authentication_error", "Invalid Authentication"),
    403: ("permission_denied_error", "The API you are accessing is not open"),
    404: ("resource_not_found_error", "Not found the model or Permission denied"),
    429: ("rate_limit_reached_error", "Your account org-standin0000000000<ak-standin0000000000> request reached organization max RPM: 3, please try again after 1 seconds"),
    500: ("server_error", "Internal server error, please try again later"),
    502: ("server_error", "Bad gateway, please try again later"),
    503: ("engine_overloaded_error", "The engine is currently overloaded, please try again later"),
    504: ("server_error", "Gateway timeout, please try again later"),
}
QUOTA_ERROR = ("exceeded_current_quota_error", "Your account org-standin0000000000<ak-standin0000000000> is suspended, please check your plan and billing details")


class StandInError(Exception):
    """The stand-in cannot serve what it was given (the message names the cassette or option)."""


def error_body(status: int, message: str | None = None, error_type: str | None = None) -> dict:
    default_type, default_message = STATUS_ERRORS.get(status, ("server_error", f"HTTP {status}"))
    return {"error": {"message": message or default_message, "type": error_type or default_type}}


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()


@dataclass(frozen=True)
class StandInRequest:
    """A request the stand-in received: never the key itself, only whether (and which) it matched."""

    method: str
    path: str
    json: Any
    key_ok: bool
    bearer_digest: bytes | None = field(default=None, repr=False)

    def bearer_matches(self, key: str) -> bool:
        return self.bearer_digest is not None and hmac.compare_digest(self.bearer_digest, _digest(key))


@dataclass
class _Failure:
    status: int
    retry_after: float | None
    error_type: str | None


# -- cassettes ------------------------------------------------------------------------
def _read_cassette(path: Path) -> tuple[str, list[dict]]:
    try:
        import yaml
    except ImportError:  # pragma: no cover - PyYAML is a kit requirement
        raise StandInError("the stand-in reads cassettes with PyYAML: pip install PyYAML") from None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        base = str(data["metadata"]["base_url"]).rstrip("/")
        return base, list(data["interactions"])
    except FileNotFoundError:
        raise StandInError(f"stand-in: cassette {path} does not exist") from None
    except Exception as e:  # noqa: BLE001 - any unreadable cassette is named once
        raise StandInError(f"stand-in: cassette {path} is not a vcrpy cassette with metadata.base_url ({type(e).__name__}: {e})") from None


def _answer(path: Path, method: str, endpoint: str) -> tuple[dict | None, dict]:
    """(recorded request JSON, recorded 200 response JSON) for ``method endpoint`` in a cassette."""
    base, interactions = _read_cassette(path)
    for it in interactions:
        request, response = it.get("request", {}), it.get("response", {})
        if str(request.get("method", "")).upper() != method or str(request.get("uri", "")).split("?")[0] != base + endpoint:
            continue
        if int(response.get("status", {}).get("code", 0)) != 200:
            continue
        body = (response.get("body") or {}).get("string") or ""
        raw = request.get("body")
        try:
            return (json.loads(raw) if raw else None), json.loads(body)
        except (TypeError, ValueError) as e:
            raise StandInError(f"stand-in: cassette {path}: the {method} {endpoint} exchange is not JSON ({e})") from None
    raise StandInError(f"stand-in: cassette {path} has no 200 answer to {method} {endpoint}")


def _chat_cassettes(directory: Path, default: Path) -> tuple[dict, dict[str, dict]]:
    """The default chat completion and, per model, the completion recorded for that model."""
    _, fallback = _answer(default, "POST", "/chat/completions")
    by_model: dict[str, dict] = {}
    for path in sorted((directory / "chat").glob("*.yaml")) if (directory / "chat").is_dir() else []:
        try:
            request, response = _answer(path, "POST", "/chat/completions")
        except StandInError:
            continue
        if isinstance(request, dict) and isinstance(request.get("model"), str):
            by_model.setdefault(request["model"], response)
    return fallback, by_model


# -- the server -----------------------------------------------------------------------
class MoonshotStandIn:
    """Moonshot's ``/v1/models`` and ``/v1/chat/completions`` on 127.0.0.1 (see the module docstring)."""

    def __init__(
        self,
        api_key: str,
        *,
        cassette_dir: Path | None = None,
        models_cassette: str = "models/current.yaml",
        chat_cassette: str = "chat/tool-calls.yaml",
        extra_model_ids: Sequence[str] = (),
        chat_responder: Callable[[dict], dict] | None = None,
        port: int = 0,
    ):
        if not api_key:
            raise StandInError("stand-in: an API key is required (--api-key)")
        self._key_digest = _digest(api_key)
        directory = Path(cassette_dir) if cassette_dir is not None else DEFAULT_CASSETTE_DIR
        _, self._models = _answer(directory / models_cassette, "GET", "/models")
        data = self._models.setdefault("data", [])
        template = next((e for e in data if isinstance(e, dict) and "id" in e), {"object": "model", "owned_by": "moonshot", "context_length": 262144})
        for model_id in extra_model_ids:
            data.append({**copy.deepcopy(template), "id": model_id})
        self._chat_responder = chat_responder
        self._chat_default, self._chat_by_model = (None, {}) if chat_responder else _chat_cassettes(directory, directory / chat_cassette)
        self.requests: list[StandInRequest] = []
        self._lock = threading.Lock()
        self._failures: list[_Failure] = []
        self._port = port
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self.url = ""

    # -- control ---------------------------------------------------------------------
    def fail_next(self, n: int, status: int = 429, retry_after: float | None = None, *, error_type: str | None = None) -> None:
        """Answer the next ``n`` requests with ``status`` and Moonshot's error body (``Retry-After`` if given).

        ``error_type="exceeded_current_quota_error"`` gives the billing 429 (not to be retried).
        """
        if n < 0 or not 400 <= status <= 599:
            raise ValueError(f"fail_next needs n >= 0 and an HTTP error status, not n={n}, status={status}")
        with self._lock:
            self._failures.extend(_Failure(status, retry_after, error_type) for _ in range(n))

    @property
    def model_ids(self) -> list[str]:
        return [e["id"] for e in self._models.get("data", []) if isinstance(e, dict) and "id" in e]

    def start(self) -> "MoonshotStandIn":
        if self._server is not None:
            return self
        handler = type("StandInHandler", (_Handler,), {"standin": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}{PREFIX}"
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, name="moonshot-standin", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> "MoonshotStandIn":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- answering (called from the handler threads) ---------------------------------
    def _next_failure(self) -> _Failure | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _key_ok(self, bearer: str | None) -> bool:
        return bearer is not None and hmac.compare_digest(_digest(bearer), self._key_digest)

    def _record(self, request: StandInRequest) -> None:
        with self._lock:
            self.requests.append(request)

    def handle(self, method: str, path: str, bearer: str | None, body: bytes) -> tuple[int, dict[str, str], Any]:
        """(status, extra headers, JSON body or a list of SSE events) for one request."""
        payload = _json_or_none(body)
        key_ok = self._key_ok(bearer)
        self._record(StandInRequest(method, path, payload, key_ok, _digest(bearer) if bearer is not None else None))
        failure = self._next_failure()
        if failure is not None:
            headers = {"Retry-After": f"{failure.retry_after:g}"} if failure.retry_after is not None else {}
            message, error_type = (QUOTA_ERROR[1], QUOTA_ERROR[0]) if failure.error_type == QUOTA_ERROR[0] else (None, failure.error_type)
            return failure.status, headers, error_body(failure.status, message, error_type)
        if not key_ok:
            return 401, {}, error_body(401)
        if method == "GET" and path == f"{PREFIX}/models":
            return 200, {}, self._models
        if method == "POST" and path == f"{PREFIX}/chat/completions":
            if not isinstance(payload, dict):
                return 400, {}, error_body(400, "Invalid request: the body is not a JSON object")
            return self._chat(payload)
        known = path in (f"{PREFIX}/models", f"{PREFIX}/chat/completions")
        if known:
            return 405, {}, error_body(405, f"Method {method} is not allowed on {path}", "invalid_request_error")
        return 404, {}, error_body(404, f"Not found: {method} {path}")

    def _chat(self, payload: dict) -> tuple[int, dict[str, str], Any]:
        model, messages = payload.get("model"), payload.get("messages")
        if not isinstance(model, str) or not isinstance(messages, list) or not messages:
            return 400, {}, error_body(400, "Invalid request: model and a non-empty messages list are required")
        if model not in self.model_ids:
            return 404, {}, error_body(404, f"Not found the model {model} or Permission denied")
        refused = check_chat_request(payload)
        if refused is not None:
            return refused[0], {}, refused[1]
        if self._chat_responder is not None:
            reply = self._chat_responder(payload)
        else:
            reply = copy.deepcopy(self._chat_by_model.get(model, self._chat_default))
            reply["model"] = model
        if not payload.get("stream"):
            return 200, {}, reply
        options = payload.get("stream_options")
        return 200, {}, stream_chunks(reply, include_usage=isinstance(options, dict) and bool(options.get("include_usage")))


def _json_or_none(body: bytes) -> Any:
    try:
        return json.loads(body) if body else None
    except ValueError:
        return None


class _Handler(BaseHTTPRequestHandler):
    standin: MoonshotStandIn
    protocol_version = "HTTP/1.1"
    server_version = "nginx"
    sys_version = ""

    def log_message(self, format, *args) -> None:  # noqa: A002 - silent: a request line must never reach a log
        pass

    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            parts = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return b"".join(parts)
                parts.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _serve(self) -> None:
        auth = self.headers.get("Authorization", "")
        bearer = auth[len("Bearer ") :].strip() if auth.startswith("Bearer ") else None
        path = self.path.split("?", 1)[0].rstrip("/") or "/"
        try:
            status, headers, body = self.standin.handle(self.command, path, bearer, self._body())
        except Exception as e:  # noqa: BLE001 - a responder bug is a 500, never a hung client
            status, headers, body = 500, {}, error_body(500, f"stand-in error: {type(e).__name__}")
        if isinstance(body, list):
            payload = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in body) + b"data: [DONE]\n\n"
            content_type = "text/event-stream"
        else:
            payload = json.dumps(body, ensure_ascii=False).encode()
            content_type = "application/json; charset=utf-8"
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve


# -- command line ---------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m kimi_conformance.standin", description="A local Moonshot stand-in on 127.0.0.1.")
    parser.add_argument("--port", type=int, default=0, help="port to bind on 127.0.0.1 (0: a free one)")
    parser.add_argument("--api-key", required=True, help="the Bearer key every request must carry")
    parser.add_argument("--cassette-dir", type=Path, default=None, help="folder of cassettes to serve (default: the kit's cassettes/)")
    parser.add_argument("--extra-model-id", action="append", default=[], metavar="ID", help="an id to list beside the cassette's (repeatable)")
    args = parser.parse_args(argv)
    if not 0 <= args.port <= 65535:
        parser.error(f"--port must be between 0 and 65535, not {args.port}")
    try:
        standin = MoonshotStandIn(args.api_key, cassette_dir=args.cassette_dir, extra_model_ids=args.extra_model_id, port=args.port).start()
    except (StandInError, OSError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 4
    done = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: done.set())
    print(f"MOONSHOT_STANDIN_URL={standin.url}", flush=True)
    try:
        while not done.wait(0.5):
            pass
    finally:
        standin.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
