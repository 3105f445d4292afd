"""Page furniture: the fixed rules for what is never a statement's content.

Counters, clocks, weather and exchange-rate widgets, carousels, share buttons and counts,
cookie notices, "related" / "most read" / "latest news" lists change on their own between two
visits; kept, each would be an alert nobody wants. The rules hold wherever the furniture
sits, in a sidebar or inside the <article>, and come in two kinds:

- elements, by tag, ARIA role and whole words of their class or id names (`is_furniture`),
  unless the element is itself prose-heavy (a content wrapper with an unlucky class name);
- lines of text, by what they say (`is_noise_line`): "Views: 4 116", "Просмотров: 12",
  "Қаралым саны: 7", a lone number, "Share 15", "+5 °C", "USD 498.12 · EUR 522.40", a cookie
  notice. Dates and times alone on a line are the generic profile's (it keeps the first as
  the publication date).

Both the trafilatura path (lxml elements) and the site profiles' BeautifulSoup path use the
word lists here; the element helpers below are for lxml.
"""

from __future__ import annotations

import re
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from monitor.extract import normalize_text

if TYPE_CHECKING:
    from lxml.html import HtmlElement

# Furniture by tag or ARIA role; kept when prose-heavy (ASP.NET pages wrap everything in
# one <form>, some themes put the article in a <header>-named wrapper).
FURNITURE_TAGS = frozenset(("nav", "header", "footer", "aside", "form", "dialog", "menu"))
FURNITURE_ROLES = frozenset(
    ("navigation", "banner", "contentinfo", "complementary", "search", "dialog", "alertdialog")
)
# Widgets that change on their own, as whole words of class or id names (between -, _ or
# spaces). Removed from the page before the main content is looked for.
_WIDGETS = (
    r"share|sharing|social|likes|cookies?|consent|gdpr|carousel|slider|slideshow|swiper|slick"
    r"|views?-?count(?:er)?|viewcount|counters?|hit-?count|hits|clock|weather|ticker|currency"
    r"|rates"
    r"|related|popular|most-read|most-viewed|mostread|read-also|see-also|latest-news"
)
WIDGET_WORDS = re.compile(rf"(?:^|[\s_-])(?:{_WIDGETS})(?:$|[\s_-])", re.I)
# Everything that is not the statement, for the links of the content and the own extractor.
FURNITURE_WORDS = re.compile(
    rf"(?:^|[\s_-])(?:{_WIDGETS}|breadcrumbs?|banners?|teasers?|menu|sidebar|navbar|nav"
    r"|subscribe|newsletter|advert|ads|promo|widget|print|pagination|pager|comments?|rating"
    r"|tags|toolbar|modal|popup|lang-switch|search|login|topbar|skip-link|visually-hidden"
    r"|sr-only)(?:$|[\s_-])",
    re.I,
)

# --- lines ----------------------------------------------------------------------------------

_COUNTER_WORDS = (
    r"views?|viewed|reads?|hits|visits|visitors|просмотр(?:ов|ы|а)?|прочитано|прочтений"
    r"|прочитали|посещений|қаралым(?:\s*саны)?|қаралды|қаралған|көрілім(?:дер)?(?:\s*саны)?"
    r"|оқылды|浏览(?:次数|量)?|阅读(?:次数|量)?|点击(?:数|量)?"
)
_NUMBER = r"\d[\d\s.,\u00a0\u202fkKмтыс]*"
# "Views: 4 116", "4 116 views", "👁 4116", "Просмотров 12".
COUNTER = re.compile(
    rf"(?:(?:{_COUNTER_WORDS})\s*[:：]?\s*{_NUMBER}|{_NUMBER}\s*(?:{_COUNTER_WORDS})"
    rf"|[👁👀]\uFE0F?\s*{_NUMBER})",
    re.I,
)
_SHARE = re.compile(
    r"^(?:(?:share|shares|shared|поделиться|репост(?:ы|ов)?|бөлісу|分享|like|likes|нравится"
    r"|comments?|комментари(?:и|ев|й))\s*[:：]?\s*\d[\d\s.,kK]*|\d[\d\s.,kK]*\s*(?:shares|likes"
    r"|comments|репост\w*|комментари\w*))$",
    re.I,
)
_LONE_NUMBER = re.compile(r"^[\d\s.,:/|•·+\-]{1,16}$")
_TEMPERATURE = re.compile(r"^[^\d]{0,30}[+\-−]?\d{1,2}\s*°\s*[CcFС]?[^\d]{0,30}$")
_RATES = re.compile(
    r"^(?:(?:USD|EUR|RUB|CNY|GBP|KZT|JPY|TRY|\$|€|₽|¥|£)\s*[:=]?\s*\d+(?:[.,]\d+)?\s*[·•|,;/]?\s*)+$",
    re.I,
)
_COOKIE = re.compile(r"cookie|куки|кукис", re.I)
# What a cookie notice says to the reader (not what a statement about cookie law says).
_CONSENT = re.compile(
    r"\b(?:we use|(?:site|website|portal) uses|use of cookies|accept(?: all)? cookies"
    r"|you agree|you consent|by continuing|используем|использует|соглашаетесь|принять"
    r"|пайдаланамыз|пайдаланады|келісесіз)",
    re.I,
)
# Headings of teaser lists; the lines of links after one belong to it.
TEASER_HEADING = re.compile(
    r"^(?:read also|also read|read more|see also|related(?: news| articles| posts| stories"
    r"| content| reading)?|more (?:news|stories|from)|most (?:read|popular|viewed)|popular"
    r"|trending|latest(?: news)?|recent (?:news|posts)|you may also like|recommended"
    r"|читайте также|читайте еще|смотрите также|см\. также|по теме|похожие (?:новости"
    r"|материалы|статьи)|другие новости|последние новости|самое (?:читаемое|популярное)"
    r"|популярное|рекомендуем|сондай-ақ оқыңыз|оқи отырыңыз|соңғы жаңалықтар|көп оқылған"
    r"|ұқсас жаңалықтар|басқа жаңалықтар|相关(?:新闻|阅读|文章)|热门|最新(?:新闻)?)\b\s*:?",
    re.I,
)


