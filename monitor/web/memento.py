"""Memento (RFC 7089): the archive as any Memento client reads web archives.

* URI-R, the original resource: a watched statement's URL (`document.url`).
* URI-M, a memento: the body archived with a version, as received
  (`/archive/{watch}/{number}?key=…`, served under the archive's sandboxing policy), dated
  by the fetch that brought it (`Memento-Datetime`). Removals are not mementos (no page).
* TimeMap: `/timemap/link/{URI-R}` (application/link-format) and `/timemap/json/{URI-R}`.
* TimeGate: `/timegate/{URI-R}` answers `Accept-Datetime` with a 302 to the memento that
  stood at that time — the newest captured at or before it, so a moment between two
  versions gives the earlier one: what the page said then — or the first one for a moment
  before any. Without `Accept-Datetime`, the newest.

Snapshot pages and archived bodies carry `Memento-Datetime` and a `Link` header naming
the original, the TimeGate and the TimeMap. These pages answer like the rest of the UI:
to anyone with `[server] public = true`, else to users who are logged in.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from monitor.clock import parse_iso
from monitor.store.records import MementoRow, ResponseRow, VersionWithDocumentRow
from monitor.web.pages import Missing, Pages, Visit, page

LINK_FORMAT = "application/link-format"


def original_of(request: Request) -> str:
    """The URI-R in a Memento path: everything after the prefix, its query included
    (`/timegate/https://site/page?lang=en`); a `//` a proxy folded to `/` is restored."""
    url = request.path_params["url"]
    for scheme in ("http:/", "https:/"):
        if url.startswith(scheme) and not url.startswith(scheme + "/"):
            url = scheme + "/" + url[len(scheme) :]
    query = request.url.query
    return url + (f"?{query}" if query else "")


def http_date(moment: str) -> str:
    """A stored time ('2026-11-25T16:56:28.480Z') as an HTTP date (RFC 1123, GMT)."""
    parsed = parse_iso(moment)
    return format_datetime(parsed.astimezone(UTC).replace(microsecond=0), usegmt=True)


def memento_time(row: Mapping[str, Any]) -> str:
    # The fetch that brought the archived body, else the version's own time.
    return str(row.get("requested_at") or row["observed_at"])


class MementoPages(Pages):
    def base(self, request: Request) -> str:
        return (self.config.server.public_url or str(request.base_url)).rstrip("/")

    def mementos(self, url: str) -> list[MementoRow]:
        """The mementos of a URL, oldest first: one per archived body (several versions
        or watches that came from one fetch are one memento)."""
        rows = self.store.archive.mementos(url)
        seen: set[int] = set()
        unique = []
        for row in rows:
            if row["response_id"] not in seen:
                seen.add(row["response_id"])
                unique.append(row)
        return unique

    def uri_m(self, base: str, row: MementoRow) -> str:
        return memento_uri(base, row["watch_id"], row["key"], row["seq"])

    def _found(self, url: str) -> list[MementoRow]:
        rows = self.mementos(url)
        if not rows:
            raise Missing(f"no mementos of {url}")
        return rows

    @page()
    async def timemap_link(self, request: Request, visit: Visit) -> Response:
        url = original_of(request)
        rows = self._found(url)
        base = self.base(request)
        first, last = memento_time(rows[0]), memento_time(rows[-1])
        links = [
            f'<{url}>; rel="original"',
            f'<{base}/timegate/{url}>; rel="timegate"',
            f'<{base}/timemap/link/{url}>; rel="self"; type="{LINK_FORMAT}"; '
            f'from="{http_date(first)}"; until="{http_date(last)}"',
            f'<{base}/timemap/json/{url}>; rel="timemap"; type="application/json"',
        ]
        for index, row in enumerate(rows):
            rel = _memento_rel(index, len(rows))
            links.append(
                f'<{self.uri_m(base, row)}>; rel="{rel}"; datetime="{http_date(memento_time(row))}"'
            )
        return Response(",\n".join(links) + "\n", media_type=LINK_FORMAT)

    @page()
    async def timemap_json(self, request: Request, visit: Visit) -> Response:
        url = original_of(request)
        rows = self._found(url)
        base = self.base(request)
        listed = [{"datetime": memento_time(row), "uri": self.uri_m(base, row)} for row in rows]
        body = {
            "original_uri": url,
            "timegate_uri": f"{base}/timegate/{url}",
            "timemap_uri": {
                "link_format": f"{base}/timemap/link/{url}",
                "json_format": f"{base}/timemap/json/{url}",
            },
            "mementos": {"first": listed[0], "last": listed[-1], "list": listed},
        }
        return Response(json.dumps(body, indent=1), media_type="application/json")

    @page()
    async def timegate(self, request: Request, visit: Visit) -> Response:
        url = original_of(request)
        asked = request.headers.get("accept-datetime")
        moment = None
        if asked:
            try:
                moment = parsedate_to_datetime(asked)
            except (TypeError, ValueError):
                moment = None
            if moment is None or moment.tzinfo is None:
                return Response(
                    f"Accept-Datetime must be an HTTP date (RFC 1123), not {asked!r}\n",
                    status_code=400,
                    media_type="text/plain",
                )
        rows = self._found(url)
        chosen = rows[-1]
        if moment is not None:
            wanted = moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
            # Stored times are fixed-width text; to the second, as HTTP dates are.
            earlier = [row for row in rows if memento_time(row)[:19] <= wanted]
            chosen = earlier[-1] if earlier else rows[0]
        base = self.base(request)
        answer = RedirectResponse(self.uri_m(base, chosen), status_code=302)
        answer.headers["Vary"] = "accept-datetime"
        answer.headers["Link"] = (
            f'<{url}>; rel="original", '
            f'<{base}/timemap/link/{url}>; rel="timemap"; type="{LINK_FORMAT}"'
        )
        return answer


def memento_uri(base: str, watch_id: str, key: str, seq: int) -> str:
    return f"{base}/archive/{quote(watch_id, safe='')}/{seq}?key={quote(key, safe='')}"


def _memento_rel(index: int, count: int) -> str:
    if count == 1:
        return "first last memento"
    if index == 0:
        return "first memento"
    if index == count - 1:
        return "last memento"
    return "memento"


def memento_headers(
    base: str, row: VersionWithDocumentRow, record: ResponseRow | None
) -> dict[str, str]:
    """`Memento-Datetime` and `Link` for a version's snapshot page and archived body."""
    if row.get("kind") == "removed" or not row.get("url"):
        return {}
    url = row["url"]
    moment = record["requested_at"] if record else row["observed_at"]
    return {
        "Memento-Datetime": http_date(moment),
        "Link": f'<{url}>; rel="original", <{base}/timegate/{url}>; rel="timegate", '
        f'<{base}/timemap/link/{url}>; rel="timemap"; type="{LINK_FORMAT}"',
    }
