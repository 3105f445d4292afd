"""The main content of an HTML page, read with trafilatura and turned into a statement's parts.

Why trafilatura: on the public article-extraction benchmark (real pages from many sites,
human-written ground truth; see bench/extraction.py) our own block-scoring extractor found
the article body with F1 0.899 where trafilatura found it with 0.962, and parsing a page into
BeautifulSoup alone cost more than trafilatura's whole extraction on lxml. Its fast mode (no
readability/justext comparison) scores the same as its default on those pages in half the
time, so that is the mode used.

What we add on top, because a change detector needs more than an article's text:

- pictures are content: what each picture of the content region shows in words — its
  caption (a <figcaption>, or a block whose class names it a caption), or, for a photo
  without one, its alt text when that describes it — is the statement's `figures`, apart
  from the paragraphs (see `region_figures`), so that a removed photo alerts with its words
  while the body text stays the article's prose;
- links and attachments come from the *content region* of the original page — the smallest
  element holding most of the paragraphs trafilatura kept — less its furniture, so a
  button-like link ("Download", "Полный текст") that trafilatura drops from the text for its
  link density still counts;
- fixed noise rules on the lines (see `monitor.sites.furniture`): counters, clocks and dates,
  share counts, cookie notices, "related"/"most read" lists; the first date-only line is the
  publication date when the page has no machine-readable one.
"""

from __future__ import annotations

import logging
import re
import threading
from dataclasses import dataclass, field
from functools import cache
from typing import TYPE_CHECKING, Any

import monitor.sites.furniture as furniture
import monitor.sites.xpaths as xpaths
from monitor.extract import is_attachment, normalize_text, normalize_url, unique_links
from monitor.statement import Link

if TYPE_CHECKING:
    from lxml.html import HtmlElement

# Elements of trafilatura's output that start and end a line of text.
_LINE_TAGS = frozenset(
    ("p", "head", "item", "quote", "code", "row", "cell", "list", "table", "div")
)
# A paragraph is matched to the page by its first characters (a text node starts it).
_MATCH_CHARS = 24
# The content region is the deepest element holding this share of the matched text.
_REGION_SHARE = 0.8
_MAX_MATCHED = 40
_NOT_TEXT = frozenset(("script", "style", "noscript", "template"))


@cache
def _long_text_xpath() -> Any:
    """Text nodes of 24+ characters outside scripts and styles (compiled once, on first use).

    The document's descendants in one walk: `//text()` (a child step from every node, each
    step's nodes merged into the set) found the same nodes in the same order in half again
    the time, 0.4 ms of a real page's reading."""
    from lxml import etree

    return etree.XPath(
        "/descendant::text()[string-length(.) >= $n][not(parent::script or parent::style"
        " or parent::noscript or parent::template)]",
        smart_strings=True,
    )


@cache
def _trafilatura_options() -> Any:
    """trafilatura's settings for `read_article`, made once: made on every call (as
    `bare_extraction` does from its keyword arguments), they read its configuration file's
    values again each time, a tenth of an extraction."""
    from trafilatura.settings import DEFAULT_CONFIG, Extractor

    # Its XPath prunes made in Python (the same elements, a tenth of the cost; see
    # monitor/sites/xpaths.py): set once, before the first reading, for the process.
    xpaths.install()
    return Extractor(
        config=DEFAULT_CONFIG,
        # Not "python": that also serialises the body as text (`Document.text`), which
        # nothing here reads (the lines come from `document.body`); the extraction itself
        # is the same for every text format (formatting stays off).
        output_format="txt",
        fast=True,
        comments=False,
        tables=True,
        links=True,
        images=False,
        # No URL: trafilatura would resolve every link, and we take links from the page.
        url=None,
        with_metadata=False,
    )


@dataclass
class Reading:
    """What trafilatura read from a page, in our terms."""

    paragraphs: list[str] = field(default_factory=list)
    # How much of each paragraph is link text (0–1): teaser lists are lines that are links.
    link_shares: list[float] = field(default_factory=list)
    # Whether each paragraph is a table cell: a number alone there is data, not a counter.
    in_table: list[bool] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    attachments: list[Link] = field(default_factory=list)
    figures: list[str] = field(default_factory=list)
    region: HtmlElement | None = None