# Widget lines are short; a longer line is prose, even when it names a number of views.
_WIDGET_LINE = 120


def strip_counters(text: str) -> str:
    """A short line without its view counters ("20.11.2026 · Views: 34" -> "20.11.2026 ·")."""
    if len(text) > _WIDGET_LINE or not COUNTER.search(text):
        return text
    return normalize_text(COUNTER.sub(" ", text))


def is_noise_line(text: str, in_table: bool = False) -> bool:
    """Whether a whole line is a widget's: a counter, a share count, a lone number (not in
    a table cell, where it is data), the weather, exchange rates or a cookie notice."""
    if len(text) > _WIDGET_LINE:
        return len(text) <= 400 and bool(_COOKIE.search(text)) and bool(_CONSENT.search(text))
    rest = strip_counters(text)
    if rest != text and not any(ch.isalpha() for ch in rest):
        return True
    if not in_table and _LONE_NUMBER.match(text) and any(ch.isdigit() for ch in text):
        return True
    if _SHARE.match(text) or _RATES.match(text):
        return True
    if len(text) <= 60 and _TEMPERATURE.match(text):
        return True
    return len(text) <= 400 and bool(_COOKIE.search(text)) and bool(_CONSENT.search(text))


# --- elements (lxml) ------------------------------------------------------------------------


def _marks(element: HtmlElement) -> str:
    return f"{element.get('class') or ''} {element.get('id') or ''}".strip()


# The word lists' patterns without re.I, for ASCII names lower-cased first: the same matches
# (for ASCII text re.I folds only A-Z, as str.lower does), in half the time.
_WIDGET_WORDS_LOWER = re.compile(WIDGET_WORDS.pattern)
_FURNITURE_WORDS_LOWER = re.compile(FURNITURE_WORDS.pattern)


def _has_words(marks: str, lower: re.Pattern[str], any_case: re.Pattern[str]) -> bool:
    if marks.isascii():
        return bool(lower.search(marks.lower()))
    return bool(any_case.search(marks))


# Pages repeat their class names many times over: each is matched once.
@lru_cache(maxsize=8192)
def _names_widget(marks: str) -> bool:
    return _has_words(marks, _WIDGET_WORDS_LOWER, WIDGET_WORDS)


@lru_cache(maxsize=8192)
def _names_furniture(marks: str) -> bool:
    return _has_words(marks, _FURNITURE_WORDS_LOWER, FURNITURE_WORDS)


def is_furniture(element: HtmlElement) -> bool:
    """Furniture by tag, ARIA role or class/id words (the content elements themselves never)."""
    tag = element.tag
    if tag in ("body", "html", "main", "article"):
        return False
    if tag in FURNITURE_TAGS or element.get("role") in FURNITURE_ROLES:
        return True
    marks = _marks(element)
    return bool(marks) and _names_furniture(marks)


