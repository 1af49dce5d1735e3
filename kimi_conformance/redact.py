"""Secrets: the one redactor for everything that leaves the process, and the one finder.

``redact`` is generous: anything secret in text that goes out of the process (the
terminal summary, the JSON report, the Markdown summary, JUnit, Allure results and
attachments, logs, error lines) is masked. ``find_secrets`` is strict: a cassette
holding anything it finds is refused (replay) or not written (``--record``).

What counts as a secret:

* the run's keys, captured at start-up (:func:`remember`; the key-like environment
  variables ``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, ``*_PASSWORD`` are read when this
  module is imported, before live mode takes ``KIMI_API_KEY`` out of the environment),
  and the current environment's; each in every form it can hide in (:func:`key_forms`):
  whole, URL-quoted, base64/base64url at any alignment, every 16-character piece of it
  whatever its length, and its long prefixes and suffixes (a cut-off repr);
* anything shaped like a key (``sk-...``), Bearer/Basic credentials, credentials in a
  URL (``user:KEY@host``, ``?api_key=KEY``);
* Moonshot's organization, project and key ids (``org-…``, ``proj-…``, ``ak-…``) and its
  account headers (``Msh-Uid``, ``Msh-Gid``, ``Msh-Org-Id``, ``Msh-Project-Id``).

A whole key (or its end) keeps its last four characters (``sk-***cdef``) so that a report
still tells which of two keys was sent; anything else is ``***``.
"""

from __future__ import annotations

import base64
import os
import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlsplit

SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key", "api-key"})
# Moonshot's account identifiers (CONTRACT.md, Wire formats): never recorded or shown
ACCOUNT_HEADERS = frozenset({"msh-uid", "msh-gid", "msh-org-id", "msh-project-id"})
_SECRET_ENV = re.compile(r"(API_KEY|TOKEN|SECRET|PASSWORD)$", re.IGNORECASE)
_URL_SECRET_PARAMS = re.compile(r"(?i)(api[_-]?key|key|token|access[_-]?token|secret|password)")
MIN_SECRET_LENGTH = 8
WINDOW = 16  # a piece of a key this long is the key
ACCOUNT_IDS = re.compile(r"\b(org|proj|ak)-([A-Za-z0-9]{6,})")
_ACCOUNT_HEADER_TEXT = re.compile(r"(?i)(\bmsh-(?:uid|gid|org-id|project-id)['\"]?\s*[:=]\s*(?:\[\s*)?['\"]?)([^\s'\",}\]]+)")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)[^\s/@'\"]+@")
_URL_QUERY_SECRET = re.compile(r"(?i)([?&](?:api[_-]?key|key|token|access[_-]?token|secret|password)=)[^\s&#'\"]+")
_PATTERNS = [
    (re.compile(r"\bsk-[A-Za-z0-9_\-]{8,}"), lambda m: _masked(m.group(0))),
    (ACCOUNT_IDS, lambda m: f"{m.group(1)}-***"),
    (re.compile(r"(?i)\b(bearer|basic)\s+(?!\*)[A-Za-z0-9._~+/=\-]{8,}"), lambda m: f"{m.group(1)} {_masked(m.group(0).split()[-1])}"),
    (_URL_USERINFO, lambda m: f"{m.group(1)}***@"),
    (_URL_QUERY_SECRET, lambda m: f"{m.group(1)}***"),
    (_ACCOUNT_HEADER_TEXT, lambda m: f"{m.group(1)}***"),
]


def _masked(secret: str) -> str:
    prefix = "sk-" if secret.startswith("sk-") else ""
    return f"{prefix}***{secret[-4:]}" if len(secret) >= 12 else f"{prefix}***"


# -- the run's secrets ------------------------------------------------------------------
def _scan_environment(environ: Mapping[str, str]) -> list[str]:
    return [v.strip() for k, v in environ.items() if _SECRET_ENV.search(k) and len(v.strip()) >= MIN_SECRET_LENGTH]


# os.environ's secrets as of a copy of its raw mapping (os.environ._data: bytes -> bytes on POSIX,
# compared at C speed): ``redact`` runs for every log record and report section, and decoding
# and matching the whole environment each time was most of its cost. Any change of the
# environment (monkeypatch, live mode taking the key out) changes the mapping: scanned again.
_ENVIRONMENT_SCAN: list = [None, []]  # [copy of os.environ._data the secrets were read from, secrets]


def environment_secrets(environ: Mapping[str, str] | None = None) -> list[str]:
    """Values of key-like environment variables (long enough to be a credential); ``os.environ`` by default."""
    if environ is not None:
        return _scan_environment(environ)
    raw = getattr(os.environ, "_data", None)
    if not isinstance(raw, dict):  # not CPython's os.environ: no cache
        return _scan_environment(os.environ)
    if raw != _ENVIRONMENT_SCAN[0]:
        _ENVIRONMENT_SCAN[:] = [dict(raw), _scan_environment(os.environ)]
    return list(_ENVIRONMENT_SCAN[1])


_REMEMBERED: set[str] = set(environment_secrets())  # read at import: before live mode removes KIMI_API_KEY


def url_secrets(url: str) -> list[str]:
    """Credentials inside a URL: its password (or user) and the values of key-like query parameters."""
    try:
        parts = urlsplit(url)
        found = [unquote(v) for v in (parts.password, parts.username) if v]
        found += [v for k, v in parse_qsl(parts.query, keep_blank_values=False) if _URL_SECRET_PARAMS.fullmatch(k)]
    except ValueError:
        found = re.findall(r"://[^\s/@:]*:?([^\s/@]+)@", url) + re.findall(r"[?&](?:api[_-]?key|key|token)=([^\s&#]+)", url, re.I)
    return [s for s in found if len(s) >= MIN_SECRET_LENGTH]


def remember(*secrets: str) -> None:
    """Secrets of this run (the live key, credentials in KIMI_BASE_URL): masked in every output from now on."""
    _REMEMBERED.update(s.strip() for s in secrets if s and len(s.strip()) >= MIN_SECRET_LENGTH)


def known_secrets(extra: Iterable[str] = ()) -> frozenset[str]:
    """Every secret the redactor knows now: remembered, the environment's, and ``extra``."""
    return frozenset(s for s in {*_REMEMBERED, *environment_secrets(), *extra} if s and len(s) >= MIN_SECRET_LENGTH)


# -- the forms a key hides in -------------------------------------------------------------
def _base64_cores(raw: bytes) -> set[tuple[str, str]]:
    """(encoding, text): the base64 characters that depend only on ``raw``, at each of the 3 alignments."""
    cores = set()
    for offset in range(3):
        start, end = -(-8 * offset // 6), 8 * (offset + len(raw)) // 6
        for name, encode in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
            text = encode(b"\0" * offset + raw).decode()[start:end]
            if len(text) >= MIN_SECRET_LENGTH:
                cores.add((name, text))
    return cores


@lru_cache(maxsize=64)
def key_forms(key: str) -> tuple[tuple[str, str], ...]:
    """(description, form): how a key can hide in text: as is, URL-quoted, base64 (any alignment), a 16-character piece.

    Descriptions never contain the key. Longest forms first.
    """
    forms = {(key, "the key"), (quote(key, safe=""), "the key, URL-quoted")}
    forms |= {(text, f"the key, {name}-encoded") for name, text in _base64_cores(key.encode())}
    forms |= {(key[i : i + WINDOW], f"{WINDOW} characters of the key") for i in range(max(1, len(key) - WINDOW + 1))}
    shortest = min(len(key), 12)
    forms |= {(key[-n:], "the end of the key") for n in range(shortest, len(key))}
    forms |= {(key[:n], "the start of the key") for n in range(shortest, len(key))}
    return tuple(sorted(((d, f) for f, d in forms if f), key=lambda df: (-len(df[1]), df[1])))


@lru_cache(maxsize=64)
def _known_pattern(secrets: frozenset[str]) -> tuple[re.Pattern | None, dict[str, str]]:
    replacement: dict[str, str] = {}
    for secret in sorted(secrets):
        for description, form in key_forms(secret):
            if description in ("the key", "the end of the key"):
                replacement[form] = _masked(form)
            else:
                replacement.setdefault(form, "***")
    if not replacement:
        return None, replacement
    return re.compile("|".join(map(re.escape, sorted(replacement, key=len, reverse=True)))), replacement


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every secret masked (the given ones, the remembered and the environment's, and the patterns above)."""
    if not text:
        return text
    pattern, replacement = _known_pattern(known_secrets(secrets))
    if pattern is not None:
        text = pattern.sub(lambda m: replacement[m.group(0)], text)
    for shape, replace in _PATTERNS:
        text = shape.sub(replace, text)
    return text


def redact_data(data, secrets: Iterable[str] = ()):
    """A JSON-like structure with every string (keys too) redacted."""
    if isinstance(data, str):
        return redact(data, secrets)
    if isinstance(data, Mapping):
        return {redact_data(k, secrets): redact_data(v, secrets) for k, v in data.items()}
    if isinstance(data, (list, tuple)):
        return [redact_data(v, secrets) for v in data]
    return data


def redact_headers(headers: Mapping[str, str], secrets: Iterable[str] = ()) -> dict[str, str]:
    """Headers with credentials and account ids masked: the scheme of an Authorization header stays, the credential does not."""
    out = {}
    for name, value in headers.items():
        if name.lower() in SECRET_HEADERS:
            scheme, _, credential = str(value).partition(" ")
            out[name] = f"{scheme} {_masked(credential)}" if credential and scheme.lower() in ("bearer", "basic") else _masked(str(value))
        elif name.lower() in ACCOUNT_HEADERS:
            out[name] = "***"
        else:
            out[name] = redact(str(value), secrets)
    return out


# -- the strict finder (cassettes) ---------------------------------------------------------
LIVE_KEY = re.compile(r"\bsk-[A-Za-z0-9]{20,}\b")
LIVE_BEARER = re.compile(r"\bBearer\s+(?!<|\*|REDACTED|SCRUBBED)[A-Za-z0-9._\-]{16,}", re.IGNORECASE)
_LIVE_ACCOUNT_ID = re.compile(r"\b(org|proj|ak)-(?!0+\b)[A-Za-z0-9]{6,}")  # zeroed ids are scrubbed ones
_ACCOUNT_HEADER_NAME = re.compile(r"(?i)\bmsh-(uid|gid|org-id|project-id)\b")


def excerpt(value: str) -> str:
    """Enough of a secret to recognise it in a message, never the secret itself."""
    return value[:5] + "…" if len(value) > 8 else "…"


def find_secrets(text: str, known: Iterable[str] = ()) -> list[tuple[int, str]]:
    """``(line number, what)`` of every secret in ``text``: a known key in any of its forms, a key shape, a live account id or header.

    ``what`` describes the find without the secret (an excerpt of a key shape, the kind of form of a known key).
    """
    forms = [(d, f) for key in sorted({k for k in known if k}) for d, f in key_forms(key) if len(f) >= min(len(key), WINDOW)]
    hits = []
    for number, line in enumerate(text.splitlines(), 1):
        hits += [(number, excerpt(m.group(0))) for m in LIVE_KEY.finditer(line)]
        hits += [(number, "Bearer " + excerpt(m.group(0).split()[-1])) for m in LIVE_BEARER.finditer(line)]
        hits += [(number, f"an {m.group(1)}- account id") for m in _LIVE_ACCOUNT_ID.finditer(line)]
        hits += [(number, f"Moonshot's account header {m.group(0)}") for m in _ACCOUNT_HEADER_NAME.finditer(line)]
        hits += sorted({(number, description) for description, form in forms if form in line})
    return hits