def parse(html: str) -> HtmlElement | None:
    """The page as an lxml tree with an <html> root (None when there is nothing to parse).

    The text is already decoded (`monitor.charset`): lxml is handed its UTF-8 bytes, which
    it parses in half the time of a str, told the encoding so a <meta charset> is not obeyed.
    """
    from lxml import etree
    from lxml import html as lxml_html

    try:
        return lxml_html.document_fromstring(html.encode("utf-8", "replace"), parser=_parser())
    except (etree.ParserError, ValueError):
        return None


_PARSERS = threading.local()


def _parser() -> Any:
    """This thread's parser (lxml's parsers are not to be shared between threads), made
    once. Its elements are lxml.html's `HtmlElement` (comments, processing instructions and
    entities their own html classes) chosen in C: lxml.html's own parser asks a Python
    method for every element a walk of the tree touches, to give forms and their fields
    classes of their own that nothing here uses (a twentieth of reading a page)."""
    parser = getattr(_PARSERS, "parser", None)
    if parser is None:
        from lxml import etree
        from lxml import html as lxml_html

        parser = lxml_html.HTMLParser(
            encoding="utf-8", remove_comments=True, remove_pis=True, collect_ids=False
        )
        parser.set_element_class_lookup(
            etree.ElementDefaultClassLookup(
                element=lxml_html.HtmlElement,
                comment=lxml_html.HtmlComment,
                pi=lxml_html.HtmlProcessingInstruction,
                entity=lxml_html.HtmlEntity,
            )
        )
        _PARSERS.parser = parser
    return parser


def read_article(tree: HtmlElement, url: str) -> Reading | None:
    """The main content of a parsed page, or None when trafilatura finds none.

    The tree is changed (noise widgets go); trafilatura reads a copy of it, and the links
    and figures are taken from it afterwards.
    """
    import trafilatura

    # Its warnings are about the page's markup ("missing link attribute"), not for our log.
    # Set only when it is not yet: setting a level clears every logger's cache each time.
    logger = logging.getLogger("trafilatura")
    if logger.level != logging.ERROR:
        logger.setLevel(logging.ERROR)
    furniture.drop_widgets(tree)
    document = trafilatura.bare_extraction(tree, options=_trafilatura_options())
    # A dict only when asked for one (as_dict); None when it found nothing.
    if document is None or isinstance(document, dict) or document.body is None:
        return None
    lines = _lines(document.body)
    if not lines:
        return None
    region = content_region(tree, [text for text, _, _ in lines])
    reading = Reading()
    if region is not None:
        reading.region = region.element
        reading.links, reading.attachments = region_links(region.element, url)
        reading.figures = region_figures(region.element, [text for text, _, _ in lines])
    captions = set(reading.figures)
    for text, share, cell in lines:
        if region is not None and _only_outside(region, text):
            continue
        if text in captions:  # a caption trafilatura kept is the figure's, not prose
            continue
        reading.paragraphs.append(text)
        reading.link_shares.append(share)
        reading.in_table.append(cell)
    return reading


def _only_outside(region: Region, text: str) -> bool:
    """Whether a paragraph was found on the page, but only outside the content region: a
    sidebar block or a footer trafilatura added to a short article (a paragraph it could
    not be matched by is kept)."""
    places = region.places.get(text[:_MATCH_CHARS])
    return places is not None and bool(places) and 0 not in places


def _lines(body: HtmlElement) -> list[tuple[str, float, bool]]:
    """Each line of trafilatura's output as (text, share of it that is link text, whether it
    is a table cell).

    A table cell is a line of its own, as `paragraph_texts` reads a <td> (the diff names a
    changed cell with the cells before it); a line break inside a paragraph is a space (as
    `paragraph_texts` reads a <br> in a <p>).
    """
    lines: list[tuple[str, float, bool]] = []
    buffer: list[str] = []
    linked = [0]

    def flush(cell: bool = False) -> None:
        if not buffer:  # between two lines: no text, so no line (as normalising "" gave)
            linked[0] = 0
            return
        text = normalize_text("".join(buffer))
        if text:
            share = min(1.0, linked[0] / len(text))
            lines.append((text, share, cell))
        buffer.clear()
        linked[0] = 0

    def walk(element: HtmlElement) -> None:
        tag = element.tag
        breaking = tag in _LINE_TAGS
        if breaking:
            flush()
        if tag == "lb":
            buffer.append(" ")
        if tag == "ref":
            linked[0] += len(normalize_text("".join(element.itertext())))
        if element.text:
            buffer.append(element.text)
        for child in element:
            walk(child)
        if breaking:
            flush(cell=tag == "cell")
        if element.tail:
            buffer.append(element.tail)

    walk(body)
    flush()
    return lines


