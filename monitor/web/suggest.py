"""Ignore suggestions: what people keep marking as noise, as candidate `ignore` regexes.

For every version of a watch whose newest annotation says *noise*, each changed stretch of
text is taken with one word of context on either side (a bare number would mask every
number of every statement; "Views: 1,234" masks only the counter), digits and spacing are
generalised, and the patterns are counted across annotated versions. A pattern that also
matches a change someone marked *significant*, or that the watch already ignores, is not
suggested.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

from monitor.config import WatchConfig
from monitor.diff import EQUAL, compare, word_diff
from monitor.extract import Statement
from monitor.store import Store
from monitor.store.records import VerdictRow, VersionWithDocumentRow

_NUMBER = re.compile(r"\d+(?:[.,:]\d+)*")
_PIECE = re.compile(r"(\d+(?:[.,:]\d+)*)|(\s+)|(.)", re.S)
# A word of context with the spacing that joins it to the change, kept as it was.
_LAST_WORD = re.compile(r"(\S+\s*)$")
_FIRST_WORD = re.compile(r"^(\s*\S+)")
_LETTER = re.compile(r"[^\W\d_]")
_MAX_FRAGMENT = 160


@dataclass(frozen=True)
class Suggestion:
    pattern: str
    count: int  # annotated versions where it occurs
    example: str


def generalise(fragment: str) -> str:
    """A literal fragment as a regex: numbers match any number, spacing any spacing."""
    out = []
    for number, space, char in _PIECE.findall(fragment.strip()):
        if number:
            out.append(r"\d+(?:[.,:]\d+)*")
        elif space:
            out.append(r"\s+")
        else:
            out.append(re.escape(char))
    return "".join(out)


def noise_fragments(old: Statement | None, new: Statement | None) -> list[str]:
    """The changed stretches between two versions, each with a word of context."""
    if old is None or new is None:
        return []
    fragments = []
    for change in compare(old, new).changes:
        if change.field not in ("body", "title", "figures"):
            continue
        if change.before and change.after:
            fragments += _hunks(change.before, change.after)
        else:
            fragments.append(change.before or change.after)
    return [f.strip() for f in fragments if f.strip() and len(f) <= _MAX_FRAGMENT]


def _hunks(before: str, after: str) -> list[str]:
    """Each run of changed words between two texts (the new words, or the old where none
    came), with the word on either side of it."""
    diffs, _ = word_diff(before, after)
    hunks = []
    for index, (op, _text) in enumerate(diffs):
        if op == EQUAL or (index and diffs[index - 1][0] != EQUAL):
            continue  # a hunk starts at its first non-equal piece
        end = index
        while end < len(diffs) and diffs[end][0] != EQUAL:
            end += 1
        hunk = diffs[index:end]
        changed = "".join(t for o, t in hunk if o > 0) or "".join(t for _, t in hunk)
        left = _LAST_WORD.search(diffs[index - 1][1]) if index else None
        right = _FIRST_WORD.search(diffs[end][1]) if end < len(diffs) else None
        hunks.append((left.group(1) if left else "") + changed + (right.group(1) if right else ""))
    return hunks


class FragmentCache:
    """Fragments per version id. Versions are never rewritten, so neither are the changes
    between one and its predecessor: each is diffed once per process, not per page view."""

    def __init__(self, size: int = 20_000) -> None:
        self.size = size
        self._known: dict[int, list[str]] = {}

    def get(self, store: Store, row: VerdictRow) -> list[str]:
        fragments = self._known.get(row["version_id"])
        if fragments is None:
            if len(self._known) >= self.size:
                self._known.pop(next(iter(self._known)))
            fragments = self._known[row["version_id"]] = _fragments_of(store, row)
        return fragments


def ignore_suggestions(
    store: Store, watch: WatchConfig, cache: FragmentCache | None = None, limit: int = 8
) -> list[Suggestion]:
    """From the newest 200 verdicts of the watch (recent judgement is what matters)."""
    cache = cache or FragmentCache()
    counts: Counter[str] = Counter()
    examples: dict[str, str] = {}
    significant: list[str] = []
    for row in store.verdicts(watch.id):
        fragments = cache.get(store, row)
        if row["verdict"] == "significant":
            significant += fragments
            continue
        for fragment in set(fragments):
            pattern = generalise(fragment)
            # Something must stay literal: a pattern of digits and spaces alone masks too much.
            if not _LETTER.search(_NUMBER.sub("", fragment)):
                continue
            counts[pattern] += 1
            examples.setdefault(pattern, fragment)
    known = set(watch.ignore)
    suggestions = []
    for pattern, count in counts.most_common():
        if pattern in known:
            continue
        compiled = re.compile(pattern)
        if any(compiled.search(text) for text in significant):
            continue
        suggestions.append(Suggestion(pattern, count, examples[pattern]))
        if len(suggestions) == limit:
            break
    return suggestions


def _fragments_of(store: Store, row: VerdictRow) -> list[str]:
    previous = store.version_at(row["document_id"], row["seq"] - 1)
    return noise_fragments(_statement(store, previous), _statement(store, row))


def _statement(store: Store, row: VerdictRow | VersionWithDocumentRow | None) -> Statement | None:
    if row is None or not row["text_sha256"]:
        return None
    return Statement.from_json(store.read_blob(row["text_sha256"]))
