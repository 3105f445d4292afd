"""Generic profile: the main content of any HTML page as one statement."""

from __future__ import annotations

import re

from bs4 import BeautifulSoup, Tag

from monitor.extract import (
    Extraction,
    Profile,
    Statement,
    Target,
    classify_unusable,
    drop_selected,
    html_to_paragraphs,
    normalize_text,
)
from monitor.fetch import FetchResult

# Page furniture that moves without the statement changing.
_FURNITURE = re.compile(
    r"share|social|breadcrumb|cookie|consent|related|banner|carousel|slider|teaser|views?-?count"
    r"|counter|menu|sidebar|navbar|subscribe|advert|promo|widget|clock|weather|ticker",
    re.I,
)
_MAIN_SELECTORS = ("article", "main", "[role=main]", "#content", ".content", ".article", "body")
_MIN_TEXT = 20


class GenericProfile(Profile):
    name = "generic"

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        if result.status in (404, 410) and not result.problem:
            return Extraction(gone=True, problem=f"HTTP {result.status}")
        reason = classify_unusable(result)
        if reason:
            return Extraction(problem=reason)
        soup = BeautifulSoup(result.text(), "lxml")
        drop_selected(soup, target.drop_selectors)
        title = _title(soup)
        published = _published(soup)
        for tag in soup.find_all(True):
            # Descendants of an element already removed are skipped.
            if not tag.decomposed and _is_furniture(tag):
                tag.decompose()
        main = next((found for s in _MAIN_SELECTORS if (found := soup.select_one(s))), soup)
        paragraphs, links = html_to_paragraphs(main, base_url=result.url)
        if title and paragraphs and paragraphs[0] == title:
            paragraphs = paragraphs[1:]
        if sum(len(p) for p in paragraphs) < _MIN_TEXT:
            return Extraction(problem="no statement text found on the page (empty extraction)")
        statement = Statement(
            key="page",
            url=result.url,
            title=title,
            paragraphs=tuple(paragraphs),
            published=published,
            language=target.language or _language(soup),
            links=tuple(links),
        )
        return Extraction(statements=[statement])


def _is_furniture(tag: Tag) -> bool:
    if tag.name in ("body", "html", "main", "article"):
        return False
    marks = " ".join([*tag.get("class", []), tag.get("id", ""), tag.get("role", "")])
    return bool(marks.strip()) and bool(_FURNITURE.search(marks))


def _title(soup: BeautifulSoup) -> str:
    for candidate in (
        soup.find("meta", property="og:title"),
        soup.find("h1"),
        soup.find("title"),
    ):
        if candidate is None:
            continue
        text = candidate.get("content") if candidate.name == "meta" else candidate.get_text(" ")
        if text and normalize_text(str(text)):
            return normalize_text(str(text))
    return ""


def _published(soup: BeautifulSoup) -> str | None:
    meta = soup.find("meta", property="article:published_time")
    if meta and meta.get("content"):
        return str(meta["content"]).strip()
    time_tag = soup.find("time", datetime=True)
    return str(time_tag["datetime"]).strip() if time_tag else None


def _language(soup: BeautifulSoup) -> str | None:
    html = soup.find("html")
    lang = html.get("lang") if html else None
    return str(lang).split("-")[0].lower() if lang else None