@dataclass
class Region:
    """The content region, and where each matched paragraph start was found on the page."""

    element: HtmlElement
    # Paragraph start -> document positions (relative to the region: -1 before, 0 inside,
    # 1 after) of the text nodes that start it.
    places: dict[str, set[int]]


def content_region(tree: HtmlElement, paragraphs: list[str]) -> Region | None:
    """The deepest element of the page holding most of the text of the kept paragraphs.

    Each long paragraph is found by the text node that starts it; every ancestor of a found
    node collects its length, and the deepest one with 80% of the total is the region. A lead
    repeated in a teaser elsewhere then moves nothing.
    """
    starts: dict[str, int] = {}
    for text in sorted(paragraphs, key=len, reverse=True)[:_MAX_MATCHED]:
        if len(text) >= _MATCH_CHARS:
            starts.setdefault(text[:_MATCH_CHARS], len(text))
    if not starts:
        return None
    found_at, pending = _paragraph_starts(tree, starts)
    total = sum(pending.values())
    if not total:
        return None
    weights = _weights_up(pending)
    held = [e for e, w in weights.items() if w >= total * _REGION_SHARE]
    if not held:
        return None
    # Those holding most of the text are one line of ancestors (two apart could not both
    # hold 80 %): the region is the deepest, the one with the most ancestors.
    region = max(held, key=lambda e: sum(1 for _ in e.iterancestors()))
    return Region(region, _places(found_at, region))


_Found = list[tuple[str, int, "HtmlElement"]]  # (start, node index, owner)


def _paragraph_starts(
    tree: HtmlElement, starts: dict[str, int]
) -> tuple[_Found, dict[HtmlElement, int]]:
    """The text nodes that start a kept paragraph ((start, node's index, owner) in document
    order), and the length of the paragraphs each owner starts itself."""
    found_at: _Found = []
    pending: dict[HtmlElement, int] = {}
    # Text nodes in document order (lxml's XPath, in C); a tail belongs to the parent's text.
    nodes = _long_text_xpath()(tree, n=_MATCH_CHARS)
    for index, node in enumerate(nodes):
        # The start is enough: normalising whole text nodes cost more than trafilatura.
        key = normalize_text(node[: 3 * _MATCH_CHARS])[:_MATCH_CHARS]
        found = starts.get(key)
        if not found:
            continue
        owner = node.getparent()
        if node.is_tail:
            owner = owner.getparent()
        if owner is None:
            continue
        found_at.append((key, index, owner))
        pending[owner] = pending.get(owner, 0) + found
    return found_at, pending


def _weights_up(pending: dict[HtmlElement, int]) -> dict[HtmlElement, int]:
    """What every ancestor of a found node holds, handed up one level at a time (the
    paragraphs of one wrapper reach it once, not once each all the way to the root)."""
    weights: dict[HtmlElement, int] = {}
    while pending:
        above: dict[HtmlElement, int] = {}
        for element, weight in pending.items():
            weights[element] = weights.get(element, 0) + weight
            parent = element.getparent()
            if parent is not None:
                above[parent] = above.get(parent, 0) + weight
        pending = above
    return weights


def _places(found_at: _Found, region: HtmlElement) -> dict[str, set[int]]:
    """Where each matched start stands against the region: -1 before, 0 inside, 1 after."""
    places: dict[str, set[int]] = {}
    first_inside = None
    for key, index, owner in found_at:
        inside = owner is region or any(a is region for a in owner.iterancestors())
        if inside and first_inside is None:
            first_inside = index
        place = 0 if inside else -1 if first_inside is None else 1
        places.setdefault(key, set()).add(place)
    return places