def prose_heavy(element: HtmlElement) -> bool:
    """A furniture-named element that is really a content wrapper: two or more paragraphs
    of 80+ characters, 300+ in all, less than a fifth of it link text."""
    lengths = []
    linked = 0
    for paragraph in element.iter("p"):
        text = normalize_text(paragraph.text_content())
        if len(text) >= 80:
            lengths.append(len(text))
            linked += sum(len(normalize_text(a.text_content())) for a in paragraph.iter("a"))
    total = sum(lengths)
    return len(lengths) >= 2 and total >= 300 and linked / total < 0.2


@cache
def _class_and_id_xpath() -> Any:
    """Every class and id attribute's value, in document order, each knowing its element."""
    from lxml import etree

    return etree.XPath("//@class | //@id", smart_strings=True)


# Whether a class or id value names a widget, by value (as `_names_widget`). A dict, not an
# lru_cache: the values are lxml's strings that hold their element (and so the page); what
# is kept here is a plain copy.
_WIDGET_VALUES: dict[str, bool] = {}


def _value_names_widget(value: str) -> bool:
    known = _WIDGET_VALUES.get(value)
    if known is None:
        if len(_WIDGET_VALUES) >= 8192:
            _WIDGET_VALUES.clear()
        known = _WIDGET_VALUES[str(value)] = _has_words(value, _WIDGET_WORDS_LOWER, WIDGET_WORDS)
    return known


def drop_widgets(tree: HtmlElement) -> None:
    """Remove the self-changing widgets (counters, carousels, share and cookie blocks,
    related lists, …) by their class or id words, wherever they are."""
    # No widget word spans the space `_marks` joins class and id with, so an element's marks
    # name a widget exactly when its class or its id does: the values are matched, and only
    # the elements of those that match are looked at (an element for each of hundreds of
    # classed elements cost a tenth of reading a page). Document order, as before.
    doomed: list[HtmlElement] = []
    for value in _class_and_id_xpath()(tree):
        if not _value_names_widget(value):
            continue
        element = value.getparent()
        if (
            element is not None
            and element.tag not in ("html", "body", "main", "article")
            and (not doomed or doomed[-1] is not element)
        ):
            doomed.append(element)
    removed: set[HtmlElement] = set()
    for element in doomed:
        if any(a in removed for a in element.iterancestors()) or prose_heavy(element):
            continue
        removed.add(element)
        _remove(element)


def _remove(element: HtmlElement) -> None:
    """Remove an element but keep its tail text (the text after it belongs to its parent)."""
    parent = element.getparent()
    if parent is None:
        return
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


_HIDDEN_STYLE = re.compile(r"display\s*:\s*none|visibility\s*:\s*hidden", re.I)


def is_hidden(element: HtmlElement) -> bool:
    """Whether an element is not shown to the reader (hidden, aria-hidden, display: none)."""
    return (
        element.get("hidden") is not None
        or element.get("aria-hidden") == "true"
        or bool(_HIDDEN_STYLE.search(element.get("style") or ""))
    )


def in_furniture(element: HtmlElement, region: HtmlElement) -> bool:
    """Whether an element of the content region sits in furniture inside it."""
    for ancestor in element.iterancestors():
        if ancestor is region:
            return False
        if is_furniture(ancestor) and not prose_heavy(ancestor):
            return True
    return False


_BLOCKS = frozenset(("li", "div", "p", "dd", "dt", "td", "section"))
# A teaser is at most 300 characters; its markup may hold as much again in white space.
_TEASER_RAW = 1500


def in_teaser_list(anchor: HtmlElement) -> bool:
    """Whether a link is a teaser: on a "Read also: …" line, or one of a list of teasers (its
    block is mostly this link, names a page in four words or more, and a sibling block is
    mostly a link too). A lone button-like link ("Download", "Полный текст") is content."""
    block = next((a for a in anchor.iterancestors() if a.tag in _BLOCKS), None)
    if block is None:
        return False
    raw = block.text_content()
    if len(raw) > _TEASER_RAW:  # the content itself, not a teaser: no need to read it
        return False
    text = normalize_text(raw)
    heading = TEASER_HEADING.match(text)
    if heading and len(text) <= 300 and (":" in heading.group(0) or _mostly_link(block)):
        return True
    if len(normalize_text(anchor.text_content()).split()) < 4:
        return False
    if block.tag == "p" or not _mostly_link(block):
        return False
    parent = block.getparent()
    if parent is None:
        return False
    return any(s is not block and s.tag == block.tag and _mostly_link(s) for s in parent)


def _mostly_link(block: HtmlElement) -> bool:
    raw = block.text_content()
    if len(raw) > _TEASER_RAW:
        return False
    text = normalize_text(raw)
    if not text or len(text) > 300:
        return False
    linked = sum(len(normalize_text(a.text_content())) for a in block.iter("a"))
    return linked / len(text) > 0.6
