"""Faster forms of the reading's tests give the answers of the plain forms they replace."""

from __future__ import annotations

import random
import re
import sys

import monitor.sites.furniture as furniture
from monitor.sites.generic import _DIGIT, is_date_line


def test_the_digit_search_holds_for_exactly_the_characters_isdigit_holds_for() -> None:
    # Every code point: a Python whose Unicode data adds a digit fails here, not silently.
    differ = [
        hex(point)
        for point in range(sys.maxunicode + 1)
        if bool(_DIGIT.search(chr(point))) != chr(point).isdigit()
    ]
    assert differ == []


def test_a_date_line_needs_a_digit_of_any_kind() -> None:
    assert is_date_line("20.11.2026")
    assert is_date_line("Published: 20 November 2026, 14:35")
    assert not is_date_line("Published: November")
    assert not is_date_line("The minister spoke at the session on climate")


def test_class_and_id_words_match_as_the_case_insensitive_patterns_do() -> None:
    """ASCII names are lower-cased and matched without re.I: the same verdict as re.I."""
    words = re.findall(r"[a-z]+", furniture.FURNITURE_WORDS.pattern)
    pieces = [*words, "-", "_", " ", "x", "\t", "\u0130", "\u212a", "\u017f", "é"]
    rng = random.Random(28)
    for _ in range(3000):
        marks = "".join(rng.choice(pieces) for _ in range(rng.randint(1, 4)))
        marks = "".join(c.upper() if rng.random() < 0.3 else c for c in marks)
        assert furniture._names_widget(marks) == bool(furniture.WIDGET_WORDS.search(marks))
        assert furniture._names_furniture(marks) == bool(furniture.FURNITURE_WORDS.search(marks))
        assert furniture._value_names_widget(marks) == bool(furniture.WIDGET_WORDS.search(marks))


def test_normalising_splits_on_exactly_the_spaces_it_names() -> None:
    """normalize_text joins str.split's words: `_SPACES` (what it collapsed before) holds
    the same characters, so no text reads differently."""
    import unicodedata

    from monitor.extract import _INVISIBLE_RE, _SPACES, normalize_text

    spaces = [chr(p) for p in range(sys.maxunicode + 1) if chr(p).isspace()]
    assert [chr(p) for p in range(sys.maxunicode + 1) if _SPACES.fullmatch(chr(p))] == spaces
    rng = random.Random(16)
    pool = [*spaces, *"ab é\u0301\u200b\u00ad\ufeffд"]
    for _ in range(5000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 10)))
        visible = _INVISIBLE_RE.sub("", unicodedata.normalize("NFC", text))
        assert normalize_text(text) == _SPACES.sub(" ", visible).strip()  # the former way


def test_a_normal_ascii_text_is_given_back_as_the_split_and_joined_words_are() -> None:
    from lxml import etree

    from monitor.extract import normalize_text

    # The ASCII characters str.split splits on, and others around them.
    pool = [*" \t\n\x0b\x0c\r\x1c\x1d\x1e\x1f", *"ab.-", "\x00", "\x7f", "  "]
    rng = random.Random(18)
    for _ in range(20_000):
        text = "".join(rng.choice(pool) for _ in range(rng.randint(0, 9)))
        normal = normalize_text(text)
        assert normal == " ".join(text.split()), repr(text)
        assert type(normal) is str
    # lxml's text results are str subclasses that hold their element: a plain str back.
    (smart,) = etree.fromstring("<p>two words</p>").xpath("//text()")
    assert type(smart) is not str
    assert normalize_text(smart) == "two words"
    assert type(normalize_text(smart)) is str


def test_the_marker_head_is_the_lower_cased_bytes_of_the_pages_first_characters() -> None:
    """Classification's ASCII markers are searched for in the UTF-8 of the page's first
    characters, lower-cased as ASCII: for a valid UTF-8 page short enough, its own bytes."""
    from datetime import UTC, datetime

    from monitor.classify import _Page
    from monitor.fetch import FetchRequest, FetchResult

    pool = [b"a", b"B", b"<p>", b" ", "д".encode(), "\u0130".encode(), "\u212a".encode()]
    pool += [b"\xff", b"\xc3", b"\xe2\x84", b"\xed\xa0\x80", "é".encode()]
    rng = random.Random(60)
    for case in range(3000):
        body = b"".join(rng.choice(pool) for _ in range(rng.randint(0, 40)))
        if case % 10 == 0:  # about as long as the head, valid or not
            body = b"x" * rng.randint(59_995, 60_005) + body[: rng.randint(0, 8)]
        url = "https://example.org/a"
        result = FetchResult(FetchRequest(url), url, datetime.now(UTC), 200, body=body)
        text = body[:300_000].decode("utf-8", errors="ignore")
        expected = None
        if "\u0130" not in text and "\u212a" not in text:
            expected = text[:60_000].encode("utf-8").lower()
        assert _Page.read(result)._ascii_head == expected, body[-60:]
