"""state.gov profile: the U.S. Department of State (press statements, releases, briefings).

Modelled on the site's real WordPress markup as public scrapers of it read it:

- The title is `h1.featured-content__headline` (with `stars-above`) inside
  `div.featured-content__copy`; the metadata under it is `div.article-meta` holding
  `p.article-meta.doctype-meta` ("Press Statement", "Department Press Briefing"),
  `p.article-meta__author-bureau` (who issued it) and `p.article-meta__publish-date`
  ("November 20, 2026") — selected so by a TypeScript press-release crawler, a Ruby
  `UsDos` scraper family and a Python statement collector.
- The text is `div.entry-content` (`#content .entry-content`, inside `main article`);
  reports use `div.report__content`, and some pages a `div.summary ul.summary__list`.
- Tags are `div.related-tags div.related-tags__pills a` under the text (furniture here);
  downloads are `a.button--download` buttons ("button button--outline … button--download"
  in a treaty-document spider), kept as attachments with the documents linked in the text.

The statement's type and issuer ("Press Statement · Office of the Spokesperson") open the
body as its first paragraph: a statement re-attributed from the Secretary to a spokesperson
is news. The publication date is read from the visible `article-meta__publish-date`;
`article:modified_time` is not used, since WordPress bumps it on every re-save.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from monitor.extract import (
    Extraction,
    Link,
    Profile,
    Statement,
    Target,
    inline_text,
    normalize_url,
    unique_links,
)
from monitor.fetched import FetchResult
from monitor.sites.generic import clean_content, page_meta, parse_date, read_html

if TYPE_CHECKING:  # bs4 is imported where a page is parsed (see monitor.extract)
    from bs4 import BeautifulSoup

_HOSTS = ("state.gov", "www.state.gov")
_BODY = ("div.entry-content", "div.report__content", "div.summary ul.summary__list")
_TITLE_SUFFIX = re.compile(r"\s*[-–|]\s*(?:United States )?Department of State\s*$", re.I)


class StateGovProfile(Profile):
    name = "stategov"
    hosts = _HOSTS

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        from bs4 import Tag

        soup = read_html(result, target)
        if isinstance(soup, Extraction):
            return soup
        meta = page_meta(soup)
        bodies = [found for selector in _BODY if (found := soup.select_one(selector))]
        if not bodies:
            return Extraction(problem="no entry-content block: not a statement page")
        headline = soup.select_one("h1.featured-content__headline") or soup.find("h1")
        title = inline_text(headline) if isinstance(headline, Tag) else meta.title
        title = _TITLE_SUFFIX.sub("", title)
        for tags in soup.select("div.related-tags"):
            tags.decompose()
        downloads = [
            Link(normalize_url(str(a["href"]), result.url), inline_text(a))
            for a in soup.select("a.button--download[href]")
        ]
        content = clean_content(bodies[:1], result.url, title=title)
        if not content.paragraphs:
            return Extraction(problem="the entry-content block is empty (empty extraction)")
        byline = _byline(soup)
        statement = Statement(
            key=urlsplit(result.url).path.strip("/") or "page",
            url=result.url,
            title=title,
            paragraphs=tuple(([byline] if byline else []) + content.paragraphs),
            published=_published(soup) or meta.published or content.first_date,
            language=target.language or meta.language or "en",
            links=tuple(content.links),
            attachments=tuple(unique_links(content.attachments + downloads)),
        )
        return Extraction(statements=[statement])


def _byline(soup: BeautifulSoup) -> str:
    from bs4 import Tag

    parts = [
        inline_text(tag)
        for selector in ("p.doctype-meta", "p.article-meta__author-bureau")
        if isinstance(tag := soup.select_one(selector), Tag)
    ]
    return " · ".join(part for part in parts if part)


def _published(soup: BeautifulSoup) -> str | None:
    from bs4 import Tag

    tag = soup.select_one(".article-meta__publish-date")
    if not isinstance(tag, Tag):
        return None
    text = inline_text(tag)
    return parse_date(text) or text or None
