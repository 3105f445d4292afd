"""Feed profile: an RSS 2.0, RSS 1.0 (RDF) or Atom feed read as a listing of statements.

Ministries that publish a feed (mid.ru's `/ru/rss.php`, state.gov's WordPress
`/rss-feed/press-releases/feed/`) give in one small, stable document what their HTML
listings wrap in changing markup: an id, a link, a title, a date and often the full text of
every recent statement. The feed is parsed with feedparser, which gets the raw bytes and
the response's Content-Type so that it applies the XML rules for charsets itself (HTTP
charset, then the XML declaration, then a byte-order mark; a cp1251 or KOI8-R feed served
as bare `text/xml` still decodes right).

One statement per entry:

- key: the entry's id (`<guid>`, Atom `<id>`, RDF `rdf:about`) as written — it is the
  publisher's stable, opaque name for the entry and survives an edited title or a moved
  URL; else the entry's normalised link; else, as a last resort, its title.
- url: the normalised link (tracking parameters and fragment removed).
- published: `published`, else `updated`, as ISO 8601 in UTC.
- paragraphs: the entry's `content` (the full text) rather than its `summary` (often a
  teaser cut by the CMS), HTML split into paragraphs with the watch's `ignore_selectors`
  honoured.
- links and attachments: those of the text, plus enclosures as attachments.

A response that is not a feed — an HTML error or challenge page, a feed cut off before its
closing tag, a document feedparser cannot read, a feed without entries — is a *problem*,
never an empty listing: read as a listing it would say every statement was removed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import PurePosixPath
from typing import Any
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from monitor.extract import (
    Extraction,
    Link,
    Profile,
    Statement,
    Target,
    classify_unusable,
    html_to_paragraphs,
    inline_text,
    looks_like_feed,
    normalize_text,
    normalize_url,
    split_attachments,
    unique_links,
)
from monitor.fetched import FetchRequest, FetchResult

ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.8"
# How many entries a full feed holds, unless the watch says otherwise (`options.size`):
# WordPress (state.gov) ships 10 by default.
DEFAULT_SIZE = 10
# The root element's end tag, possibly followed by comments and white space. Only bytes
# that are ASCII in every encoding a feed may use are matched; NULs are dropped first so
# that UTF-16 feeds are matched too.
_CLOSED = re.compile(rb"</(?:[\w.-]+:)?(?:rss|feed|RDF)\s*>(?:\s|<!--.*?-->)*\Z", re.S)
# RFC 5005 (feed paging and archiving): `<fh:complete/>` says the feed holds every entry.
_COMPLETE = re.compile(rb"<(?:[\w.-]+:)?complete\s*/>|<(?:[\w.-]+:)?complete\s*>\s*</")
_HISTORY_NS = b"http://purl.org/syndication/history/1.0"


class FeedOptions(BaseModel):
    """`options = { size = 10 }`: the entries the feed holds when it is full."""

    model_config = ConfigDict(extra="forbid")
    size: int = Field(default=DEFAULT_SIZE, ge=1)


class FeedProfile(Profile):
    name = "feed"
    options = FeedOptions

    @classmethod
    def matches(cls, url: str) -> bool:
        # After the host profiles in `PROFILES`, so it is only the choice when none of them
        # claims the URL; they decline feed URLs (`Profile.matches`).
        return looks_like_feed(url)

    def statement_profile(self) -> str | None:
        # A feed links to the site's own pages: their host's profile reads them.
        return None

    def requests(self, target: Target) -> list[FetchRequest]:
        # Some servers (Bitrix, WordPress behind a CDN) pick the representation by Accept;
        # a browser-like `text/html` first could get the HTML page instead of the feed.
        return [FetchRequest(target.url, headers={"Accept": ACCEPT})]

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        reason = classify_unusable(result)
        if reason:
            return Extraction(problem=reason)
        import feedparser  # here, not at start-up: only a feed's new answer needs it

        parsed = feedparser.parse(
            result.body,
            response_headers={
                "content-type": result.header("content-type") or "application/xml",
                # The base against which feedparser resolves relative links in entries.
                "content-location": result.url,
            },
        )
        problem = _unreadable(parsed, result)
        if problem:
            return Extraction(problem=problem)
        statements: list[Statement] = []
        seen: set[str] = set()
        for entry in parsed.entries:
            statement = _statement(entry, parsed.feed, result.url, target)
            # A feed that lists an entry twice (a CMS bug) must not give two versions of one
            # key in one check.
            if statement.key not in seen:
                seen.add(statement.key)
                statements.append(statement)
        return Extraction(
            statements=statements,
            window_start=_window_start(parsed, result, statements, _size(target)),
            is_listing=True,
        )


def _unreadable(parsed: Any, result: FetchResult) -> str | None:
    """Why a parsed response is not a feed we can trust as a listing, or None."""
    media = result.header("content-type") or "no content type"
    if not parsed.get("version"):
        detail = parsed.get("bozo_exception")
        because = f": {detail}" if detail else ""
        return f"not an RSS or Atom feed ({media}){because}"
    if not _CLOSED.search(result.body[-4096:].replace(b"\x00", b"")):
        # feedparser's lenient parser returns the entries before the cut; taken as the
        # listing, everything after it would read as removed.
        return "truncated feed: the document ends before its closing tag"
    if not parsed.entries:
        if parsed.get("bozo"):
            return f"unreadable feed ({media}): {parsed.get('bozo_exception')}"
        return "the feed has no entries (empty extraction)"
    return None


def _statement(entry: Any, feed: Any, base: str, target: Target) -> Statement:
    link = normalize_url(entry.get("link") or "", base) if entry.get("link") else ""
    title = _title(entry)
    paragraphs, links, attachments = _body(entry, base, target)
    for enclosure in entry.get("enclosures") or ():
        href = enclosure.get("href")
        if href:
            url = normalize_url(href, base)
            name = PurePosixPath(urlsplit(url).path).name or url
            attachments.append(Link(url, normalize_text(enclosure.get("title") or name)))
    key = normalize_text(entry.get("id") or "") or link or f"title:{title}"
    return Statement(
        key=key,
        url=link or target.url,
        title=title,
        paragraphs=tuple(paragraphs),
        published=_date(entry),
        language=target.language or _language(entry, feed),
        links=tuple(unique_links(links)),
        attachments=tuple(unique_links(attachments)),
    )


def _title(entry: Any) -> str:
    detail = entry.get("title_detail") or {}
    value = entry.get("title") or ""
    if "html" in (detail.get("type") or ""):
        from bs4 import BeautifulSoup  # here, not at start-up (see monitor.extract)

        return inline_text(BeautifulSoup(value, "lxml"))
    return normalize_text(value)


def _body(entry: Any, base: str, target: Target) -> tuple[list[str], list[Link], list[Link]]:
    """Paragraphs, links and attachments of the entry's text: full content over summary."""
    details = list(entry.get("content") or ())
    # Atom allows several <content> elements; the HTML one is the text a reader sees.
    details.sort(key=lambda d: "html" not in (d.get("type") or ""))
    if not details and entry.get("summary"):
        details = [entry.get("summary_detail") or {"type": "text/html", "value": entry.summary}]
    if not details:
        return [], [], []
    detail = details[0]
    value = detail.get("value") or ""
    if "html" not in (detail.get("type") or "text/html"):
        # Plain text: blank lines separate paragraphs.
        paragraphs = [normalize_text(part) for part in re.split(r"\n\s*\n", value)]
        return [p for p in paragraphs if p], [], []
    paragraphs, found = html_to_paragraphs(value, base, target.drop_selectors)
    links, attachments = split_attachments(found)
    return paragraphs, links, attachments


