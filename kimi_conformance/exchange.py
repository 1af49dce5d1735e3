"""A test's HTTP exchange with (replayed) Moonshot, as text for a report, secrets scrubbed.

Reads the requests a :class:`kimi_conformance.replay.Replay` logged (``method``,
``url``, ``headers``, ``body``, and the ``response`` or ``error`` it was answered with).
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from kimi_conformance.redact import redact, redact_headers

MAX_BODY = 8000  # characters of one body kept in a report


def _body(raw: bytes | str | None, secrets: Iterable[str]) -> str:
    if not raw:
        return "(no body)"
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else str(raw)
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except ValueError:
        pass
    text = redact(text, secrets)
    return text if len(text) <= MAX_BODY else text[:MAX_BODY] + f"\n... ({len(text) - MAX_BODY} more characters)"


def _headers(headers, secrets: Iterable[str]) -> list[str]:
    return [f"{name}: {value}" for name, value in sorted(redact_headers(dict(headers or {}), secrets).items())]


def render(requests: list, secrets: Iterable[str] = ()) -> str:
    """Every request and its answer, in order; an empty list says that no request was made."""
    secrets = list(secrets)
    if not requests:
        return "No HTTP request reached (replayed) Moonshot during this test.\n"
    parts = []
    for number, seen in enumerate(requests, 1):
        lines = [f"=== request {number}: {seen.method} {redact(seen.url, secrets)}", *_headers(seen.headers, secrets), "", _body(seen.body, secrets)]
        response = getattr(seen, "response", None)
        error = getattr(seen, "error", None)
        if response is not None:
            lines += ["", f"--- response {number}: {response.status_code} {response.reason_phrase}", *_headers(response.headers, secrets), "",
                      _body(response.content, secrets)]
        elif error:
            lines += ["", f"--- no response {number}: {redact(error, secrets)}"]
        else:
            lines += ["", f"--- response {number}: not recorded"]
        parts.append("\n".join(lines))
    return "\n\n".join(parts) + "\n"
