"""A page's bytes to its text: the charset the header names, then the one in `<meta>`,
then detection (charset-normalizer); UTF-8 that was encoded twice is repaired.

Its own module because it decides the text of every statement as much as the profiles do:
`extract.extraction_code` fingerprints it with them, so that an upgrade that decodes some
page differently is told from an edit of that page. The stored bytes are never changed.
"""

from __future__ import annotations

import re

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.I)
_HEADER_CHARSET = re.compile(r"charset\s*=\s*[\"']?([A-Za-z0-9_.:-]+)", re.I)
# Typical fragments of UTF-8 that was decoded as Latin-1/cp1252 and encoded again.
_MOJIBAKE = re.compile("[ÐÑÃÂ][\u0080-\u00bf\u2018-\u203a\u0152-\u0178]")


def decode_body(body: bytes, content_type: str | None) -> str:
    """Header charset, then <meta>, then detection; repairs double-encoded UTF-8."""
    for candidate in (_charset_from_header(content_type), _charset_from_meta(body)):
        if candidate:
            try:
                return _repair_double_utf8(body.decode(candidate))
            except (LookupError, UnicodeDecodeError):
                continue
    try:
        return _repair_double_utf8(body.decode("utf-8"))
    except UnicodeDecodeError:
        from charset_normalizer import from_bytes  # detection is the rare, slow path

        best = from_bytes(body).best()
        return str(best) if best is not None else body.decode("utf-8", errors="replace")


def _charset_from_header(content_type: str | None) -> str | None:
    match = _HEADER_CHARSET.search(content_type or "")
    return match.group(1) if match else None


def _charset_from_meta(body: bytes) -> str | None:
    match = _META_CHARSET.search(body[:4096])
    return match.group(1).decode("ascii") if match else None


def _repair_double_utf8(text: str) -> str:
    # Plain substring searches first: they are memchr-fast, the regex scan of a whole
    # non-ASCII page is not (4 ms a page, as much as reading the page's content).
    if not any(lead in text for lead in "ÐÑÃÂ") or len(_MOJIBAKE.findall(text)) < 3:
        return text
    for codec in ("cp1252", "latin-1"):
        try:
            return text.encode(codec).decode("utf-8")
        except (UnicodeEncodeError, UnicodeDecodeError):
            continue
    return text
