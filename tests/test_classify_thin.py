"""Classification's 'thin' verdict (little visible text: a stand-in page) is read from the
start of a page when that already shows enough text; it must be the whole page's verdict."""

from __future__ import annotations

import html
import random
from datetime import UTC, datetime

import pytest

from monitor.classify import _INVISIBLE_BLOCKS, _TAG, THIN_TEXT, _Page
from monitor.fetch import FetchRequest, FetchResult


def _whole_page_thin(body: bytes) -> bool:
    raw = body.decode("utf-8", errors="ignore")
    text = html.unescape(_TAG.sub(" ", _INVISIBLE_BLOCKS.sub(" ", raw)))
    return len("".join(text.split())) < THIN_TEXT


def _page(body: bytes) -> _Page:
    url = "https://example.org/a"
    result = FetchResult(
        FetchRequest(url),
        url,
        datetime.now(UTC),
        200,
        headers=[("content-type", "text/html")],
        body=body,
    )
    return _Page.read(result)


@pytest.mark.slow
def test_thin_is_the_whole_pages_verdict() -> None:
    rng = random.Random(28)
    pieces = [
        "<script>var a = '{}';</script>",
        "<style>.x{{color:red}} {}</style>",
        "<!-- {} -->",
        "<div class='c'>{}</div>",
        "<p>{}</p>",
        "&amp; &nbsp;&#160; {}",
        "<span>{}",
        "<svg><text>{}</text></svg>",
        "\u00a0\u2003{}\u3000",
        "<a href='#'>{}</a><",
    ]
    for _ in range(400):
        parts = []
        for _ in range(rng.randint(1, 120)):
            words = " ".join("w" * rng.randint(1, 9) for _ in range(rng.randint(0, 30)))
            parts.append(rng.choice(pieces).format(words))
        body = ("<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>").encode()
        assert _page(body).thin == _whole_page_thin(body), body[:200]
