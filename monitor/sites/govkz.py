"""gov.kz profile: statements of a ministry (the MFA of Kazakhstan first) via the site's API,
or from the page as a browser renders it.

gov.kz is a single-page app: the HTML pages hold no statement text, the browser reads it
from a GraphQL endpoint and a REST API. We ask the API directly, GraphQL first and REST as
the fallback, and key every statement by (language, id) — the API has no "updated" field,
so edits are found only by comparing content.

When the API is out of reach (browser-issued hash/token headers, IP blocks), the rendered
page is what a user has: what `fetcher = "browser"` renders, or a page saved from a browser
("Save page as") given to `monitor compare`/`monitor extract`. It is read into the same
statement as the API's, keyed the same way (language and id from the URL), so a watch's
history stays one statement whichever way it was read (see `_rendered_statement`).
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

from pydantic import BaseModel, ConfigDict, Field

from monitor.extract import (
    Extraction,
    Link,
    Profile,
    Statement,
    Target,
    classify_unusable,
    date_sort_key,
    drop_selected,
    html_to_paragraphs,
    inline_text,
    is_attachment,
    normalize_text,
    normalize_url,
    split_attachments,
    unique_links,
)
from monitor.fetched import FetchRequest, FetchResult, HeaderCapture
from monitor.sites.generic import is_date_line, parse_date

if TYPE_CHECKING:  # bs4 is imported where a page is parsed (see monitor.extract)
    from bs4 import BeautifulSoup, Tag

_PAGE = re.compile(
    r"/memleket/entities/(?P<entity>[\w-]+)/press/(?P<section>news|article)"
    r"(?:/details/(?P<id>[\w-]+))?/?$"
)
_REST_LIST = "/api/v1/public/content-manager/news"
_GRAPHQL_FIELDS = "id title slug created_date short_description body"
_DEFAULT_SIZE = 20
_LANGUAGES = ("en", "ru", "kk")
_DETAILS = re.compile(
    r"/memleket/entities/(?P<entity>[\w-]+)/press/(?P<section>news|article)/details/(?P<id>[\w-]+)"
)


class GovKzOptions(BaseModel):
    """`options = { size = 20 }`: statements asked for per listing request."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(default=_DEFAULT_SIZE, ge=1, le=1000)


class GovKzProfile(Profile):
    name = "govkz"
    options = GovKzOptions

    @classmethod
    def matches(cls, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname or "").endswith("gov.kz") and bool(_PAGE.search(parts.path))

    def requests(self, target: Target) -> list[FetchRequest]:
        page = _Page(target)
        if target.fetcher == "browser":
            # A browser renders the page itself (its own scripts get past the API's
            # hash/token check); the API answer it would show is read from the markup.
            return [FetchRequest(page.url, headers={"Accept-Language": page.language})]
        headers = {
            "Accept": "application/json",
            "Accept-Language": page.language,
            "Referer": target.url,
        }
        if page.statement_id:
            url = f"{page.base}{_REST_LIST}/{page.statement_id}"
            return [FetchRequest(url, headers=headers)]
        query = (
            f'{{ news(projects:"contains:{page.entity}", _size:{page.size}, _page:1, '
            f'_sort:"created_date:DESC", _lang:"{page.language}") {{ {_GRAPHQL_FIELDS} }} }}'
        )
        graphql = FetchRequest(
            f"{page.base}/graphql",
            method="POST",
            headers={**headers, "Content-Type": "application/json"},
            body=json.dumps({"query": query}).encode(),
        )
        rest = FetchRequest(
            f"{page.base}{_REST_LIST}?sort-by=created_date:DESC&projects=eq:{page.entity}"
            f"&page=1&size={page.size}",
            headers=headers,
        )
        return [graphql, rest]

    def header_capture(self, target: Target) -> HeaderCapture | None:
        # Recent versions of the REST API demand `hash`/`token` headers that the SPA's own
        # bundle computes; a real browser loading the page sends them, and we keep them.
        return HeaderCapture(target.url, _REST_LIST, ("hash", "token"))

    def needs_fresh_headers(self, result: FetchResult) -> bool:
        if result.problem or result.request.method != "GET" or _asks_for_page(result):
            return False
        media = (result.header("content-type") or "").lower()
        return result.status in (401, 403) or (result.status == 200 and "json" not in media)

    def translation_group(self, statement: Statement) -> str | None:
        # One id per statement across en/ru/kk: the detail URL without its language.
        parts = urlsplit(statement.url)
        return f"{parts.netloc}{parts.path}" if "/details/" in parts.path else None

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        page = _Page(target)
        rendered = _asks_for_page(result)
        unusable = _unusable(result, page, rendered)
        if unusable is not None:
            return unusable
        # The API's JSON first, whatever was asked for: it is the statement as stored.
        if rendered and not _looks_like_json(result):
            return _rendered(result, page)
        return _from_api(result, page)


