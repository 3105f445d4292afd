"""mid.ru profile: the Ministry of Foreign Affairs of Russia (statement pages and the listing).

Modelled on the site's real markup as public scrapers of it read it (current 1C-Bitrix design):

- A statement page `https://mid.ru/ru/foreign_policy/news/<id>/` (also `/en/…`) keeps its
  text in `div.text.article-content` — read so by an OSINT collector's `mfa_fetch`
  (regex on `<div class="text article-content…">`) and by a C# news-mapping table
  (`//div[@class='text article-content']`); the title is the page's `<h1>`, and the date is
  written `DD.MM.YYYY` with the time `HH:MM` (Moscow time) near it.
- The listing `https://mid.ru/ru/foreign_policy/news/` (paged `?PAGEN_1=2`) is a list of
  `.announce__item` with `.announce__date`, `.announce__time`, `.announce__link` (title and
  href) and `.announce__meta-tags`, inside `.announce.announce_articles` (several Puppeteer
  scrapers select exactly these).
- Plain clients are sometimes answered with a JavaScript stub saying "Data processing...
  Please, wait." (the same scrapers wait it out in a browser) or an F5 `bobcmn` script; both
  are classified as bot challenges by `monitor.classify`, never read as content.

Statements are keyed by the news id in the URL. Everything outside the article body (menus,
share and print links, the related-news `announce` blocks under it, view counters) is
furniture; documents linked anywhere in the article's container are attachments.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urljoin, urlsplit

from monitor.extract import (
    Extraction,
    Profile,
    Statement,
    Target,
    date_sort_key,
    inline_text,
    is_attachment,
    normalize_url,
    page_links,
    unique_links,
)
from monitor.fetched import FetchResult
from monitor.sites.generic import clean_content, dateline, page_meta, parse_date, read_html

if TYPE_CHECKING:  # bs4 is imported where a page is parsed (see monitor.extract)
    from bs4 import BeautifulSoup, Tag

_HOSTS = ("mid.ru", "www.mid.ru")
_NEWS_ID = re.compile(r"/news/(\d+)/?")
_MOSCOW = "+03:00"  # Moscow keeps UTC+3 all year


class MidRuProfile(Profile):
    name = "midru"
    hosts = _HOSTS

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        soup = read_html(result, target)
        if isinstance(soup, Extraction):
            return soup
        body = soup.select_one("div.article-content")
        if body is not None:
            return _statement_page(soup, body, result.url, target)
        items = soup.select(".announce__item")
        if items:
            return _listing(items, result.url, target)
        return Extraction(problem="no article-content block and no news list: not a statement page")


def _statement_page(soup: BeautifulSoup, body: Tag, url: str, target: Target) -> Extraction:
    from bs4 import Tag

    meta = page_meta(soup)
    heading = soup.find("h1")
    when = dateline(heading if isinstance(heading, Tag) else None, body)
    container = body.parent if isinstance(body.parent, Tag) else body
    documents = [link for link in page_links(container, url) if is_attachment(link.href)]
    content = clean_content([body], url, title=meta.heading)
    if not content.paragraphs:
        return Extraction(problem="the article-content block is empty (empty extraction)")
    match = _NEWS_ID.search(urlsplit(url).path)
    statement = Statement(
        key=match.group(1) if match else "page",
        url=url,
        title=meta.heading or meta.title,
        paragraphs=tuple(content.paragraphs),
        published=_iso(when) if when else meta.published,
        language=target.language or _language(url) or meta.language,
        links=tuple(content.links),
        attachments=tuple(unique_links(content.attachments + documents)),
    )
    return Extraction(statements=[statement])


def _listing(items: list[Tag], url: str, target: Target) -> Extraction:
    from bs4 import Tag

    statements = []
    for item in items:
        link = item.select_one(".announce__link")
        if not isinstance(link, Tag) or not link.get("href"):
            continue
        href = normalize_url(str(link["href"]), url)
        match = _NEWS_ID.search(urlsplit(href).path)
        date = item.select_one(".announce__date")
        time = item.select_one(".announce__time")
        when = " ".join(inline_text(tag) for tag in (date, time) if isinstance(tag, Tag))
        teaser = item.select_one(".announce__text")
        statements.append(
            Statement(
                key=match.group(1) if match else href,
                url=urljoin(url, href),
                title=inline_text(link),
                paragraphs=(inline_text(teaser),) if isinstance(teaser, Tag) else (),
                published=_iso(when) if when else None,
                language=target.language or _language(url),
            )
        )
    if not statements:
        return Extraction(problem="the news list has no readable items")
    # The list is newest first: a statement newer than its oldest item that is gone from it
    # was removed; older ones were only pushed to the next page.
    dates = [s.published for s in statements if s.published]
    window = min(dates, key=date_sort_key) if dates else ""
    return Extraction(statements=statements, window_start=window, is_listing=True)


def _iso(text: str) -> str | None:
    iso = parse_date(text)
    if iso and "T" in iso:
        return f"{iso}:00{_MOSCOW}"
    return iso


def _language(url: str) -> str | None:
    first = urlsplit(url).path.strip("/").split("/")[0]
    return first if first in ("ru", "en", "de", "fr", "es", "ar", "zh") else None
