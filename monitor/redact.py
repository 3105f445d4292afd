"""Secrets out of what people and other programs see.

A watch URL may carry credentials (`https://user:pass@host/`): the fetcher needs them, so
the configuration and the archive keep them, but every place that shows or exports a URL —
the web UI, feeds, alerts, JSON lines, WARC — shows `https://***@host/` instead.

Request headers that authenticate (Authorization, Cookie, gov.kz's browser-issued
`hash`/`token`, and names that say they hold a token, key or secret) are kept as evidence
of what was sent, and written to exports as `[redacted]` unless the operator asks for them
(`monitor export --include-secrets`). So are response headers that hand out a secret
(`Set-Cookie`: the site's session for whoever replays it; token-bearing names), and any
header's URL credentials (a `Location` or `Referer` naming `user:pass@`). Authentication
challenges (`WWW-Authenticate`) name a realm, not a secret, and are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

# What stands in for the user-info part of a URL, and for a secret header's value.
HIDDEN = "***"
REDACTED = "[redacted]"

# A URL with user-info inside free text (a failure reason, a log line, a page title).
_URL_WITH_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.\-]*://)([^\s/?#\"'<>]+)@")

_SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "hash", "token", "x-api-key"}
)
# Header names holding these words are secrets too (x-auth-token, x-csrf-token, api-key…).
_SECRET_WORDS = ("token", "secret", "password", "api-key", "apikey", "session", "auth")
_SECRET_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
_CHALLENGES = frozenset({"www-authenticate", "proxy-authenticate"})

T = TypeVar("T")


def redact_url(url: str | None) -> str | None:
    """The URL with any user-info replaced by `***` (None stays None)."""
    if not url or "@" not in url:
        return url
    try:
        parts = urlsplit(url)
    except ValueError:
        return redact_text(url)
    if "@" not in parts.netloc:
        return redact_text(url)  # an '@' elsewhere (path, query) is not a credential
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{HIDDEN}@{host}"))


def redact_text(text: str) -> str:
    """Free text with the user-info of every URL in it replaced by `***`."""
    if "@" not in text or "://" not in text:
        return text
    return _URL_WITH_USERINFO.sub(lambda m: f"{m.group(1)}{HIDDEN}@", text)


def has_userinfo(url: str) -> bool:
    try:
        return "@" in urlsplit(url).netloc
    except ValueError:
        return False


def is_secret_header(name: str) -> bool:
    lowered = name.lower()
    return lowered in _SECRET_HEADERS or any(word in lowered for word in _SECRET_WORDS)


def is_secret_response_header(name: str) -> bool:
    lowered = name.lower()
    if lowered in _CHALLENGES:
        return False
    return lowered in _SECRET_RESPONSE_HEADERS or is_secret_header(lowered)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Request headers with the values of secret ones replaced by `[redacted]`, and URL
    credentials in the others' (a Referer) by `***`."""
    return {
        name: REDACTED if is_secret_header(name) else redact_text(value)
        for name, value in headers.items()
    }


def redact_response_headers(headers: Iterable[Sequence[str]]) -> list[tuple[str, str]]:
    """Response headers (name, value) with the values of secret ones (Set-Cookie) replaced
    by `[redacted]`, and URL credentials in the others' (a Location) by `***`."""
    return [
        (name, REDACTED if is_secret_response_header(name) else redact_text(value))
        for name, value in headers
    ]


def redact_deep(value: T) -> T:
    """Every string inside a JSON-like value with URL credentials redacted (alert payloads:
    the statement's URL, a failure reason quoting the URL, digests of several alerts)."""
    return _deep(value)


def _deep(value: Any) -> Any:
    if isinstance(value, str):
        return redact_text(value)
    if isinstance(value, dict):
        return {key: _deep(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_deep(item) for item in value)
    return value