def _unusable(result: FetchResult, page: _Page, rendered: bool) -> Extraction | None:
    """Why this answer holds no statement (gone, refused, not content), or None."""
    if page.statement_id and result.status in (404, 410) and not result.problem:
        return Extraction(gone=True, problem=f"HTTP {result.status}")
    if result.status in (401, 403) and not result.problem and not rendered:
        return Extraction(
            problem=f"API refused the request (HTTP {result.status}); gov.kz may demand "
            "browser-issued hash/token headers or block this IP"
        )
    reason = classify_unusable(result)
    if reason and rendered and page.statement_id and _NOT_FOUND.search(reason):
        # The app's own "page not found" view: its API answered 404 for the statement.
        return Extraction(gone=True, problem=f"page: {reason}")
    if reason:
        return Extraction(problem=f"{'page' if rendered else 'API'}: {reason}")
    return None


def _from_api(result: FetchResult, page: _Page) -> Extraction:
    """The statements in the API's JSON answer (one statement, or a page of a listing)."""
    try:
        data = json.loads(result.text())
    except ValueError:
        kind = result.header("content-type") or "unknown type"
        return Extraction(problem=f"API answered something that is not JSON ({kind})")
    items, problem = _items(data, single=bool(page.statement_id))
    if problem:
        return Extraction(problem=problem)
    read = [_statement(item, page) for item in items]
    statements = [s for s in read if s is not None]
    if not statements:
        return Extraction(problem="API answered an empty list of statements")
    if page.statement_id:
        return Extraction(statements=statements)
    # A full page means older statements may have been pushed off it; a short page
    # holds everything the ministry has, so anything missing was removed.
    dates = [s.published for s in statements if s.published]
    window = min(dates, key=date_sort_key) if len(items) >= page.size and dates else ""
    return Extraction(statements=statements, window_start=window, is_listing=True)


class _Page:
    def __init__(self, target: Target) -> None:
        parts = urlsplit(target.url)
        match = _PAGE.search(parts.path)
        if not match:
            raise ValueError(f"not a gov.kz press page: {target.url}")
        query = parse_qs(parts.query)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.entity = match.group("entity")
        self.section = match.group("section")
        self.statement_id = match.group("id")
        lang = target.language or (query.get("lang") or ["ru"])[0]
        self.language = lang if lang in _LANGUAGES else "ru"
        self.size = GovKzOptions.model_validate(target.options).size
        self.drop = target.drop_selectors

    @property
    def url(self) -> str:
        """The page's own address, as the site links to it."""
        path = f"/memleket/entities/{self.entity}/press/{self.section}"
        if self.statement_id:
            path += f"/details/{self.statement_id}"
        return f"{self.base}{path}?lang={self.language}"

    def statement_url(self, item_id: object, entity: str = "", section: str = "") -> str:
        return (
            f"{self.base}/memleket/entities/{entity or self.entity}/press/"
            f"{section or self.section}/details/{item_id}?lang={self.language}"
        )


def _items(data: Any, single: bool) -> tuple[list[dict[str, Any]], str | None]:
    """Statement items from any of the answer shapes gov.kz has used."""
    if isinstance(data, dict) and data.get("errors"):
        # A list of {"message": …} by the GraphQL spec; whatever else a server sends
        # ("boom", {"a": 1}) is the error all the same.
        errors = data["errors"]
        first = errors[0] if isinstance(errors, list) else errors
        message = first.get("message", first) if isinstance(first, dict) else first
        return [], f"GraphQL error: {str(message)[:200]}"
    if isinstance(data, dict) and isinstance(data.get("data"), dict):
        data = data["data"].get("news")
    if isinstance(data, dict) and isinstance(data.get("content"), list):
        data = data["content"]
    if single and isinstance(data, dict):
        data = [data]
    if not isinstance(data, list):
        return [], "API answer has no list of statements"
    return [item for item in data if isinstance(item, dict)], None


