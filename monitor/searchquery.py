"""What a person types into search, read once and written for each database's full-text engine.

The syntax is the one people know from web search engines:

    Astana Brussels          both words (in any order, anywhere in the title or text)
    Astana OR Brussels       either (OR in capitals; binds tighter than the implied AND)
    "European Union"         the words next to each other, in this order
    Brussel*                 a prefix: Brussels, Brusseler, ...
    -embassy                 leave out versions that contain the word (or "-a phrase")

Anything else a visitor types is a word: the engines' own operators, column filters and
quotes never reach them unescaped (each term is quoted for FTS5 and for `to_tsquery`). A
query with nothing to look for (empty, only exclusions) gives `None`: no search is run.
Words are case-folded here because both indexes hold folded text (SQLite's FTS5 tokenizer
folds; the PostgreSQL index is built from the folded text with the 'simple' configuration).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

# A term: an optional minus, then a "quoted phrase" (closing quote optional) or a run of
# anything but spaces and quotes.
_TOKEN = re.compile(r'(-?)"([^"]*)"?|(-?)([^\s"]+)')
# What the engines' tokenizers treat as a word: letters and digits of any script.
_WORD = re.compile(r"\w+")


@dataclass(frozen=True)
class Term:
    words: tuple[str, ...]  # one word, or the words of a phrase, folded
    prefix: bool = False  # the last word is a prefix


@dataclass(frozen=True)
class Query:
    # Every group must match; a group matches when one of its terms does.
    groups: tuple[tuple[Term, ...], ...]
    # No version containing one of these matches.
    excluded: tuple[Term, ...] = ()


def parse(text: str) -> Query | None:
    groups: list[list[Term]] = []
    excluded: list[Term] = []
    join_next = False
    for minus_phrase, phrase, minus_word, word in _TOKEN.findall(text):
        if not phrase and word == "OR":
            join_next = bool(groups)
            continue
        term = _term(phrase if phrase else word, is_phrase=bool(phrase))
        if term is None:
            continue
        if minus_phrase or minus_word:
            excluded.append(term)
            join_next = False
        elif join_next:
            groups[-1].append(term)
            join_next = False
        else:
            groups.append([term])
    if not groups:
        return None
    return Query(tuple(tuple(group) for group in groups), tuple(excluded))


def _term(text: str, is_phrase: bool) -> Term | None:
    prefix = not is_phrase and text.endswith("*")
    words = tuple(word.casefold() for word in _WORD.findall(text))
    if not words:
        return None
    return Term(words, prefix=prefix and len(words) == 1)


def to_fts5(query: Query) -> str:
    """An FTS5 MATCH expression: `("a" OR "b") AND "c d" AND "pre"* NOT "x"`."""
    clause = " AND ".join(_group(group, _fts5_term, "OR") for group in query.groups)
    for term in query.excluded:
        clause = f"({clause}) NOT {_fts5_term(term)}"
    return clause


def _fts5_term(term: Term) -> str:
    # A quoted string is one FTS5 phrase whatever it holds; a "" inside is a literal quote.
    return '"' + " ".join(term.words).replace('"', '""') + '"' + ("*" if term.prefix else "")


def to_tsquery(query: Query) -> str:
    """A `to_tsquery('simple', ...)` expression: `('a' | 'b') & 'c' <-> 'd' & 'pre':* & !'x'`."""
    parts = [_group(group, _ts_term, "|") for group in query.groups]
    parts += [f"!{_ts_term(term)}" for term in query.excluded]
    return " & ".join(parts)


def _ts_term(term: Term) -> str:
    lexemes = ["'" + word.replace("'", "''").replace("\\", "\\\\") + "'" for word in term.words]
    if term.prefix:
        lexemes[-1] += ":*"
    phrase = " <-> ".join(lexemes)
    return f"({phrase})" if len(lexemes) > 1 else phrase


def _group(terms: tuple[Term, ...], write: Callable[[Term], str], either: str) -> str:
    written = [write(term) for term in terms]
    return written[0] if len(written) == 1 else "(" + f" {either} ".join(written) + ")"
