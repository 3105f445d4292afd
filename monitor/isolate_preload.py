"""Imported once by the worker pool's forkserver (see monitor/isolate.py), never by the
daemon: reads a small page the way a check reads one, so that every worker forked from
the server starts with the parsers imported and their lazy set-up done. Otherwise each
new worker spent its first page's time limit on it (seconds on a busy machine)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

from monitor.diff import compare
from monitor.extract import Target
from monitor.fetched import FetchRequest, FetchResult
from monitor.sites import get_profile

_URL = "http://example.invalid/statement"
_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Warm-up</title></head><body>"
    b"<nav>Home</nav><main><article><h1>Warm-up statement</h1><time>2026-01-01</time>"
    b"<p>One paragraph, with a <a href='/doc.pdf'>link</a>.</p><p>Another one.</p>"
    b"</article></main><footer>Footer</footer></body></html>"
)


def _warm_up() -> None:
    answer = FetchResult(
        request=FetchRequest(_URL),
        url=_URL,
        requested_at=datetime.now(UTC),
        status=200,
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=_PAGE,
    )
    extraction = get_profile("generic", _URL).extract(answer, Target(_URL, drop_selectors=("nav",)))
    statements = extraction.statements
    if statements:
        compare(statements[0], statements[0], [r"\d+ views"])


# A warm-up only: the real work reports its own errors.
with contextlib.suppress(Exception):
    _warm_up()
