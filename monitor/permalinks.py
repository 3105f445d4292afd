"""The UI's addresses of a statement's versions and diffs, in one place: the web UI links
to them and alerts carry them (with `[server] public_url` in front). A leaf: alerts import
it without the web server."""

from __future__ import annotations

from urllib.parse import quote


def version_path(watch_id: str, key: str, seq: int, part: str = "") -> str:
    """A version's page in the UI, by its statement and number (the one numbering users
    see everywhere: 1, 2, 3 … per statement); `part` e.g. "/raw"."""
    return f"/watch/{quote(watch_id, safe='')}/versions/{seq}{part}?key={quote(key, safe='')}"


def statement_path(watch_id: str, key: str) -> str:
    """A statement's page: its timeline and its language versions side by side."""
    return f"/watch/{quote(watch_id, safe='')}/statement?key={quote(key, safe='')}"


def absolute(public_url: str | None, path: str) -> str | None:
    """`path` under the UI's public address, or None when none is configured (a link an
    alert carries must open from a mail client, not only from the UI itself)."""
    return f"{public_url.rstrip('/')}{path}" if public_url else None
