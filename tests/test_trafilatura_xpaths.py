"""trafilatura's XPath prunes made in Python (monitor/sites/xpaths.py) select what libxml2
selects: the same elements in the same order, on generated trees and on real pages."""

from __future__ import annotations

import random
import re
from typing import Any

import pytest
from lxml import etree
from lxml import html as lxml_html

from monitor.sites import xpaths
from tests.quality.corpus import load_cases, read_page


def _originals() -> list[Any]:
    """trafilatura's expressions as it ships them (compiled again: `install` may have
    replaced the ones in its lists)."""
    from trafilatura import xpaths as shipped

    found = []
    for name in xpaths.LISTS:
        for expression in getattr(shipped, name):
            found.append(etree.XPath(expression.path, namespaces={"re": shipped.REGEXP_NS}))
    return found


def test_every_expression_a_reading_uses_is_made_in_python() -> None:
    # An upgrade of trafilatura with a construct outside the grammar fails here (it would
    # still read the same, as an XPath, only slower).
    for expression in _originals():
        xpaths.compile_path(expression.path)


def test_install_replaces_them_in_place_and_once() -> None:
    from trafilatura import xpaths as shipped

    xpaths.install()
    assert xpaths.install() == 0
    for name in xpaths.LISTS:
        assert all(isinstance(e, xpaths.Selection) for e in getattr(shipped, name))
    # The bench's peer runs trafilatura as it ships, then ours is back.
    with xpaths.stock():
        for name in xpaths.LISTS:
            assert not any(isinstance(e, xpaths.Selection) for e in getattr(shipped, name))
    for name in xpaths.LISTS:
        assert all(isinstance(e, xpaths.Selection) for e in getattr(shipped, name))


@pytest.mark.parametrize(
    "path",
    ["position() = 1", ".//*[last()]", ".//*[2]", ".//div/p", "//p", ".//*[@a != 'b']"],
)
def test_what_the_grammar_does_not_hold_stays_an_xpath(path: str) -> None:
    with pytest.raises(xpaths.Unsupported):
        xpaths.compile_path(path)


# Beside trafilatura's own: the grammar's cases its expressions do not happen to meet.
_MORE = (
    ".//*[contains(translate(@class, 'aeA', 'xy'), 'x')][1]",
    ".//*[starts-with(translate(@id|@role, 'ee', 'XY'), 'X') and not(.//h1)]",
    "(.//section[@role])[1]|(.//div[@id])[1]|(.//p)[1]",
)


def _words() -> list[str]:
    """Pieces of attribute values: the literals and regex words of the expressions, so
    that generated values meet every test on both sides of it."""
    words: set[str] = set()
    for expression in [*_originals(), *map(etree.XPath, _MORE)]:
        for literal in re.findall(r"'([^']*)'", expression.path):
            words.update(re.findall(r"[A-Za-z][\w-]*", literal))
            words.add(literal)
    return sorted(words)


_TAGS = ("div", "section", "aside", "article", "main", "p", "span", "list", "item", "ol", "ul")
_TAGS += ("details", "h1", "header", "a", "table", "figcaption", "img")
_NAMES = ("id", "class", "style", "role", "itemprop", "aria-hidden", "data-component")
_NAMES += ("data-lp-replacement-content",)


def _tree(rng: random.Random, words: list[str]) -> Any:
    def value() -> str:
        if rng.random() < 0.3:  # a whole literal: what an `@a='…'` test asks for
            return rng.choice(words)
        parts = [rng.choice(words) for _ in range(rng.randint(0, 3))]
        text = rng.choice(("", " ", "-", "_")).join(parts)
        if rng.random() < 0.2:
            text = text.upper() if rng.random() < 0.5 else text.capitalize()
        return rng.choice(("", " ", "^")) + text + rng.choice(("", " "))

    def element(depth: int) -> str:
        tag = rng.choice(_TAGS)
        names = rng.sample(_NAMES, rng.randint(0, 4))
        attributes = "".join(
            f' {name}="{value()}"' if rng.random() < 0.9 else f" {name}" for name in names
        )
        inner = "".join(element(depth + 1) for _ in range(rng.randint(0, 5 - depth)))
        return f"<{tag}{attributes}>t{inner}</{tag}>tail"

    body = "".join(element(0) for _ in range(rng.randint(1, 4)))
    return lxml_html.document_fromstring(f"<html><body>{body}</body></html>")


def test_generated_trees_give_the_same_elements_in_the_same_order() -> None:
    rng = random.Random(28)
    words = [*_words(), "role", "e", "ee"]
    originals = [*_originals(), *(etree.XPath(path) for path in _MORE)]
    pairs = [(e, xpaths.compile_path(e.path)) for e in originals]
    selected = 0
    for _ in range(400):
        tree = _tree(rng, words)
        for context in (tree, tree.find("body"), *tree.iter("div")):
            for original, made in pairs:
                expected = original(context)
                assert made(context) == expected, original.path
                selected += len(expected)
    assert selected > 1000  # the trees meet the tests, not only miss them


def _quality_pages() -> list[bytes]:
    return [read_page(case[side]) for case in load_cases() for side in ("old", "new")]


@pytest.mark.slow
def test_trafilatura_reads_every_quality_page_with_the_same_selections() -> None:
    """Both ways on each tree trafilatura asks about while it reads (its raw, cleaned and
    converted trees), in the modes it has: what libxml2 selects is what is returned."""
    import trafilatura
    from trafilatura import xpaths as shipped

    calls = []

    class Both:
        def __init__(self, original: Any) -> None:
            self.original = original
            self.path = original.path
            self.made = xpaths.compile_path(original.path)

        def __call__(self, node: Any) -> list[Any]:
            expected = self.original(node)
            calls.append(self.made(node) == expected)
            return expected  # type: ignore[no-any-return]

    saved = {name: list(getattr(shipped, name)) for name in xpaths.LISTS}
    originals = iter(_originals())
    try:
        for name in xpaths.LISTS:
            expressions = getattr(shipped, name)
            expressions[:] = [Both(next(originals)) for _ in expressions]
        for page in _quality_pages():
            text = page.decode("utf-8", "replace")
            for options in ({}, {"include_comments": True}, {"favor_precision": True}):
                trafilatura.bare_extraction(text, fast=True, include_tables=True, **options)
    finally:
        for name, expressions in saved.items():
            getattr(shipped, name)[:] = expressions
    assert len(calls) > 1000
    assert all(calls)
