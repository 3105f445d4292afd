"""What a statement's links are: absolute URLs without tracking parameters (`normalize_url`),
and documents told from pages (`is_attachment`). A leaf, so that comparing statements
(monitor.diff) does not import the extract stage; part of `extraction_code`.
"""

from __future__ import annotations

import re

_TRACKING_PARAM = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|gbraid|wbraid|yclid|ysclid|_ga|_gl|mc_cid|mc_eid|igshid"
    r"|_openstat|ref_src|phpsessid|jsessionid|sessionid)$",
    re.I,
)
_ATTACHMENT = re.compile(r"\.(?:pdf|docx?|xlsx?|pptx?|odt|ods|odp|rtf|txt|csv|zip|rar|7z)$", re.I)


def normalize_url(href: str, base_url: str = "") -> str:
    """Absolute URL without tracking parameters, session ids or fragment."""
    from urllib.parse import parse_qsl, urlencode, urljoin, urlsplit, urlunsplit

    parts = urlsplit(urljoin(base_url, href.strip()))
    path = re.sub(r";jsessionid=[^/?#]*", "", parts.path, flags=re.I)
    query = [(k, v) for k, v in parse_qsl(parts.query, True) if not _TRACKING_PARAM.match(k)]
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def is_attachment(href: str) -> bool:
    """Whether a link points at a document file rather than a page."""
    from urllib.parse import urlsplit

    return bool(_ATTACHMENT.search(urlsplit(href).path))