def _statement(item: dict[str, Any], page: _Page) -> Statement | None:
    item_id = item.get("id")
    title = normalize_text(str(item.get("title") or item.get("name") or ""))
    if item_id is None or not title:
        return None
    body = str(item.get("body") or "")
    paragraphs, links = html_to_paragraphs(body, base_url=page.base, drop=page.drop, images=True)
    links, attachments = split_attachments(links)
    if not paragraphs and item.get("short_description"):
        paragraphs = [normalize_text(str(item["short_description"]))]
    published = item.get("created_date") or item.get("createdDate") or item.get("publishedDate")
    return Statement(
        key=f"{page.language}/{item_id}",
        url=page.statement_url(item_id),
        title=title,
        paragraphs=tuple(paragraphs),
        published=str(published) if published else None,
        language=page.language,
        links=tuple(links),
        attachments=tuple(attachments),
    )


# --- the page as a browser renders it ---------------------------------------------------------

# Never text a reader sees as the statement's.
_NEVER_TEXT = (
    *("script", "style", "noscript", "template", "svg", "button", "iframe", "select", "input"),
    *("textarea", "canvas", "link", "meta"),
)
# The app's furniture around a statement: by tag, and by words in class or id names (whole
# words between -, _ or spaces, as BEM writes them: `news-detail__share`, `card-news-list`).
_FURNITURE_TAGS = frozenset(("nav", "header", "footer", "aside", "form", "dialog", "menu"))
_FURNITURE_WORDS = re.compile(
    r"(?:^|[\s_-])(?:share|sharing|social|breadcrumbs?|related|other|similar|recommend\w*"
    r"|popular|latest|aside|sidebar|tags?|views?|counter|banners?|carousel|slider|swiper"
    r"|pagination|pager|card-news-list|comments?|subscribe|rating|toolbar|modal|popup)"
    r"(?:$|[\s_-])",
    re.I,
)
# Blocks whose text a reader takes as prose; a div or section counts when it holds text
# itself rather than other blocks.
_PROSE: tuple[str, ...] = ("p", "li", "td", "th", "dd", "blockquote", "pre", "figcaption")
_PROSE += ("div", "section", "h2", "h3", "h4", "h5", "h6")
_INNER = ("p", "li", "td", "th", "dd", "blockquote", "pre", "div", "section", "table", "ul")
# The body's container holds at least this share of the prose after the title.
_BODY_SHARE = 0.8
_NOT_FOUND = re.compile(r"soft 404|not found|не найдена|табылмады", re.I)
_TIME_ONLY = re.compile(r"^\d{1,2}:\d{2}$")
_COUNT_ONLY = re.compile(r"^[\d\s.,]+$")


def _asks_for_page(result: FetchResult) -> bool:
    """Whether the request was for one of the site's pages (not its API)."""
    return bool(_PAGE.search(urlsplit(result.request.url).path))


def _looks_like_json(result: FetchResult) -> bool:
    media = (result.header("content-type") or "").lower()
    return "json" in media or result.body.lstrip()[:1] in (b"{", b"[")


def _rendered(result: FetchResult, page: _Page) -> Extraction:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(result.text(), "lxml")
    drop_selected(soup, page.drop)
    last_page = _last_page(soup)  # read before buttons go
    for tag in soup.find_all(_NEVER_TEXT):
        tag.decompose()
    if page.statement_id:
        return _rendered_statement(soup, page)
    return _rendered_listing(soup, page, last_page)


