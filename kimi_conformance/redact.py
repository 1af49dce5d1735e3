"""Secrets: finding what looks like a live key, and scrubbing secrets out of reports.

``find_secrets`` is strict (a live Moonshot key is ``sk-`` and a long run of letters and
digits; a Bearer credential that is not a placeholder): a cassette holding one is
refused. ``redact`` is generous: anything key-like in text that goes into a report
(attachments, result files) is masked.

What counts as a secret: API keys (``sk-...``), the values of the process's key-like
environment variables (``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD``),
credentials in Authorization/Cookie headers, and the organization and key ids that
Moonshot's 429 messages carry. A key keeps its last four characters
(``sk-***cdef``) so that a report still tells which of two keys was sent.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"})
_SECRET_ENV = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), lambda m: _masked(m.group(0))),
    (re.compile(r"\b(org|ak)-[A-Za-z0-9]{8,}"), lambda m: f"{m.group(1)}-***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{8,}"), lambda m: f"{m.group(1)} {_masked(m.group(0).split()[-1])}"),
]
MIN_SECRET_LENGTH = 8


def _masked(secret: str) -> str:
    prefix = "sk-" if secret.startswith("sk-") else ""
    return f"{prefix}***{secret[-4:]}" if len(secret) >= 12 else f"{prefix}***"


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of key-like environment variables (long enough to be a credential)."""
    environ = os.environ if environ is None else environ
    return [v for k, v in environ.items() if _SECRET_ENV.search(k) and len(v.strip()) >= MIN_SECRET_LENGTH]


def _pieces(secret: str) -> set[str]:
    """The secret and its long prefixes and suffixes (a repr cut short still shows one of them)."""
    shortest = max(MIN_SECRET_LENGTH, 12)
    if len(secret) <= shortest:
        return {secret}
    return {secret} | {secret[:n] for n in range(shortest, len(secret))} | {secret[-n:] for n in range(shortest, len(secret))}


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret masked (the given ones, the environment's, and the patterns above).

    A known secret is masked also where only a long piece of it shows (a truncated repr).
    """
    known = {s for s in {*secrets, *environment_secrets()} if len(s) >= MIN_SECRET_LENGTH}
    suffixes = {piece for secret in known for piece in _pieces(secret) if secret.endswith(piece)}
    pieces = sorted({piece for secret in known for piece in _pieces(secret)}, key=len, reverse=True)
    if pieces:
        # a whole key or its end keeps its last four characters; a cut-off start keeps nothing
        text = re.sub("|".join(map(re.escape, pieces)), lambda m: _masked(m.group(0)) if m.group(0) in suffixes else "***", text)
    for pattern, replace in _PATTERNS:
        text = pattern.sub(replace, text)
    return text


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers with credentials masked: the scheme of an Authorization header stays, the credential does not."""
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, _, credential = str(value).partition(" ")
            out[name] = f"{scheme} {_masked(credential)}" if credential and scheme.lower() in ("bearer", "basic") else _masked(str(value))
        else:
            out[name] = redact(str(value), secrets)
    return out


LIVE_KEY = re.compile(r"\bsk-[A-Za-z0-9]{20,}\b")
LIVE_BEARER = re.compile(r"\bBearer\s+(?!<|\*|REDACTED|SCRUBBED)[A-Za-z0-9._\-]{16,}", re.IGNORECASE)


def excerpt(value: str) -> str:
    """Enough of a secret to recognise it in a message, never the secret itself."""
    return value[:5] + "…" if len(value) > 8 else "…"


def find_secrets(text: str, known: tuple[str, ...] = ()) -> list[tuple[int, str]]:
    """``(line number, excerpt)`` of everything in ``text`` that looks like a live key (or is one of ``known``)."""
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        hits += [(number, excerpt(m.group(0))) for m in LIVE_KEY.finditer(line)]
        hits += [(number, "Bearer " + excerpt(m.group(0).split()[-1])) for m in LIVE_BEARER.finditer(line)]
        hits += [(number, excerpt(key)) for key in known if key and key in line]
    return hits
