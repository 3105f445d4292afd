"""Extract stage: turn a fetched response into structured statements.

A site profile (one class in one file under `monitor/sites/`, listed in
`monitor.sites.PROFILES`) says which requests to make for a watch and how to read the
answers; `Profile`, its base, and the helpers the profiles share live here. A response
that is not the statement — an error page, a captcha, a non-JSON answer from an API — is a
*problem* with a reason, never an empty statement, so it can never be mistaken for "all
content deleted".
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict

# Response classification lives in its own module; both names are part of this one's API.
from monitor.classify import classify_unusable, suspicious_shrink  # noqa: F401
from monitor.clock import parse_iso
from monitor.fetched import FetchRequest, FetchResult, HeaderCapture

# The values profiles are given and give back live in a leaf module (no monitor imports),
# named here too for the many modules that import them from this one.
from monitor.links import is_attachment, normalize_url
from monitor.statement import Extraction, Link, Statement, Target

# bs4 is imported in the functions that parse or walk a page, not here: with soupsieve it
# costs ~160 ms of start-up, and a cycle where every page answers 304 never parses one.
if TYPE_CHECKING:
    from bs4 import Tag


class NoOptions(BaseModel):
    """The options of a profile that takes none."""

    model_config = ConfigDict(extra="forbid")


class Profile:
    """Base of site profiles; `monitor.sites.PROFILES` lists them, in the order they are
    asked whether a URL is theirs."""

    name: ClassVar[str] = ""
    # Host names this profile is the natural choice for (exact match).
    hosts: ClassVar[tuple[str, ...]] = ()
    # What a watch's `options = { ... }` may say to this profile: checked when the config is
    # read, so a typo is an error naming its line, not a setting silently not applied.
    options: ClassVar[type[BaseModel]] = NoOptions

    @classmethod
    def matches(cls, url: str) -> bool:
        """Whether this profile is the natural choice for a URL (used when none is set).

        A host profile reads its site's pages, not its RSS/Atom feeds: those are left to the
        `feed` profile (a profile that reads its site's feed overrides this).
        """
        from urllib.parse import urlsplit

        return (urlsplit(url).hostname or "") in cls.hosts and not looks_like_feed(url)

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

    def statement_profile(self) -> str | None:
        """The profile for the pages of the statements this one lists (None: by URL)."""
        return self.name

    def translation_group(self, statement: Statement) -> str | None:
        """A value shared by the translations of one statement, when the site has them."""
        return None


# Paths that name a feed: Bitrix `rss.php`, WordPress `/feed/`, `…/rss`, `*.rss`, `*.atom`,
# `atom.xml`, `rss.xml`.
_FEED_PATH = re.compile(r"(?:rss\.php|/rss|\.rss|/feed/?|\.atom|atom\.xml|rss\.xml)$", re.I)


def looks_like_feed(url: str) -> bool:
    """Whether a URL's path names an RSS or Atom feed."""
    from urllib.parse import urlsplit

    return bool(_FEED_PATH.search(urlsplit(url).path))


def date_sort_key(value: str | None) -> float:
    """Seconds since the epoch for an ISO date as sites write it; 0 when unreadable."""
    if not value:
        return 0.0
    try:
        return parse_iso(value).timestamp()
    except ValueError:
        return 0.0


@lru_cache(maxsize=1)
def extraction_code() -> str:
    """A fingerprint of the code that reads pages into statements: this module, the
    decoding of bytes to text (`charset`) and the site profiles. It is part of each watch's
    extraction rules, so that an upgrade of monitor that reads some page differently is
    told from an edit of that page (see `check`).

    All profiles at once, not the watch's own: they share helpers (`generic` reads pages
    for the others), and one more re-read after an upgrade costs only a parse."""
    digest = hashlib.sha256()
    here = Path(__file__)
    sources = [
        here,
        here.parent / "statement.py",
        here.parent / "links.py",
        here.parent / "charset.py",
        *sorted((here.parent / "sites").glob("*.py")),
    ]
    try:
        for path in sources:
            digest.update(path.name.encode() + b"\0" + path.read_bytes())
        # The library that finds a page's main content reads pages too.
        from importlib.metadata import PackageNotFoundError, version

        with contextlib.suppress(PackageNotFoundError):
            digest.update(b"trafilatura\0" + version("trafilatura").encode())
    except OSError:  # no sources to read (a frozen build): upgrades look like edits, as before
        return ""
    return digest.hexdigest()[:16]


# --- helpers shared by profiles -------------------------------------------------------------

# Characters that change nothing a reader sees: zero-width spaces and joiners, word joiner,
# byte order mark, soft hyphen, direction marks and bidi embeddings/isolates, invisible
# operators. CMS editors insert and drop them at will, so they must never count as an edit.
_INVISIBLE = dict.fromkeys(
    map(
        ord,
        "\u200b\u200c\u200d\u2060\ufeff\u00ad\u180e\u200e\u200f"
        "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2061\u2062\u2063\u2064",
    ),
    None,
)
_INVISIBLE_RE = re.compile("[" + "".join(map(chr, _INVISIBLE)) + "]")
# Every kind of space (no-break, narrow no-break, figure, thin, ideographic, line and
# paragraph separators) is one space. Quotes, dashes and apostrophes are left alone: « » vs
# " " or ’ vs ' is a change an editor made on purpose.
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
# Elements that start a new line of text in a browser. Text between two of them is one
# paragraph; inline elements (b, span, a, …) join their text with no space added, so a word
# split over <span>s by a word processor reads as one word.
_BREAKING = frozenset(
    (
        *BLOCK_TAGS,
        *("address", "article", "aside", "caption", "dd", "details", "dialog", "div", "dl"),
        *("dt", "fieldset", "figcaption", "figure", "footer", "form", "header", "hr", "main"),
        *("nav", "ol", "section", "summary", "table", "tbody", "tfoot", "thead", "tr", "ul"),
    )
)
# Inside these a <br> is a line break within one paragraph, not a new paragraph.
_PARAGRAPH_LIKE = frozenset(("p", "h1", "h2", "h3", "h4", "h5", "h6", "li", "dt", "dd", "td"))
_PARAGRAPH_LIKE |= frozenset(("th", "pre", "caption", "figcaption"))


# Query parameters that say who shared a link, not where it goes; they rotate per visit.
def normalize_text(text: str) -> str:
    """NFC, no invisible characters or soft hyphens, single spaces."""
    if text.isascii():
        # Nothing to compose and no invisible character: only the spaces (most text nodes
        # of most pages, and a page's reading normalises hundreds of them). A printable
        # text has no white space but " ", so one with neither "  " nor a space at its ends
        # is its own normal form: given back as it is (a plain str), not split into its
        # words and joined again (a paragraph of trafilatura's, already trimmed, is).
        if text.isprintable() and "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text if type(text) is str else str(text)
        return " ".join(text.split())
    # A regex deletes them in C; str.translate with a dict looks every character up in Python
    # (most of the cost of reading a long page). Then split/join as above: `_SPACES` holds
    # exactly the characters str.split splits on (those str.isspace holds for; tests/
    # test_extract_fast_paths.py), so it is `_SPACES.sub(" ", text).strip()` in half the time.
    return " ".join(_INVISIBLE_RE.sub("", unicodedata.normalize("NFC", text)).split())


def split_attachments(links: list[Link]) -> tuple[list[Link], list[Link]]:
    """(ordinary links, links to documents)."""
    return (
        [link for link in links if not is_attachment(link.href)],
        [link for link in links if is_attachment(link.href)],
    )


def html_to_paragraphs(
    fragment: str | Tag, base_url: str = "", drop: tuple[str, ...] = (), images: bool = False
) -> tuple[list[str], list[Link]]:
    """Paragraph texts and links of an HTML fragment, furniture and `drop` selectors removed.

    `images`: an image's alt text is a paragraph too (see `paragraph_texts`)."""
    from bs4 import BeautifulSoup

    root = BeautifulSoup(fragment, "lxml") if isinstance(fragment, str) else fragment
    drop_selected(root, drop)
    for tag in root.find_all(FURNITURE_TAGS):
        tag.decompose()
    return paragraph_texts(root, images=images), page_links(root, base_url)


def page_links(root: Tag, base_url: str = "") -> list[Link]:
    """Links of an element as (normalised URL, text), each once, in document order."""
    links: list[Link] = []
    for anchor in root.find_all("a", href=True):
        href = str(anchor["href"]).strip()
        if href and not href.startswith(("#", "javascript:", "mailto:", "tel:")):
            links.append(Link(normalize_url(href, base_url), inline_text(anchor)))
    return unique_links(links)


# Link texts that ask the reader to take the document itself: "Download", "Read the full
# text", "Полный текст". Not "Read more" / "Подробнее", which teaser lists repeat.
_CALL_TO_ACTION = re.compile(
    r"^(?:download|read the full text|full text|скачать|загрузить|полный текст|читать полный"
    r"|жүктеу|жүктеп алу|толық мәтін)",
    re.I,
)
_BUTTON_CLASS = re.compile(r"(?:^|[\s_-])(?:btn|button)(?:$|[\s_-])", re.I)


def is_button_link(anchor: Tag) -> bool:
    """A link drawn as a button or worded as a call to take a document ("Download",
    "Полный текст"): content even alone in its block, unlike the links of a teaser list."""
    classes = " ".join(anchor.get("class") or [])
    return (
        anchor.get("role") == "button"
        or bool(_BUTTON_CLASS.search(classes))
        or bool(_CALL_TO_ACTION.match(inline_text(anchor)))
    )


def inline_text(element: Tag) -> str:
    """The text of one element as a browser shows it on a line, normalised."""
    return normalize_text("".join(_strings(element)))


def paragraph_texts(root: Tag, images: bool = False) -> list[str]:
    """Text of an element split where a browser would start a new block, normalised.

    Walks the tree once: inline elements join their text as written, block elements and
    <br> outside a paragraph end a paragraph, and text outside any block (bodies written
    with <br> only, or loose text between <div>s) is kept rather than lost.

    `images`: a photo is content (what a removed photo showed is news), so an image
    standing as a block of its own (alone in its paragraph, or in a <figure>) gives its alt
    text as a paragraph when the alt describes it (see `image_text`); an icon inside a
    sentence does not.
    """
    from bs4 import CData, NavigableString, Tag

    paragraphs: list[str] = []
    buffer: list[str] = []

    def flush() -> None:
        text = normalize_text("".join(buffer))
        buffer.clear()
        if text:
            paragraphs.append(text)

    # An explicit stack (document order) instead of recursion: real pages nest deeply.
    stack: list[tuple[Any, bool]] = [(child, False) for child in reversed(root.contents)]
    while stack:
        node, in_paragraph = stack.pop()
        if node is _END_BLOCK:
            flush()
            continue
        if not isinstance(node, Tag):
            if type(node) in (NavigableString, CData):
                buffer.append(str(node))
            continue
        if node.name == "br":
            if in_paragraph:
                buffer.append(" ")
            else:
                flush()
            continue
        if node.name == "img":
            alt = image_text(node) if images and (not in_paragraph or _stands_alone(node)) else ""
            if alt:
                flush()
                if alt not in paragraphs[-1:]:
                    paragraphs.append(alt)
            continue
        breaking = node.name in _BREAKING
        if breaking:
            flush()
            stack.append((_END_BLOCK, in_paragraph))
        inner = in_paragraph or node.name in _PARAGRAPH_LIKE
        stack.extend((child, inner) for child in reversed(node.contents))
    flush()
    return paragraphs


_END_BLOCK = object()
_IMAGE_FILE = re.compile(r"\.(?:jpe?g|png|gif|webp|svg|bmp|tiff?)$", re.I)


def image_text(image: Tag) -> str:
    """An image's alt text when it describes the picture: two words or more, not a file
    name, and not what its <figcaption> already says."""
    alt = normalize_text(str(image.get("alt") or ""))
    if len(alt.split()) < 2 or _IMAGE_FILE.search(alt):
        return ""
    figure = image.find_parent("figure")
    caption = figure.find("figcaption") if figure is not None else None
    if caption is not None and normalize_text(caption.get_text(" ")) == alt:
        return ""
    return alt


def _stands_alone(image: Tag) -> bool:
    """An image in a <figure>, or alone in its paragraph (`<p><img></p>`), not an icon
    inside a sentence."""
    if image.find_parent("figure") is not None:
        return True
    paragraph = image.find_parent(_PARAGRAPH_LIKE)
    return paragraph is None or not normalize_text(paragraph.get_text())


def _strings(element: Tag) -> list[str]:
    from bs4 import CData, NavigableString, Tag

    text_types = (NavigableString, CData)
    if not isinstance(element, Tag):
        return [str(element)] if type(element) in text_types else []
    return [
        " " if isinstance(node, Tag) else str(node)
        for node in element.descendants
        if (isinstance(node, Tag) and node.name in ("br", *_BREAKING)) or type(node) in text_types
    ]


def drop_selected(root: Tag, selectors: tuple[str, ...]) -> None:
    """Remove every element matching one of the user's ignore selectors."""
    for selector in selectors:
        for element in root.select(selector):
            element.decompose()


def unique_links(links: list[Link]) -> list[Link]:
    """Each (URL, text) once, first occurrence first."""
    seen: set[tuple[str, str]] = set()
    result = []
    for link in links:
        if (link.href, link.text) not in seen:
            seen.add((link.href, link.text))
            result.append(link)
    return result