def _rendered_statement(soup: BeautifulSoup, page: _Page) -> Extraction:
    """The statement of a rendered details page: the same one the API gives.

    The title is the page's <h1> (the one inside <article>, which scrapers wait for). The
    body is found by its prose, not by a class name (the app's are not documented and may
    change): of the text after the title, the smallest element holding most of it, which
    is the element the app put the API's `body` into. Its paragraphs and links are then
    read exactly as the API's `body` is, so both ways give the same statement.
    """
    from bs4 import Tag

    heading = soup.select_one("article h1") or soup.select_one("main h1, [role=main] h1")
    heading = heading or soup.find("h1")
    if not isinstance(heading, Tag) or not inline_text(heading):
        return Extraction(problem=_why_no_statement(soup))
    title = inline_text(heading)
    scopes = [heading.find_parent("article"), heading.find_parent("main")]
    scopes += [heading.find_parent(attrs={"role": "main"}), soup.body, soup]
    for scope in scopes:
        if not isinstance(scope, Tag):
            continue
        _drop_furniture(scope, heading)
        body = _body_elements(scope, heading)
        if body:
            break
    else:
        return Extraction(problem="the page shows a title but no statement text after it")
    paragraphs: list[str] = []
    links: list[Link] = []
    inside: set[int] = set()
    for element in body:
        inside.update(id(tag) for tag in element.find_all(True))
        inside.add(id(element))
    published = _shown_date(scope, inside)
    for element in body:
        texts, found = html_to_paragraphs(element, base_url=page.base, images=True)
        if len(body) > 1:  # read from beside the title: dates and counters stand there
            texts = [t for t in texts if not is_date_line(t) and not _COUNT_ONLY.match(t)]
        paragraphs += texts
        links += found
    links, attachments = split_attachments(unique_links(links))
    # Documents listed beside the body (a files block) belong to the statement too.
    for anchor in scope.find_all("a", href=True):
        href = str(anchor["href"])
        if id(anchor) not in inside and is_attachment(href):
            attachments.append(Link(normalize_url(href, page.base), inline_text(anchor)))
    if not paragraphs:
        return Extraction(problem="the page shows a title but no statement text after it")
    statement = Statement(
        key=f"{page.language}/{page.statement_id}",
        url=page.statement_url(page.statement_id),
        title=title,
        paragraphs=tuple(paragraphs),
        published=published,
        language=page.language,
        links=tuple(links),
        attachments=tuple(unique_links(attachments)),
    )
    return Extraction(statements=[statement])


def _body_elements(scope: Tag, heading: Tag) -> list[Tag]:
    """The element(s) holding the prose that follows the heading inside `scope`."""
    order = {id(tag): n for n, tag in enumerate(scope.find_all(True))}
    if id(heading) not in order:
        return []
    after = order[id(heading)] + len(heading.find_all(True))
    weights, best = _prose_weights(scope, order, after)
    if best is None:
        return []
    container = _prose_container(scope, best, weights)
    if container is None:
        return []
    if heading not in container.descendants:
        return [container]
    # The prose shares a parent with the title: the parent's children after the title's
    # branch that hold prose.
    return [
        child
        for child in container.find_all(True, recursive=False)
        if order[id(child)] > after and weights.get(id(child))
    ]


def _prose_weights(
    scope: Tag, order: dict[int, int], after: int
) -> tuple[dict[int, float], Tag | None]:
    """How much prose each element of `scope` holds after position `after` (by id), and
    the heaviest block of it."""
    weights: dict[int, float] = {}
    best: tuple[float, Tag] | None = None
    for block in scope.find_all(_PROSE):
        if order[id(block)] <= after or block.find(_INNER):
            continue
        weight = _prose_weight(block)
        if not weight:
            continue
        if best is None or weight > best[0]:
            best = (weight, block)
        for holder in (block, *block.parents):
            weights[id(holder)] = weights.get(id(holder), 0.0) + weight
            if holder is scope:
                break
    return weights, None if best is None else best[1]


def _prose_container(scope: Tag, best: Tag, weights: dict[int, float]) -> Tag | None:
    """The nearest element around the heaviest block that holds most of the prose."""
    total = weights[id(scope)]
    container = best if best.name in ("div", "section") else best.parent
    while container is not None and container is not scope:
        if weights.get(id(container), 0.0) >= _BODY_SHARE * total:
            break
        container = container.parent
    return container


def _prose_weight(block: Tag) -> float:
    text = inline_text(block)
    if len(text) < 2 or is_date_line(text) or _COUNT_ONLY.match(text):
        return 0.0
    linked = sum(len(inline_text(a)) for a in block.find_all("a"))
    if linked / len(text) > 0.5:
        return 0.0  # a link list (or a lone link: it weighs nothing, but is kept in place)
    return float(len(text) - linked)


def _drop_furniture(scope: Tag, heading: Tag) -> None:
    for tag in scope.find_all(True):
        if tag.decomposed or heading in tag.descendants:
            continue
        marks = " ".join([*(tag.get("class") or []), str(tag.get("id") or "")])
        if tag.name in _FURNITURE_TAGS or (marks.strip() and _FURNITURE_WORDS.search(marks)):
            tag.decompose()