def _date(entry: Any) -> str | None:
    # feedparser gives both in UTC; the publication date is preferred because `updated`
    # moves whenever the CMS re-saves an entry.
    for name in ("published_parsed", "updated_parsed"):
        value = entry.get(name)
        if value:
            year, month, day, hour, minute, second = value[:6]
            return datetime(year, month, day, hour, minute, second, tzinfo=UTC).isoformat()
    return None


def _language(entry: Any, feed: Any) -> str | None:
    """The entry's own language (Atom `xml:lang`), else the feed's (`<language>`)."""
    details = [*(entry.get("content") or ())[:1], entry.get("title_detail") or {}]
    declared = [d["language"] for d in details if d.get("language")]
    value = declared[0] if declared else feed.get("language")
    # "ru-RU" and "en-US" are "ru" and "en", as the other profiles write them.
    return (value.split("-")[0].strip().lower() or None) if value else None


def _size(target: Target) -> int:
    # Checked when a config file is read; a watch added elsewhere with a bad size falls back.
    try:
        return FeedOptions.model_validate(target.options).size
    except ValidationError:
        return DEFAULT_SIZE


def _window_start(
    parsed: Any, result: FetchResult, statements: list[Statement], size: int
) -> str | None:
    """From which date on a statement missing from the feed was removed (see below).

    Feeds hold the newest N entries, so an entry falls off the end when a new one is
    published; that is not a removal. A feed is therefore taken as *truncated* — only
    entries newer than its oldest one are expected to still be in it — unless:

    - it says it is complete (RFC 5005 `<fh:complete/>`): every missing entry was removed;
    - it has fewer than `size` entries (`options.size`, default 10): a feed that is not
      full holds everything the site has, so, again, every missing entry was removed.

    A feed that links to a next page (`rel="next"`) is truncated whatever its length.
    The cost of `size` set too high (a site whose feed holds 5) is a false "removed" for
    the entry each new publication pushes off; the cost of it set too low is only that the
    removal of the very oldest entry of a short feed is missed. So set `size` to the feed's
    real length, or to 1 for a feed that keeps entries for some days rather than a number.

    The oldest date itself is excluded from the window: when several entries share it
    (date-only feeds, batch publishing), the one that fell off and the ones still listed
    are indistinguishable, and a missed removal is better than a false one. Entries without
    a date are never taken as removed from a truncated feed.
    """
    paged = any(link.get("rel") == "next" for link in parsed.feed.get("links") or ())
    complete = _HISTORY_NS in result.body and bool(_COMPLETE.search(result.body))
    if complete or (not paged and len(parsed.entries) < size):
        return ""
    dates = [s.published for s in statements if s.published]
    if not dates:
        return None
    oldest = min(datetime.fromisoformat(d) for d in dates)
    return (oldest + timedelta(seconds=1)).isoformat()
