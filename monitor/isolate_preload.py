"""Imported once by the worker pool's forkserver (see monitor/isolate.py), never by the
daemon: reads a page the way a check reads one, so that every worker forked from the server
starts with the parsers imported and their lazy set-up done. Otherwise each new worker
spent its first page's time limit on it (seconds on a busy machine).

It warms what reading a statement's page takes (the generic profile's parse and its
article read by trafilatura with the XPath expressions it is given, a comparison), not
what only some pages or watches ask for: the reading of a page with no article or a short
one (bs4, 40 ms of CPU to import), the CSS selectors of `drop_selectors` (soupsieve
compiling its own patterns, 75 ms) and `ignore` rules (the `regex` module, 26 ms). The
forkserver forks no worker before this is done, so all of it was on the path to the first
page any worker read: a `check --once` starts the forkserver at its first changed page (or
at its start, on a new archive). A worker that needs one of them does it at its first such
page, beside the other workers doing the same, rather than every one before its first page."""

from __future__ import annotations

import gc

# The preload makes no garbage: the cyclic collector is held off while the reading is imported
# and warmed up (its passes over the modules' objects: 45 M of the forkserver's 1,347 M
# instructions before the first worker could fork, 31 M now, by callgrind), and the forkserver
# then leaves what was loaded to it no more (isolate_server.py), as the daemon does with its
# own start-up (collector.py). What the workers' own reading needs is imported here with it.
_COLLECTING = gc.isenabled()
gc.disable()

# An import that fails gives the collector back as well: multiprocessing's forkserver passes
# over a preloaded module whose import raises ImportError and forks its workers all the same,
# which would otherwise never collect a cycle.
try:
    import contextlib
    from datetime import UTC, datetime

    import charset_normalizer  # noqa: F401 (see isolate._PRELOAD)

    import monitor.learned  # noqa: F401 (see isolate._PRELOAD)
    from monitor.diff import compare
    from monitor.extract import Target
    from monitor.fetched import FetchRequest, FetchResult
    from monitor.sites import get_profile
except BaseException:
    if _COLLECTING:
        gc.enable()
    raise

_URL = "http://example.invalid/statement"
# An article long enough to be read as one (see `generic._SHORT_TEXT`), as statements are.
_PAGE = (
    b"<!doctype html><html><head><meta charset='utf-8'><title>Warm-up</title></head><body>"
    b"<nav>Home</nav><main><article><h1>Warm-up statement</h1><time>2026-01-01</time>"
    b"<p>The ministry publishes this statement to warm up the reading of pages, with a "
    b"<a href='/doc.pdf'>document</a> linked from its first paragraph.</p>"
    b"<p>A second paragraph follows, long enough for the article to be read as a statement "
    b"rather than as a short notice, which a page with no article would be.</p>"
    b"<p>The third paragraph closes the statement; nothing in it is ever stored.</p>"
    b"</article></main><footer>Footer</footer></body></html>"
)


def reading() -> tuple[FetchResult, Target]:
    """The warm-up page as a check's fetch brings it, and its watch's target."""
    answer = FetchResult(
        request=FetchRequest(_URL),
        url=_URL,
        requested_at=datetime.now(UTC),
        status=200,
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=_PAGE,
    )
    return answer, Target(_URL)


def _warm_up() -> None:
    extraction = get_profile("generic", _URL).extract(*reading())
    statements = extraction.statements
    if statements:
        compare(statements[0], statements[0], [])


# A warm-up only: the real work reports its own errors.
try:
    with contextlib.suppress(Exception):
        _warm_up()
finally:
    if _COLLECTING:
        gc.enable()
