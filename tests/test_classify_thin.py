"""Classification's 'thin' verdict (little visible text: a stand-in page) is read from the
start of a page when that already shows enough text; it must be the whole page's verdict."""

from __future__ import annotations

import html
import random
import re
from datetime import UTC, datetime

import pytest

from monitor.classify import _INVISIBLE_BLOCKS, _TAG, THIN_TEXT, _Page
from monitor.fetch import FetchRequest, FetchResult

# The invisible blocks as plainly written: a block runs to the first end tag of its name.
_PLAIN_BLOCKS = re.compile(
    r"<(script|style|noscript|template|svg)\b.*?</\1\s*>|<!--.*?-->", re.I | re.S
)


def _visible_text(body: bytes) -> str:
    raw = body.decode("utf-8", errors="ignore")
    return html.unescape(_TAG.sub(" ", _PLAIN_BLOCKS.sub(" ", raw)))


def _whole_page_thin(body: bytes) -> bool:
    return len("".join(_visible_text(body).split())) < THIN_TEXT


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
    # Menus: much markup, few words, so that the text begins tens of kilobytes in and the
    # start of the page is looked at again, doubled, before its verdict.
    menus = [
        "<li class='menu-item'><a href='/section/{}'><span class='icon'></span>{}</a></li>",
        "<script>var config = {{'items': ['{}', '{}'], 'flag': true}};</script>",
        "<div class='nav'><!-- {} --><i class='fa fa-{}'></i></div>",
    ]
    for page in range(400):
        parts = []
        menu = page % 3 == 0
        for _ in range(rng.randint(1, 900 if menu else 120)):
            if menu and rng.random() < 0.97:
                word = "w" * rng.randint(0, 3)
                parts.append(rng.choice(menus).format(word, word))
                continue
            words = " ".join("w" * rng.randint(1, 9) for _ in range(rng.randint(0, 30)))
            parts.append(rng.choice(pieces).format(words))
        body = ("<!DOCTYPE html><html><body>" + "".join(parts) + "</body></html>").encode()
        assert _page(body).thin == _whole_page_thin(body), body[:200]


@pytest.mark.slow
def test_a_page_near_the_threshold_has_every_character_of_its_text_counted() -> None:
    """Pages of about `THIN_TEXT` characters of text, spread over kilobytes of empty markup
    and invisible blocks that split tags and entities, and text after the last tag's end:
    a character miscounted anywhere turns some verdicts."""
    rng = random.Random(1200)
    pieces = [
        *("&am", "p;", "&#16", "0;", "&g", "t", "<b", " class='x'>", "</b>", "<", ">", "&"),
        *("w", "ww", "www", " ", "\n", "<script>s</script>", "<!-- c -->", "<i>", "</i>"),
    ]
    empty = "<div class='menu'><a href='/section'><span class='icon'></span></a></div>"
    verdicts = set()
    for _ in range(600):
        parts = []
        for _ in range(rng.randint(50, 400)):
            if rng.random() < 0.05:
                parts.append(empty * rng.randint(1, 60))
            parts.append(rng.choice(pieces))
        page = "<!DOCTYPE html><html><body>" + "".join(parts)
        # Text after the last tag's end, up to a few characters either side of the line.
        shown = len("".join(_visible_text(page.encode()).split()))
        page += "w" * max(0, THIN_TEXT - shown + rng.randint(-3, 3))
        body = page.encode()
        assert _page(body).thin == _whole_page_thin(body), body[-300:]
        verdicts.add(_page(body).thin)
    assert verdicts == {True, False}


def test_invisible_blocks_are_the_plainly_written_ones() -> None:
    rng = random.Random(18)
    pieces = (
        *("<script>", "</script>", "</SCRIPT >", "<script", "</scrip", "<scripts>", "</script"),
        *("<style x>", "</style\n>", "<svg", "</svg>", "<noscript>", "</noscript >"),
        *("<template>", "</template>", "<!--", "-->", "<!---->", "<!-->", "--", "-", "<"),
        *(">", "a", " ", "/", "\u017f", "\u0131", "\u212a", "</\u017fcript>", "<SCR\u0130PT>"),
    )
    for _ in range(20_000):
        text = "".join(rng.choice(pieces) for _ in range(rng.randint(0, 14)))
        found = [m.span() for m in _INVISIBLE_BLOCKS.finditer(text)]
        assert found == [m.span() for m in _PLAIN_BLOCKS.finditer(text)], text
