"""Generic profile: the main content of any HTML page as one statement.

How the main content is found, so that it stays the same when only the page around it moves:

1. Never-content elements go (scripts, styles, forms' controls, hidden elements).
2. Every prose block (a paragraph, list item, cell or text-bearing div of 25+ characters whose
   text is mostly not links) gives its length, less its link text, to its parent and half of it
   to its grandparent. The element with the highest score holds the statement; its siblings
   join it when they score nearly as well (a lead paragraph in its own wrapper), and an
   <article> around it is taken whole (its heading and dateline). Class names play no part
   in the choice, so an A/B layout that renames wrappers or reorders a sidebar picks the same
   text.
3. Inside that content, page furniture goes: navigation, share and print blocks, counters,
   related-news and teaser lists, cookie notices (by tag, ARIA role and class/id words), unless
   the element is itself prose-heavy (a content wrapper with an unlucky class name).
4. Lines that are only a date or time are not paragraphs: the first one is the published
   date when the page has no machine-readable one; the others are clocks and widgets. Lines
   that are only a view counter, and "read also" teasers, are dropped.

Links and attachments (PDF, Word, …) come from the same content, with tracking parameters
removed. `clean_content`, `parse_date` and `page_meta` are shared with the site profiles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import TYPE_CHECKING, Any

import monitor.sites.article as article
import monitor.sites.furniture as furniture
from monitor.extract import (
    Extraction,
    Link,
    Profile,
    Statement,
    Target,
    classify_unusable,
    drop_selected,
    inline_text,
    is_attachment,
    normalize_text,
    page_links,
    paragraph_texts,
    split_attachments,
    unique_links,
)
from monitor.fetched import FetchResult
from monitor.sites.article import tree_text

if TYPE_CHECKING:  # bs4 and lxml are imported where a page is parsed (see monitor.extract)
    from bs4 import BeautifulSoup, Tag
    from lxml.html import HtmlElement

# Never content, wherever they are.
_NEVER_CONTENT = (
    *("script", "style", "noscript", "template", "iframe", "svg", "button", "select"),
    *("input", "textarea", "object", "embed", "canvas", "link", "meta"),
)
_FURNITURE_TAGS = furniture.FURNITURE_TAGS
_FURNITURE_ROLES = furniture.FURNITURE_ROLES
_FURNITURE_WORDS = furniture.FURNITURE_WORDS
_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)
_PROSE_TAGS = frozenset(("p", "pre", "td", "blockquote", "li", "dd", "div", "section"))
_MIN_PROSE = 25
_INNER_BLOCKS = ("p", "div", "section", "li", "table", "ul", "ol", "blockquote", "pre", "h2")
_MIN_TEXT = 20
# trafilatura's own threshold (MIN_EXTRACTED_SIZE) for an article it found.
_SHORT_TEXT = 250

# Separators of a dateline's parts ("20.11.2026 | 14:35", "Astana · 20 November 2026").
_DATELINE_SEPARATORS = re.compile(r"[|·•]+")
# A dateline with a counter beside it is short ("20.11.2026 14:35 · Просмотров: 4 116").
_DATELINE_MAX = 120

_MONTHS = {
    **dict.fromkeys(("january", "jan", "января", "январь", "қаңтар"), 1),
    **dict.fromkeys(("february", "feb", "февраля", "февраль", "ақпан"), 2),
    **dict.fromkeys(("march", "mar", "марта", "март", "наурыз"), 3),
    **dict.fromkeys(("april", "apr", "апреля", "апрель", "сәуір"), 4),
    **dict.fromkeys(("may", "мая", "май", "мамыр"), 5),
    **dict.fromkeys(("june", "jun", "июня", "июнь", "маусым"), 6),
    **dict.fromkeys(("july", "jul", "июля", "июль", "шілде"), 7),
    **dict.fromkeys(("august", "aug", "августа", "август", "тамыз"), 8),
    **dict.fromkeys(("september", "sep", "sept", "сентября", "сентябрь", "қыркүйек"), 9),
    **dict.fromkeys(("october", "oct", "октября", "октябрь", "қазан"), 10),
    **dict.fromkeys(("november", "nov", "ноября", "ноябрь", "қараша"), 11),
    **dict.fromkeys(("december", "dec", "декабря", "декабрь", "желтоқсан"), 12),
}
_WEEKDAYS = (
    *("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"),
    *("mon", "tue", "wed", "thu", "fri", "sat", "sun"),
    *("понедельник", "вторник", "среда", "четверг", "пятница", "суббота", "воскресенье"),
    *("дүйсенбі", "сейсенбі", "сәрсенбі", "бейсенбі", "жұма", "сенбі", "жексенбі"),
)
# Words that may stand around a date on its own line ("Published: 20.11.2026, 14:35").
_DATE_WORDS = frozenset(
    (
        *(*_MONTHS, *_WEEKDAYS, "г", "года", "год", "ж", "жыл", "at", "am", "pm", "on"),
        *("updated", "published", "date", "дата", "опубликовано", "обновлено", "жарияланды"),
        *("utc", "msk"),
    )
)
_WORD = re.compile(r"[^\W\d_]+")
_DATE_SHAPE = re.compile(r"^[\w\s.,:/()+\-–—]{4,60}$")
_NUMERIC_DATE = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})\b")
_ISO_DATE = re.compile(r"\b(\d{4})-(\d{2})-(\d{2})\b")
_DAY_MONTH_YEAR = re.compile(r"\b(\d{1,2})\s+([^\W\d_]+)\.?,?\s+(\d{4})\b")
_MONTH_DAY_YEAR = re.compile(r"\b([^\W\d_]+)\.?\s+(\d{1,2}),?\s+(\d{4})\b")
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")


class GenericProfile(Profile):
    name = "generic"

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        reason = _unusable(result)
        if reason is not None:
            return reason
        html = result.text()
        if target.drop_selectors:
            # The user's CSS selectors are matched as everywhere else, by soupsieve.
            from bs4 import BeautifulSoup

            soup = BeautifulSoup(html, "lxml")
            drop_selected(soup, target.drop_selectors)
            html = str(soup)
        tree = article.parse(html)
        meta = tree_meta(tree) if tree is not None else None
        reading = article.read_article(tree, result.url) if tree is not None else None
        if meta is None or reading is None or sum(map(len, reading.paragraphs)) < _SHORT_TEXT:
            # Pages trafilatura finds no article in, or only a short one (a notice, a bare
            # list: below this it falls back to the page's whole text as one block): our own
            # block scoring, which keeps their paragraphs apart.
            return _own_extraction(result, target, html)
        content = Content(links=reading.links, attachments=reading.attachments)
        _keep_lines(
            content, reading.paragraphs, reading.link_shares, meta.heading, reading.in_table
        )
        if sum(len(p) for p in content.paragraphs) < _MIN_TEXT:
            return _own_extraction(result, target, html)
        statement = Statement(
            key="page",
            url=result.url,
            title=meta.title,
            paragraphs=tuple(content.paragraphs),
            published=meta.published
            or content.first_date
            or parse_date(tree_dateline(tree, reading.region)),
            language=target.language or meta.language,
            links=tuple(content.links),
            attachments=tuple(content.attachments),
            figures=tuple(reading.figures),
        )
        return Extraction(statements=[statement])


def _unusable(result: FetchResult) -> Extraction | None:
    """A gone page (404/410) or one that is not content (see `monitor.classify`)."""
    if result.status in (404, 410) and not result.problem:
        return Extraction(gone=True, problem=f"HTTP {result.status}")
    reason = classify_unusable(result)
    return Extraction(problem=reason) if reason else None


def _own_extraction(result: FetchResult, target: Target, html: str) -> Extraction:
    """Our block-scoring extractor on BeautifulSoup (see the module's docstring)."""
    from bs4 import BeautifulSoup, Tag

    soup = BeautifulSoup(html, "lxml")
    meta = page_meta(soup)
    heading = soup.find("h1")
    elements = main_content(soup)
    content = clean_content(elements, result.url, title=meta.heading)
    if sum(len(p) for p in content.paragraphs) < _MIN_TEXT:
        return Extraction(problem="no statement text found on the page (empty extraction)")
    figures = _own_figures(elements, content.paragraphs)
    captions = set(figures)
    statement = Statement(
        key="page",
        url=result.url,
        title=meta.title,
        paragraphs=tuple(p for p in content.paragraphs if p not in captions),
        published=meta.published
        or content.first_date
        or parse_date(dateline(heading if isinstance(heading, Tag) else None, elements[0])),
        language=target.language or meta.language,
        links=tuple(content.links),
        attachments=tuple(content.attachments),
        figures=tuple(figures),
    )
    return Extraction(statements=[statement])


def _own_figures(elements: list[Tag], paragraphs: list[str]) -> list[str]:
    """The figures of the content our block scoring chose (furniture already out), read as
    `article.region_figures` reads the content region. Short pages only come here, so
    reading each element again with lxml costs little."""
    figures: list[str] = []
    for element in elements:
        fragment = article.parse(str(element))
        body = fragment.find("body") if fragment is not None else None
        if body is None:
            continue
        figures += [f for f in article.region_figures(body, paragraphs) if f not in figures]
    return figures


def read_html(result: FetchResult, target: Target) -> BeautifulSoup | Extraction:
    """The parsed page without the user's ignored elements, or the extraction saying why not.

    A detail page answering 404/410 is gone; an error, challenge or maintenance page is a
    problem (see `monitor.classify`).
    """
    from bs4 import BeautifulSoup

    unusable = _unusable(result)
    if unusable is not None:
        return unusable
    soup = BeautifulSoup(result.text(), "lxml")
    drop_selected(soup, target.drop_selectors)
    return soup


@dataclass
class PageMeta:
    title: str = ""
    heading: str = ""  # the first <h1>, to drop from the body when it repeats the title
    published: str | None = None
    language: str | None = None


@dataclass
class Content:
    paragraphs: list[str] = field(default_factory=list)
    links: list[Link] = field(default_factory=list)
    attachments: list[Link] = field(default_factory=list)
    first_date: str | None = None  # the first date-only line, as ISO when readable


def page_meta(soup: BeautifulSoup) -> PageMeta:
    """Title, first heading, machine-readable publication date and language of a page."""
    from bs4 import Tag

    headings = [inline_text(h1) for h1 in soup.find_all("h1") if _shown_soup_heading(h1)]
    og_title = soup.find("meta", property="og:title")
    title_tag = soup.find("title")
    heading, title = visible_title(
        headings,
        str(og_title.get("content") or "") if isinstance(og_title, Tag) else "",
        inline_text(title_tag) if isinstance(title_tag, Tag) else "",
    )
    html = soup.find("html")
    lang = html.get("lang") if isinstance(html, Tag) else None
    return PageMeta(
        title=title,
        heading=heading,
        published=_published(soup),
        language=str(lang).split("-")[0].lower() if lang else None,
    )


def _shown_soup_heading(h1: Tag) -> bool:
    """`_shown_heading` for a BeautifulSoup tag."""
    return _shown_as_page_heading(
        (element.name, element.get("role"), partial(_is_hidden, element))
        for element in (h1, *h1.parents)
    )


def main_content(soup: BeautifulSoup) -> list[Tag]:
    """The element holding the page's prose, with siblings that score nearly as well."""
    from bs4 import Tag

    for tag in soup.find_all(_NEVER_CONTENT):
        tag.decompose()
    for tag in soup.find_all(_is_hidden):
        if not tag.decomposed:
            tag.decompose()
    scores: dict[int, float] = {}
    elements: dict[int, Tag] = {}
    for block in soup.find_all(_PROSE_TAGS):
        weight = _prose_weight(block)
        if not weight:
            continue
        parent = block.parent
        for share in (1.0, 0.5):
            if not isinstance(parent, Tag):
                break
            scores[id(parent)] = scores.get(id(parent), 0.0) + weight * share
            elements[id(parent)] = parent
            parent = parent.parent
    body = soup.body or soup
    if not scores:
        return [body]
    best_id = max(scores, key=lambda key: scores[key])
    best = elements[best_id]
    # The body's own <article> also holds its heading and dateline: take it whole.
    for ancestor in (best, *list(best.parents)[:3]):
        if ancestor.name == "article" or ancestor.get("role") == "article":
            return [ancestor]
    if best.parent is None or best.name in ("html", "[document]"):
        return [best]
    threshold = scores[best_id] * 0.33
    chosen = []
    for sibling in best.parent.find_all(True, recursive=False):
        if sibling is best or (
            not _is_furniture(sibling) and scores.get(id(sibling), 0.0) >= threshold
        ):
            chosen.append(sibling)
    return chosen


def clean_content(
    elements: Iterable[Tag], base_url: str, title: str = "", keep_furniture: bool = False
) -> Content:
    """Paragraphs, links and attachments of content elements, furniture and volatile lines out.

    `keep_furniture` is for profiles whose container is exactly the statement body.
    """
    content = Content()
    for element in elements:
        if not keep_furniture:
            _drop_furniture(element)
        _drop_link_lists(element)
        links, attachments = split_attachments(page_links(element, base_url))
        content.links += links
        content.attachments += attachments
        texts = paragraph_texts(element)
        _keep_lines(content, texts, [0.0] * len(texts), title)
    content.links = unique_links(content.links)
    content.attachments = unique_links(content.attachments)
    return content


def _keep_lines(
    content: Content,
    lines: list[str],
    link_shares: list[float],
    title: str,
    in_table: list[bool] | None = None,
) -> None:
    """Add the lines that are the statement's to `content.paragraphs`: no widget lines
    (`furniture.is_noise_line`), no teaser lists (a "Read also" / "Most read" heading and
    the lines of links after it), no date-only lines (the first, when it comes before the
    text, is kept as `first_date`),
    and not the page heading again."""
    in_teasers = False
    cells = in_table or [False] * len(lines)
    for text, share, cell in zip(lines, link_shares, cells, strict=True):
        if in_teasers and share > 0.5:
            continue
        in_teasers = False
        heading = furniture.TEASER_HEADING.match(text)
        if heading and not text[heading.end() :].strip():
            in_teasers = True
            continue
        if _teaser_line(text, share, heading) or furniture.is_noise_line(text, in_table=cell):
            continue
        if len(text) <= _DATELINE_MAX:
            bare = _DATELINE_SEPARATORS.sub(" ", furniture.strip_counters(text)).strip()
            if is_date_line(bare):
                # A dateline stands before the text; one among the paragraphs is a widget
                # (today's date, a clock) that moves on by itself.
                if not content.paragraphs:
                    content.first_date = content.first_date or parse_date(bare)
                continue
        content.paragraphs.append(text)
    if title and title in content.paragraphs:
        content.paragraphs.remove(title)


def _is_teaser_line(text: str, link_share: float) -> bool:
    """ "Read also: <a headline>" — a teaser heading with its teaser on one line."""
    return _teaser_line(text, link_share, furniture.TEASER_HEADING.match(text))


def _teaser_line(text: str, link_share: float, heading: re.Match[str] | None) -> bool:
    """`_is_teaser_line` given the line's `TEASER_HEADING` match (or None)."""
    if not heading or len(text) > 300:
        return False
    return link_share > 0.5 or ":" in heading.group(0)


# A character `str.isdigit` holds for: a decimal digit (`\d`) or one of the other digits
# (superscripts, subscripts, circled and Ethiopic digits, …; Unicode 14, checked against
# `str.isdigit` by tests/test_extract_digits.py). One search in C, where a generator asked
# each character of each line in turn.
_DIGIT = re.compile(
    "[\\d\u00b2\u00b3\u00b9\u1369-\u1371\u19da\u2070\u2074-\u2079\u2080-\u2089"
    "\u2460-\u2468\u2474-\u247c\u2488-\u2490\u24ea\u24f5-\u24fd\u24ff\u2776-\u277e"
    "\u2780-\u2788\u278a-\u2792\U00010a40-\U00010a43\U00010e60-\U00010e68"
    "\U00011052-\U0001105a\U0001f100-\U0001f10a]"
)


def is_date_line(text: str) -> bool:
    """Whether a line is only a date and/or time (a dateline, a clock, a date widget)."""
    if not _DIGIT.search(text) or not _DATE_SHAPE.match(text):
        return False
    words = [w.lower() for w in _WORD.findall(text)]
    has_date = bool(_NUMERIC_DATE.search(text) or _ISO_DATE.search(text)) or any(
        w in _MONTHS for w in words
    )
    return (has_date or bool(_TIME.search(text))) and all(w in _DATE_WORDS for w in words)


def dateline(start: Tag | None, stop: Tag) -> str:
    """The first date-only line after `start` (the title) and before `stop` (the body).

    With the time when it stands on its own line right after the date ("20.11.2026" "14:35").
    """
    from bs4 import CData, NavigableString, Tag

    found = ""
    for node in (start or stop).next_elements:
        if node is stop:
            break
        if isinstance(node, Tag) or type(node) not in (NavigableString, CData):
            continue
        text = normalize_text(str(node))
        if not text:
            continue
        if found:
            return f"{found} {text}" if _TIME.fullmatch(text) else found
        if is_date_line(text):
            found = text
    return found


def parse_date(text: str) -> str | None:
    """An ISO date (with the time when given) from the ways ministries write dates."""
    day = month = year = None
    if match := _ISO_DATE.search(text):
        year, month, day = (int(g) for g in match.groups())
    elif match := _NUMERIC_DATE.search(text):
        day, month, year = (int(g) for g in match.groups())
    elif (match := _DAY_MONTH_YEAR.search(text)) and match.group(2).lower() in _MONTHS:
        day, month, year = int(match.group(1)), _MONTHS[match.group(2).lower()], int(match[3])
    elif (match := _MONTH_DAY_YEAR.search(text)) and match.group(1).lower() in _MONTHS:
        month, day, year = _MONTHS[match.group(1).lower()], int(match.group(2)), int(match[3])
    if not (day and month and year) or not (1 <= month <= 12 and 1 <= day <= 31):
        return None
    iso = f"{year:04d}-{month:02d}-{day:02d}"
    if time := _TIME.search(text.replace(iso, "")):
        iso += f"T{int(time.group(1)):02d}:{time.group(2)}"
    return iso


def tree_meta(tree: HtmlElement) -> PageMeta:
    """`page_meta` for an lxml tree: title, first heading, publication date, language."""
    headings = [tree_text(h1) for h1 in tree.iter("h1") if _shown_heading(h1)]
    marks = _marks(tree)
    og_title = marks.get(("property", "og:title"))
    title_tag = next(tree.iter("title"), None)
    heading, title = visible_title(
        headings,
        str(og_title[0]) if og_title else "",
        tree_text(title_tag) if title_tag is not None else "",
    )
    lang = tree.get("lang") or next(iter(tree.xpath("//html/@lang")), None)
    return PageMeta(
        title=title,
        heading=heading,
        published=_tree_published(marks),
        language=str(lang).split("-")[0].lower() if lang else None,
    )


# The <meta> attributes a page's metadata is read from, as (attribute, value) naming the
# content: the publication date's in the order they are believed.
_PUBLISHED_META = (
    ("property", "article:published_time"),
    ("itemprop", "datePublished"),
    ("name", "dc.date.issued"),
    ("name", "date"),
)
_META_NAMES = frozenset((("property", "og:title"), *_PUBLISHED_META))


def _marks(tree: HtmlElement) -> dict[Any, list[Any]]:
    """In one walk of the page's <meta>, <script> and <time> elements, in document order:
    the content of the <meta>s named in `_META_NAMES` by (attribute, value), the JSON-LD
    scripts by "ld+json" and the <time>s' datetime by "time" (what an XPath for each found
    in a walk of its own)."""
    marks: dict[Any, list[Any]] = {}
    for element in tree.iter("meta", "script", "time"):
        tag = element.tag
        if tag == "meta":
            content = element.get("content")
            if content is None:
                continue
            for attribute in ("property", "itemprop", "name"):
                named = (attribute, element.get(attribute))
                if named in _META_NAMES:
                    marks.setdefault(named, []).append(content)
        elif tag == "script":
            if element.get("type") == "application/ld+json":
                marks.setdefault("ld+json", []).append(element)
        elif element.get("datetime") is not None:
            marks.setdefault("time", []).append(element.get("datetime"))
    return marks


# Where an <h1> is the site's (its logo, a menu), not the page's.
_NOT_PAGE_HEADING = frozenset(("a", "nav", "footer", "aside", "menu"))
# An <h1> names the page when most of its words are in the page's og:title or <title>.
_HEADING_WORDS_SHARED = 0.5
_MIN_HEADING_WORDS = 3


def _shown_heading(h1: HtmlElement) -> bool:
    """Whether an <h1> is shown as the page's: not hidden, not in a link, menu or footer,
    and not in the site's banner (a <header> outside the <article> or <main>)."""
    return _shown_as_page_heading(
        (element.tag, element.get("role"), partial(furniture.is_hidden, element))
        for element in (h1, *h1.iterancestors())
    )


def _shown_as_page_heading(ancestry: Iterable[tuple[object, object, Callable[[], bool]]]) -> bool:
    """`_shown_heading`'s rule over an <h1> and its ancestors, innermost first, each as (tag
    name, role attribute, whether it is hidden): one rule for the lxml tree and the
    BeautifulSoup one. Whether hidden is asked only of elements the rule reaches."""
    in_banner = False
    for name, role, hidden in ancestry:
        if name in _NOT_PAGE_HEADING or hidden():
            return False
        if name in ("article", "main"):
            return True
        in_banner |= name == "header" or role == "banner"
    return not in_banner


def visible_title(headings: list[str], og_title: str, page_title: str) -> tuple[str, str]:
    """(heading, title) of a page: the title is the visible <h1> that names the page, so a
    renamed heading is seen even when the og:title stays; without one, the og:title, the
    first <h1> or the <title>, in that order. The heading is that <h1> (or the first)."""
    names = [normalize_text(text) for text in (og_title, page_title)]
    named = {word for name in names for word in _WORD.findall(name.casefold())}
    for heading in headings:
        words = _WORD.findall(heading.casefold())
        if len(words) >= _MIN_HEADING_WORDS and (
            sum(word in named for word in words) >= _HEADING_WORDS_SHARED * len(words)
        ):
            return heading, heading
    first = next((h for h in headings if h), "")
    return first, next((text for text in (names[0], first, names[1]) if text), "")


_NOT_TEXT = frozenset(("script", "style", "noscript", "template"))


_DATELINE_LOOKAHEAD = 40
# A piece of text this long is the statement's prose, not a line of its heading block.
_PROSE_TEXT = 150


def tree_dateline(tree: HtmlElement, region: HtmlElement | None) -> str:
    """The first date-only line after the page heading (or from the content's start), as
    `dateline` finds it in a bs4 tree: within the next 40 pieces of text."""
    start = next(tree.iter("h1"), None)
    start = start if start is not None else region
    if start is None or not isinstance(start.tag, str) or start.tag in _NOT_TEXT:
        return ""
    seen = 0
    for event, element in _events_after(start):
        if not isinstance(element.tag, str) or element.tag in _NOT_TEXT:
            continue
        text = element.text if event == "start" else element.tail
        text = normalize_text(text or "")
        if not text:
            continue
        if len(text) >= _PROSE_TEXT:
            break  # the text has begun: a date after it is a widget's, not the dateline
        bare = _DATELINE_SEPARATORS.sub(" ", furniture.strip_counters(text)).strip()
        if is_date_line(bare):
            return bare
        seen += 1
        if seen >= _DATELINE_LOOKAHEAD:
            break
    return ""


def _events_after(element: HtmlElement) -> Iterator[tuple[str, HtmlElement]]:
    """The (event, element) pairs `etree.iterwalk` of the whole tree gives after `element`'s
    end, in order: its following siblings' walks, its parent's end, the parent's following
    siblings', and so on up to the root (non-element siblings left out), without walking
    the page up to it (the site's header and menus, hundreds of elements)."""
    from lxml import etree

    node: HtmlElement | None = element
    while node is not None:
        for sibling in node.itersiblings():
            if isinstance(sibling.tag, str):
                yield from etree.iterwalk(sibling, events=("start", "end"))
        node = node.getparent()
        if node is not None:
            yield "end", node


def _tree_published(marks: dict[Any, list[Any]]) -> str | None:
    """The machine-readable publication date among a page's `_marks`."""
    for named in _PUBLISHED_META:
        found = [str(v).strip() for v in marks.get(named, ()) if str(v).strip()]
        if found:
            return found[0]
    for script in marks.get("ld+json", ()):
        date = _ld_date(script.text or "")
        if date:
            return date
    times = [str(v).strip() for v in marks.get("time", ()) if str(v).strip()]
    return times[0] if times else None


def _published(soup: BeautifulSoup) -> str | None:
    from bs4 import Tag

    for attrs in (
        {"property": "article:published_time"},
        {"itemprop": "datePublished"},
        {"name": "dc.date.issued"},
        {"name": "date"},
    ):
        meta = soup.find("meta", attrs=dict(attrs))
        if isinstance(meta, Tag) and meta.get("content"):
            return str(meta["content"]).strip()
    for script in soup.find_all("script", type="application/ld+json"):
        found = _ld_date(script.get_text())
        if found:
            return found
    time_tag = soup.find("time", datetime=True)
    return str(time_tag["datetime"]).strip() if isinstance(time_tag, Tag) else None


def _ld_date(raw: str) -> str | None:
    try:
        data: Any = json.loads(raw)
    except ValueError:
        return None
    items = data if isinstance(data, list) else [data]
    items += [g for item in items if isinstance(item, dict) for g in item.get("@graph", [])]
    for item in items:
        if isinstance(item, dict) and item.get("datePublished"):
            return str(item["datePublished"]).strip()
    return None


def _is_hidden(tag: Tag) -> bool:
    if tag.name in ("html", "body"):
        return False
    return (
        tag.has_attr("hidden")
        or tag.get("aria-hidden") == "true"
        or bool(_HIDDEN_STYLE.search(str(tag.get("style", ""))))
    )


def _is_furniture(tag: Tag) -> bool:
    if tag.name in ("body", "html", "main", "article"):
        return False
    if tag.name in _FURNITURE_TAGS or tag.get("role") in _FURNITURE_ROLES:
        return True
    classes: list[str] = list(tag.get("class") or [])
    marks = " ".join([*classes, str(tag.get("id") or "")])
    return bool(marks.strip()) and bool(_FURNITURE_WORDS.search(marks))


def _drop_furniture(root: Tag) -> None:
    for tag in root.find_all(True):
        # Descendants of an element already removed are skipped.
        if not tag.decomposed and _is_furniture(tag) and not _prose_heavy(tag):
            tag.decompose()


def _drop_link_lists(root: Tag) -> None:
    """Teasers: "read also" lines, and list items that are mostly a link, unless a document."""
    for tag in root.find_all(("li", "div", "p")):
        if tag.decomposed or tag.find(("p", "li", "div")):
            continue
        text = inline_text(tag)
        if not text or len(text) > 300:
            continue
        if _is_teaser_line(text, 0.0):
            tag.decompose()
            continue
        if tag.name == "p":
            # A paragraph that is one link is usually a reference the statement makes.
            continue
        anchors = tag.find_all("a", href=True)
        if any(is_attachment(str(a["href"])) for a in anchors):
            continue
        linked = sum(len(inline_text(a)) for a in anchors)
        if linked / len(text) > 0.6:
            tag.decompose()


def _prose_weight(block: Tag) -> float:
    # A div counts when it is a leaf block (text in spans, or lines split by <br>).
    if block.name in ("div", "section") and block.find(_INNER_BLOCKS):
        return 0.0
    text = inline_text(block)
    if len(text) < _MIN_PROSE:
        return 0.0
    linked = sum(len(inline_text(a)) for a in block.find_all("a"))
    if linked / len(text) > 0.5:
        return 0.0
    return len(text) - linked


def _prose_heavy(tag: Tag) -> bool:
    """A furniture-named element that is really a content wrapper."""
    paragraphs = [p for p in tag.find_all("p") if len(inline_text(p)) >= 80]
    if len(paragraphs) < 2:
        return False
    text = sum(len(inline_text(p)) for p in paragraphs)
    linked = sum(len(inline_text(a)) for p in paragraphs for a in p.find_all("a"))
    return text >= 300 and linked / text < 0.2