def region_links(region: HtmlElement, base_url: str) -> tuple[list[Link], list[Link]]:
    """(links, attachments) of the content region, furniture and teaser lists left out."""
    # Whether an element is furniture or inside furniture, below the region: found once per
    # element, and only for the links and the elements around them (`prose_heavy` reads all
    # of an element's paragraphs).
    in_furniture: dict[HtmlElement, bool] = {region: False}

    def furnished(anchor: HtmlElement) -> bool:
        path: list[HtmlElement] = []
        element: HtmlElement | None = anchor
        while element is not None and element not in in_furniture:
            path.append(element)
            element = element.getparent()
        held = in_furniture.get(element, False) if element is not None else False
        for element in reversed(path):
            held = held or (furniture.is_furniture(element) and not furniture.prose_heavy(element))
            in_furniture[element] = held
        return held

    links: list[Link] = []
    for anchor in region.iter("a"):
        href = (anchor.get("href") or "").strip()
        if not href or href.startswith(("#", "javascript:", "mailto:", "tel:")):
            continue
        if furnished(anchor) or (not is_attachment(href) and furniture.in_teaser_list(anchor)):
            continue
        text = normalize_text(anchor.text_content())
        links.append(Link(normalize_url(href, base_url), text))
    pages: list[Link] = []
    documents: list[Link] = []
    for link in unique_links(links):  # each URL parsed once to tell a document from a page
        (documents if is_attachment(link.href) else pages).append(link)
    return pages, documents


# A caption by its class name: "caption", "wp-caption-text", "image-caption", "media-caption".
_CAPTION_CLASS = re.compile(r"(?:^|[\s_-])caption(?:$|[\s_-])", re.I)
_CAPTIONS_XPATH = ".//figcaption | .//img | .//*[contains(@class, 'aption')]"
# A caption longer than this is a content wrapper with an unlucky class name.
_MAX_CAPTION = 500
# An alt text of one word ("photo", "logo") or a file name says nothing about the picture.
_MIN_ALT_WORDS = 2
_FILE_NAME = re.compile(r"\.(?:jpe?g|png|gif|webp|svg|bmp|tiff?|avif|heic)\b", re.I)
# Images drawn smaller than this (by their width/height attributes) are icons.
_ICON_PIXELS = 64
# How far up from an image its caption's block may start (figure > link > picture > img).
_FIGURE_DEPTH = 4
# A block around a caption is the figure's while it holds no more text than this besides
# (a "Video" label, a "close" button).
_FIGURE_EXTRA_TEXT = 40
_SENTENCE_BLOCKS = frozenset(("p", "li", "td", "th", "dd", "h2", "h3", "h4", "h5", "h6"))


def region_figures(region: HtmlElement, paragraphs: list[str]) -> list[str]:
    """What the pictures of the content region show, in words, in document order.

    A caption is a <figcaption> or an element whose class names it a caption (the innermost
    one); a picture with a caption nearby (in its <figure>, or a caption within a few levels
    of it) is named by the caption. A picture without one is named by its alt text when that
    describes it: two words or more, not a file name, not an icon's, standing as a block of
    its own or in a <figure> (not inside a sentence), and not repeating a paragraph. Pictures
    and captions in furniture inside the region (teaser lists, share blocks) are not the
    statement's.
    """
    found = region.xpath(_CAPTIONS_XPATH)
    if not found:
        return []
    inner = _innermost_captions(found, region)
    captioned = _captioned_blocks(inner, region)
    known = set(paragraphs)
    texts: list[str] = []
    for element in found:
        text = _figure_text(element, region, inner, captioned, known)
        if text is not None and text not in texts and _seen_as_content(element, region):
            texts.append(text)
    return texts


def _innermost_captions(found: list[HtmlElement], region: HtmlElement) -> set[HtmlElement]:
    """The captions among `found`, only the innermost: a "wp-caption" block holds its
    "wp-caption-text"."""
    captions = [
        e
        for e in found
        if e.tag == "figcaption" or (e.tag != "img" and _CAPTION_CLASS.search(e.get("class", "")))
    ]
    inner = set(captions)
    for caption in captions:
        for ancestor in caption.iterancestors():
            if ancestor is region:
                break
            inner.discard(ancestor)
    return inner


