"""Extract stage: turn a fetched response into structured statements.

A site profile (one class in one file under `monitor/sites/`) says which requests to make
for a watch and how to read the answers. A response that is not the statement — an error
page, a captcha, a non-JSON answer from an API — is a *problem* with a reason, never an
empty statement, so it can never be mistaken for "all content deleted".
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any, ClassVar

from bs4 import BeautifulSoup, Tag

from monitor.fetch import FetchRequest, FetchResult, HeaderCapture


@dataclass(frozen=True)
class Link:
    href: str
    text: str


@dataclass(frozen=True)
class Statement:
    """One statement as the archive keeps it. `key` is stable within its watch."""

    key: str
    url: str
    title: str
    paragraphs: tuple[str, ...]
    published: str | None = None
    language: str | None = None
    links: tuple[Link, ...] = ()

    def to_json(self) -> bytes:
        """Canonical JSON: the same statement always gives the same bytes (and hash)."""
        data = asdict(self)
        return json.dumps(data, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, raw: bytes | str) -> Statement:
        data = json.loads(raw)
        return cls(
            key=data["key"],
            url=data["url"],
            title=data["title"],
            paragraphs=tuple(data["paragraphs"]),
            published=data.get("published"),
            language=data.get("language"),
            links=tuple(Link(**link) for link in data.get("links", ())),
        )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.to_json()).hexdigest()

    def render_text(self) -> str:
        """Plain text for people: title, date, paragraphs, links."""
        lines = [self.title]
        if self.published:
            lines.append(self.published)
        lines.append("")
        for paragraph in self.paragraphs:
            lines += [paragraph, ""]
        if self.links:
            lines.append("Links:")
            lines += [f"- {link.text} <{link.href}>" for link in self.links]
        return "\n".join(lines).rstrip() + "\n"


@dataclass
class Extraction:
    """What a profile read from one response."""

    statements: list[Statement] = field(default_factory=list)
    # Set when the response is not usable content; the reason is shown to the user.
    problem: str | None = None
    # The response says the statement no longer exists (404/410 of a detail page).
    gone: bool = False
    # For listings: statements published on or after this date are expected to be present,
    # so one that is missing was removed rather than pushed off the page by newer ones.
    window_start: str | None = None
    is_listing: bool = False


@dataclass(frozen=True)
class Target:
    """What a profile needs to know about a watch."""

    url: str
    language: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    # CSS selectors of elements the user wants dropped before extraction (page furniture
    # the profile does not know about).
    drop_selectors: tuple[str, ...] = ()


class Profile:
    """Base of site profiles. Subclasses register themselves by `name`."""

    name: ClassVar[str] = ""
    registry: ClassVar[dict[str, type[Profile]]] = {}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if cls.name:
            Profile.registry[cls.name] = cls

    @classmethod
    def matches(cls, url: str) -> bool:
        """Whether this profile is the natural choice for a URL (used when none is set)."""
        return False

    def requests(self, target: Target) -> list[FetchRequest]:
        """Alternative requests, tried in order until one gives a usable extraction."""
        return [FetchRequest(target.url)]

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        raise NotImplementedError

    def header_capture(self, target: Target) -> HeaderCapture | None:
        """Headers the site's own scripts add to API calls, when the API demands them."""
        return None

    def needs_fresh_headers(self, result: FetchResult) -> bool:
        """Whether this answer means the captured headers are missing or expired."""
        return False


def profile_names() -> list[str]:
    _load_sites()
    return sorted(Profile.registry)


def get_profile(name: str | None, url: str) -> Profile:
    """The named profile, else the first whose `matches(url)` is true, else `generic`."""
    _load_sites()
    if name:
        return Profile.registry[name]()
    for cls in Profile.registry.values():
        if cls.matches(url):
            return cls()
    return Profile.registry["generic"]()


