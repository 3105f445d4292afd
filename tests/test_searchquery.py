"""The search syntax, read into each engine's query language (the engines themselves are
exercised in tests/test_web_store.py on SQLite and PostgreSQL)."""

from __future__ import annotations

import pytest

from monitor.searchquery import Query, Term, parse, to_fts5, to_tsquery


def test_words_or_phrases_prefixes_and_exclusions() -> None:
    query = parse('Astana OR Brussel* "European Union" -embassy')
    assert query == Query(
        groups=(
            (Term(("astana",)), Term(("brussel",), prefix=True)),
            (Term(("european", "union")),),
        ),
        excluded=(Term(("embassy",)),),
    )
    assert to_fts5(query) == '(("astana" OR "brussel"*) AND "european union") NOT "embassy"'
    assert to_tsquery(query) == "('astana' | 'brussel':*) & ('european' <-> 'union') & !'embassy'"


@pytest.mark.parametrize(
    "typed",
    ["", "   ", "-x", '-"a b"', "OR", "* ** ***", '"', "--"],
)
def test_nothing_to_look_for_runs_no_search(typed: str) -> None:
    assert parse(typed) is None


@pytest.mark.parametrize(
    ("typed", "fts5", "tsquery"),
    [
        ("title:Aid", '"title aid"', "('title' <-> 'aid')"),  # no column filters
        ("NEAR(a b)", '"near a" AND "b"', "('near' <-> 'a') & 'b'"),
        ("a AND", '"a" AND "and"', "'a' & 'and'"),
        ("it's", '"it s"', "('it' <-> 's')"),
        ("a OR", '"a"', "'a'"),  # a dangling OR is dropped
        ("or", '"or"', "'or'"),  # lower case is a word
        ('"unclosed phrase', '"unclosed phrase"', "('unclosed' <-> 'phrase')"),
        ("Заявление", '"заявление"', "'заявление'"),
    ],
)
def test_whatever_is_typed_stays_words(typed: str, fts5: str, tsquery: str) -> None:
    query = parse(typed)
    assert query is not None
    assert (to_fts5(query), to_tsquery(query)) == (fts5, tsquery)