def _captioned_blocks(inner: set[HtmlElement], region: HtmlElement) -> set[HtmlElement]:
    """The blocks a caption names: those around it that hold no other text (a figure, a
    video player with its caption block), up to its <figure>."""
    captioned: set[HtmlElement] = set(inner)
    for caption in inner:
        size = len(normalize_text(caption.text_content()))
        for ancestor in caption.iterancestors():
            if ancestor is region:
                break
            if len(normalize_text(ancestor.text_content())) > size + _FIGURE_EXTRA_TEXT:
                break
            captioned.add(ancestor)
            if ancestor.tag == "figure":
                break
    return captioned


def _figure_text(
    element: HtmlElement,
    region: HtmlElement,
    inner: set[HtmlElement],
    captioned: set[HtmlElement],
    known: set[str],
) -> str | None:
    """What one caption or picture says, or None when it names no figure."""
    if element in inner:
        text = tree_text(element)
        if len(text.split()) < 2 or len(text) > _MAX_CAPTION or _mostly_linked(element, text):
            return None
        return text
    if element.tag == "img":
        text = _alt_text(element, region, captioned)
        return text if text and text not in known else None
    return None


def _seen_as_content(element: HtmlElement, region: HtmlElement) -> bool:
    """Whether a picture or caption is the statement's: visible, not in furniture inside the
    region, and not in a link to another page (a teaser of a carousel or a "most read" list;
    a photo's link to its own enlargement is the photo's)."""
    for ancestor in (element, *element.iterancestors()):
        if ancestor is region:
            return True
        if furniture.is_hidden(ancestor):
            return False
        if ancestor.tag == "a" and _links_a_page(ancestor.get("href") or ""):
            return False
        if (
            ancestor is not element
            and furniture.is_furniture(ancestor)
            and not furniture.prose_heavy(ancestor)
        ):
            return False
    return True


def _links_a_page(href: str) -> bool:
    href = href.strip()
    if not href or href.startswith(("#", "javascript:")):
        return False
    from urllib.parse import urlsplit

    return not _FILE_NAME.search(urlsplit(href).path)


def _mostly_linked(caption: HtmlElement, text: str) -> bool:
    """A caption that is mostly a link names another page (a teaser's headline)."""
    linked = sum(len(normalize_text(a.text_content())) for a in caption.iter("a"))
    return linked / len(text) > 0.5


def _alt_text(image: HtmlElement, region: HtmlElement, captioned: set[HtmlElement]) -> str:
    """An uncaptioned picture's alt text when it describes the picture (see `region_figures`)."""
    alt = normalize_text(image.get("alt") or "")
    if len(alt.split()) < _MIN_ALT_WORDS or _FILE_NAME.search(alt):
        return ""
    for size in (image.get("width"), image.get("height")):
        if size and size.strip().isdigit() and int(size) < _ICON_PIXELS:
            return ""
    in_sentence = None
    for level, ancestor in enumerate(image.iterancestors()):
        if ancestor is region:
            break
        if level < _FIGURE_DEPTH and ancestor in captioned:
            return ""  # named by its caption
        if ancestor.tag == "figure":
            in_sentence = False
        elif ancestor.tag == "a" and furniture.in_teaser_list(ancestor):
            return ""
        elif ancestor.tag in _SENTENCE_BLOCKS and in_sentence is None:
            # The nearest block: an icon or emoji inside a sentence is not a photo.
            in_sentence = bool(normalize_text(ancestor.text_content()))
    if in_sentence:
        return ""
    return alt


_BREAKING_TEXT = frozenset(("br", "p", "div", "li", "tr", "td", "th", "section", "h2", "h3"))


def tree_text(element: HtmlElement) -> str:
    """The text of an lxml element on one line, as `inline_text` reads a bs4 one."""
    parts: list[str] = []

    def walk(node: HtmlElement) -> None:
        if node.text:
            parts.append(node.text)
        for child in node:
            if isinstance(child.tag, str) and child.tag not in _NOT_TEXT:
                if child.tag in _BREAKING_TEXT:
                    parts.append(" ")
                walk(child)
            if child.tail:
                parts.append(child.tail)

    walk(element)
    return normalize_text("".join(parts))
