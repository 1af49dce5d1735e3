"""The one door from the kit to the live Moonshot API.

Every live request goes out through :class:`Upstream`: it retries what is transient (429
and 5xx, honouring ``Retry-After``; refused connections and timeouts) a bounded number of
times, and counts every attempt. What still fails after the last retry is *upstream
trouble*: the caller reports it as "upstream unavailable", never as a contract failure.
A 429 ``exceeded_current_quota_error`` (billing) is not retried. Only this object holds
``KIMI_API_KEY``; the caller decides which Authorization each request carries.
"""

from __future__ import annotations

import email.utils
import json
import threading
import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
NOT_RETRIED_TYPES = frozenset({"exceeded_current_quota_error"})
# hop-by-hop or recomputed headers: never copied from one HTTP message to another
_HOP_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "content-encoding", "keep-alive"})
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0)


@dataclass
class Sent:
    """The outcome of one upstream request (after retries)."""

    response: httpx.Response | None  # the last answer, read (None when the transport failed)
    error: httpx.TransportError | None  # the last transport error, when there was no answer
    trouble: str | None  # why this is "upstream unavailable" (None: a usable answer)
    attempts: int


def error_type(response: httpx.Response) -> str | None:
    try:
        body = json.loads(response.content)
    except ValueError:
        return None
    error = body.get("error") if isinstance(body, dict) else None
    return error.get("type") if isinstance(error, dict) else None


def retry_after(response: httpx.Response | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    value = response.headers.get("retry-after") if response is not None else None
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def display_url(url: str) -> str:
    """``url`` without credentials (user:password@) for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return parts._replace(netloc=host).geturl()


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    return host == "localhost" or host == "::1" or host.startswith("127.")


class Upstream:
    """Sends requests to the live API with bounded retries; counts every attempt."""

    def __init__(self, base_url: str, api_key: str, *, retries: int = 3, max_wait: float = 60.0, timeout: float = 120.0):
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.retries, self.max_wait = retries, max_wait
        self.requests = 0  # attempts sent, retries included
        self.retried = 0
        self._local = threading.local()
        # a proxy from the environment never sits between the kit and a local stand-in
        self._client = httpx.Client(timeout=timeout, follow_redirects=False, trust_env=not is_loopback(base_url))

    def close(self) -> None:
        self._client.close()

    def bearer(self) -> str:
        """The Authorization value that carries KIMI_API_KEY (only ever put on an upstream request)."""
        return f"Bearer {self._api_key}"

    def forwarding(self) -> bool:
        """True while this thread is sending an upstream request (the replay lets it out)."""
        return getattr(self._local, "active", False)

    def send(self, method: str, url: str, headers: dict[str, str] | None = None, content: bytes = b"", *, authorization: str | None) -> Sent:
        """Send ``method url`` with ``headers`` (hop-by-hop ones dropped) and ``authorization``; retry what is transient."""
        out = {k: v for k, v in (headers or {}).items() if k.lower() not in _HOP_HEADERS and k.lower() != "authorization"}
        if authorization is not None:
            out["Authorization"] = authorization
        response: httpx.Response | None = None
        error: httpx.TransportError | None = None
        for attempt in range(self.retries + 1):
            response, error = self._attempt(method, url, out, content)
            trouble = self._trouble(method, url, response, error, attempt + 1)
            if trouble is None:
                return Sent(response, None, None, attempt + 1)
            if response is not None and error_type(response) in NOT_RETRIED_TYPES:
                return Sent(response, None, trouble, attempt + 1)
            if attempt == self.retries:
                break
            wait = retry_after(response)
            wait = BACKOFF_SECONDS[min(attempt, len(BACKOFF_SECONDS) - 1)] if wait is None else wait
            if wait > self.max_wait:
                return Sent(response, error, f"{trouble}; Retry-After asks for {wait:g} s, more than --live-max-wait {self.max_wait:g} s", attempt + 1)
            self.retried += 1
            _wait_for(wait)
        return Sent(response, error, trouble, self.retries + 1)

    def _attempt(self, method: str, url: str, headers: dict[str, str], content: bytes):
        self.requests += 1
        self._local.active = True
        try:
            response = self._client.request(method, url, headers=headers, content=content or None)
            response.read()
            return response, None
        except httpx.TransportError as e:
            return None, e
        finally:
            self._local.active = False

    def _trouble(self, method: str, url: str, response: httpx.Response | None, error: Exception | None, attempts: int) -> str | None:
        where = f"{method} {display_url(url)}"
        if error is not None:
            return f"upstream unavailable: {where} failed after {attempts} attempt(s): {type(error).__name__}: {error}"
        if response.status_code in TRANSIENT_STATUSES:
            kind = error_type(response)
            return f"upstream unavailable: {where} answered HTTP {response.status_code}" + (f" {kind}" if kind else "") + f" after {attempts} attempt(s)"
        return None


def _wait_for(seconds: float) -> None:
    """Wait ``seconds`` (what Retry-After or the backoff asked for; bounded by --live-max-wait)."""
    threading.Event().wait(seconds)


def plain_response(response: httpx.Response) -> httpx.Response:
    """A copy of an upstream answer to hand to the code under test (body already decoded)."""
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _HOP_HEADERS]
    return httpx.Response(response.status_code, headers=headers, content=response.content)