def _shown_date(scope: Tag, body: set[int]) -> str | None:
    """The date the page shows for the statement: a machine-readable <time>, else the first
    line beside the body that is only a date (with the time when it stands next to it)."""
    from bs4 import NavigableString

    for time_tag in scope.find_all("time", datetime=True):
        if id(time_tag) not in body:
            return str(time_tag["datetime"]).strip()
    found: str | None = None
    for node in scope.find_all(string=True):
        if type(node) is not NavigableString or any(id(p) in body for p in node.parents):
            continue
        text = normalize_text(str(node))
        if not text:
            continue
        if found:
            with_time = _TIME_ONLY.match(text) and "T" not in found
            return f"{found}T{_hh_mm(text)}" if with_time else found
        if is_date_line(text):
            found = parse_date(text)
    return found


def _hh_mm(text: str) -> str:
    hours, minutes = text.split(":")
    return f"{int(hours):02d}:{minutes}"


def _last_page(soup: BeautifulSoup) -> bool | None:
    """True on the last page of a paged listing, False when a next page exists, None when
    the page has no pager to tell."""
    button = soup.find(True, attrs={"aria-label": re.compile(r"^next page$", re.I)})
    if button is None:
        return None
    return button.has_attr("disabled") or button.get("aria-disabled") == "true"


def _rendered_listing(soup: BeautifulSoup, page: _Page, last_page: bool | None) -> Extraction:
    """The statements a rendered listing shows: one per card (`div.card-news-list__item`,
    or any link to a statement's page where the app draws no cards)."""
    statements: dict[str, Statement] = {}
    for card in _listing_cards(soup):
        statement = _card_statement(card, page)
        if statement is not None:
            statements.setdefault(statement.key, statement)
    if not statements:
        return Extraction(problem=_why_no_statement(soup))
    dates = [s.published for s in statements.values() if s.published]
    # Only the last page of the pager holds the oldest statements: there, anything missing
    # was removed; elsewhere only statements newer than the oldest shown are expected.
    window = "" if last_page else (min(dates, key=date_sort_key) if dates else None)
    return Extraction(statements=list(statements.values()), window_start=window, is_listing=True)


def _listing_cards(soup: BeautifulSoup) -> list[Tag]:
    from bs4 import Tag

    cards = [card for card in soup.select("div.card-news-list__item") if isinstance(card, Tag)]
    if not cards:
        main = soup.find("main") or soup.body or soup
        cards = [a for a in main.find_all("a", href=_DETAILS) if isinstance(a, Tag)]
    return cards


def _card_statement(card: Tag, page: _Page) -> Statement | None:
    """The statement one card of a rendered listing links to, or None (no link, no title)."""
    from bs4 import Tag

    anchor = card if card.name == "a" else card.find("a", href=_DETAILS)
    if not isinstance(anchor, Tag):
        return None
    match = _DETAILS.search(urlsplit(str(anchor["href"])).path)
    if match is None:
        return None
    shown = card.select_one(".inner-html")
    title = inline_text(shown) if isinstance(shown, Tag) else ""
    title = title or normalize_text(str(anchor.get("title") or "")) or inline_text(anchor)
    if not title:
        return None
    lines = html_to_paragraphs(card)[0] if card is not anchor else []
    dates = [parse_date(line) for line in lines if is_date_line(line)]
    # What else the card says (a lead) is its text; the title and date are not.
    lead = [
        line
        for line in lines
        if line != title and not is_date_line(line) and not _COUNT_ONLY.match(line)
    ]
    key = f"{page.language}/{match['id']}"
    return Statement(
        key=key,
        url=page.statement_url(match["id"], match["entity"], match["section"]),
        title=title,
        paragraphs=tuple(lead),
        published=next((d for d in dates if d), None),
        language=page.language,
    )


def _why_no_statement(soup: BeautifulSoup) -> str:
    text = normalize_text(soup.get_text(" "))
    if len(text) < 300:
        return (
            "the page is the app's empty shell (gov.kz renders statements with JavaScript): "
            'use the API, fetcher = "browser", or a page saved after it rendered'
        )
    return "no statement on the rendered page (no title heading and no statement cards)"