def date_sort_key(value: str | None) -> float:
    """Seconds since the epoch for an ISO date as sites write it; 0 when unreadable."""
    if not value:
        return 0.0
    try:
        return datetime.fromisoformat(value.strip().replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0


def _load_sites() -> None:
    import monitor.sites  # noqa: F401  (registers the profiles on import)


# --- helpers shared by profiles -------------------------------------------------------------

_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff\u00ad"), None)
_SPACES = re.compile(r"[\s\u00a0\u2007\u202f]+")

BLOCK_TAGS = ("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "blockquote", "pre", "td", "th")
FURNITURE_TAGS = (
    "script",
    "style",
    "noscript",
    "template",
    "nav",
    "header",
    "footer",
    "aside",
    "form",
    "iframe",
    "svg",
    "button",
)


def normalize_text(text: str) -> str:
    """NFC, no invisible characters or soft hyphens, single spaces."""
    text = unicodedata.normalize("NFC", text).translate(_INVISIBLE)
    return _SPACES.sub(" ", text).strip()


def html_to_paragraphs(
    fragment: str | Tag, base_url: str = "", drop: tuple[str, ...] = ()
) -> tuple[list[str], list[Link]]:
    """Paragraph texts and links of an HTML fragment, furniture and `drop` selectors removed."""
    from urllib.parse import urljoin

    root = BeautifulSoup(fragment, "lxml") if isinstance(fragment, str) else fragment
    drop_selected(root, drop)
    for tag in root.find_all(FURNITURE_TAGS):
        tag.decompose()
    links: list[Link] = []
    for anchor in root.find_all("a", href=True):
        href = anchor["href"].strip()
        if href and not href.startswith(("#", "javascript:", "mailto:")):
            links.append(Link(urljoin(base_url, href), normalize_text(anchor.get_text(" "))))
    paragraphs: list[str] = []
    blocks = root.find_all(BLOCK_TAGS)
    leaf_blocks = [b for b in blocks if not b.find(BLOCK_TAGS)]
    if leaf_blocks:
        for block in leaf_blocks:
            text = normalize_text(block.get_text(" "))
            if text:
                paragraphs.append(text)
    else:
        # Bodies written as text with <br> line breaks and no block tags.
        for line in root.get_text("\n").split("\n"):
            text = normalize_text(line)
            if text:
                paragraphs.append(text)
    return paragraphs, _unique(links)


def drop_selected(root: Tag, selectors: tuple[str, ...]) -> None:
    """Remove every element matching one of the user's ignore selectors."""
    for selector in selectors:
        for element in root.select(selector):
            element.decompose()


def _unique(links: list[Link]) -> list[Link]:
    seen: set[tuple[str, str]] = set()
    result = []
    for link in links:
        if (link.href, link.text) not in seen:
            seen.add((link.href, link.text))
            result.append(link)
    return result


_CHALLENGE_MARKERS = (
    "just a moment...",
    "cf-browser-verification",
    "challenge-platform",
    "cf_chl_opt",
    "ddos-guard",
    "checking your browser",
    "проверка браузера",
)
# Real statement pages may carry a captcha in a feedback form; only a small page whose
# purpose is the captcha counts.
_WEAK_CHALLENGE_MARKERS = ("g-recaptcha", "h-captcha", "captcha")
_SMALL_PAGE = 15000
_MAINTENANCE_MARKERS = (
    "maintenance",
    "технические работы",
    "техническое обслуживание",
    "временно недоступен",
    "temporarily unavailable",
)


_LOGIN_PATH = re.compile(r"/(login|signin|sign-in|auth|sso|account/login|user/login)\b", re.I)


def _suspicious_redirect(result: FetchResult) -> str | None:
    """A redirect to the home page or a login page means the statement is not being shown."""
    if not result.redirects:
        return None
    from urllib.parse import urlsplit

    asked, landed = urlsplit(result.request.url), urlsplit(result.url)
    if landed.path in ("", "/") and asked.path not in ("", "/"):
        return f"redirected to the home page ({result.url})"
    if _LOGIN_PATH.search(landed.path) and not _LOGIN_PATH.search(asked.path):
        return f"redirected to a login page ({result.url})"
    return None


def classify_unusable(result: FetchResult) -> str | None:
    """A reason when the response is clearly not content (error, challenge, maintenance)."""
    if result.problem:
        return result.problem
    if result.status is None:
        return "no response"
    redirect = _suspicious_redirect(result)
    if redirect:
        return redirect
    head = result.body[:20000].decode("utf-8", errors="ignore").lower()
    small = len(result.body) < _SMALL_PAGE
    if any(marker in head for marker in _CHALLENGE_MARKERS) or (
        small and any(marker in head for marker in _WEAK_CHALLENGE_MARKERS)
    ):
        return f"captcha or bot challenge page (HTTP {result.status})"
    if result.status >= 400:
        if any(marker in head for marker in _MAINTENANCE_MARKERS):
            return f"maintenance page (HTTP {result.status})"
        return f"HTTP {result.status}"
    return None
