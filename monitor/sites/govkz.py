"""gov.kz profile: statements of a ministry (the MFA of Kazakhstan first) via the site's API.

gov.kz is a single-page app: the HTML pages hold no statement text, the browser reads it
from a GraphQL endpoint and a REST API. We ask the API directly, GraphQL first and REST as
the fallback, and key every statement by (language, id) — the API has no "updated" field,
so edits are found only by comparing content.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from monitor.extract import (
    Extraction,
    Profile,
    Statement,
    Target,
    classify_unusable,
    date_sort_key,
    html_to_paragraphs,
    normalize_text,
    split_attachments,
)
from monitor.fetch import FetchRequest, FetchResult, HeaderCapture

_PAGE = re.compile(
    r"/memleket/entities/(?P<entity>[\w-]+)/press/(?P<section>news|article)"
    r"(?:/details/(?P<id>[\w-]+))?/?$"
)
_REST_LIST = "/api/v1/public/content-manager/news"
_GRAPHQL_FIELDS = "id title slug created_date short_description body"
_DEFAULT_SIZE = 20
_LANGUAGES = ("en", "ru", "kk")


class GovKzProfile(Profile):
    name = "govkz"

    @classmethod
    def matches(cls, url: str) -> bool:
        parts = urlsplit(url)
        return (parts.hostname or "").endswith("gov.kz") and bool(_PAGE.search(parts.path))

    def requests(self, target: Target) -> list[FetchRequest]:
        page = _Page(target)
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
        if result.problem or result.request.method != "GET":
            return False
        media = (result.header("content-type") or "").lower()
        return result.status in (401, 403) or (result.status == 200 and "json" not in media)

    def translation_group(self, statement: Statement) -> str | None:
        # One id per statement across en/ru/kk: the detail URL without its language.
        parts = urlsplit(statement.url)
        return f"{parts.netloc}{parts.path}" if "/details/" in parts.path else None

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        page = _Page(target)
        if page.statement_id and result.status in (404, 410) and not result.problem:
            return Extraction(gone=True, problem=f"HTTP {result.status}")
        if result.status in (401, 403) and not result.problem:
            return Extraction(
                problem=f"API refused the request (HTTP {result.status}); gov.kz may demand "
                "browser-issued hash/token headers or block this IP"
            )
        reason = classify_unusable(result)
        if reason:
            return Extraction(problem=f"API: {reason}")
        try:
            data = json.loads(result.text())
        except ValueError:
            kind = result.header("content-type") or "unknown type"
            return Extraction(problem=f"API answered something that is not JSON ({kind})")
        items, problem = _items(data, single=bool(page.statement_id))
        if problem:
            return Extraction(problem=problem)
        statements = [_statement(item, page) for item in items]
        statements = [s for s in statements if s is not None]
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
        self.size = int(target.options.get("size", _DEFAULT_SIZE))
        self.drop = target.drop_selectors


def _items(data: Any, single: bool) -> tuple[list[dict[str, Any]], str | None]:
    """Statement items from any of the answer shapes gov.kz has used."""
    if isinstance(data, dict) and data.get("errors"):
        message = str(data["errors"][0].get("message", data["errors"][0]))[:200]
        return [], f"GraphQL error: {message}"
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
    paragraphs, links = html_to_paragraphs(body, base_url=page.base, drop=page.drop)
    links, attachments = split_attachments(links)
    if not paragraphs and item.get("short_description"):
        paragraphs = [normalize_text(str(item["short_description"]))]
    published = item.get("created_date") or item.get("createdDate") or item.get("publishedDate")
    return Statement(
        key=f"{page.language}/{item_id}",
        url=f"{page.base}/memleket/entities/{page.entity}/press/{page.section}/details/{item_id}"
        f"?lang={page.language}",
        title=title,
        paragraphs=tuple(paragraphs),
        published=str(published) if published else None,
        language=page.language,
        links=tuple(links),
        attachments=tuple(attachments),
    )
