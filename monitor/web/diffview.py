"""A diff laid out for reading: paragraphs aligned, changed ones word-diffed, long unchanged
stretches folded, and title / date / links apart from the text.

`monitor.diff.compare` says *what* changed, sentence by sentence, for alerts; this module
says *where* in the whole statement, paragraph by paragraph, for the page. Both use the
same word diff (`monitor.diff.word_diff`), so a highlight and an alert never disagree.

What is diffed came from a site, and the ignore rules from users: the UI runs `view_of`
in a worker process under time and memory limits (monitor/isolate.py), never in the
server's event loop. A diff over a limit is shown as a page saying so (`failed_view`).
"""

from __future__ import annotations

import contextlib
import difflib
import os
from collections import OrderedDict
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Generic, Literal, TypeVar

from monitor.diff import DELETE, EQUAL, INSERT, Change, ChangedField, compare, word_diff
from monitor.extract import Statement

# Unchanged paragraphs kept visible on each side of a change.
CONTEXT = 1
# Niceness of the UI's diff worker (see view_in_worker).
_NICENESS = 10


@dataclass(frozen=True)
class Piece:
    op: int  # EQUAL, DELETE or INSERT
    text: str


BlockKind = Literal["same", "changed", "added", "removed", "fold"]


@dataclass
class Block:
    kind: BlockKind
    pieces: list[Piece] = field(default_factory=list)
    folded: list[str] = field(default_factory=list)  # the paragraphs of a fold

    @property
    def before(self) -> list[Piece]:
        return [p for p in self.pieces if p.op != INSERT]

    @property
    def after(self) -> list[Piece]:
        return [p for p in self.pieces if p.op != DELETE]

    @property
    def is_change(self) -> bool:
        return self.kind in ("changed", "added", "removed")


@dataclass
class FieldChange:
    field: ChangedField  # never the body, which the blocks show
    where: str
    pieces: list[Piece]


@dataclass
class DiffView:
    blocks: list[Block]
    fields: list[FieldChange]
    summary: str
    score: float
    # Ignore rules that ran out of time on these versions and were not applied.
    problems: list[str] = field(default_factory=list)
    # The versions could not be compared (a worker's limit): `problems` says why.
    failed: bool = False

    @property
    def changes(self) -> int:
        return len(self.fields) + sum(1 for block in self.blocks if block.is_change)


def diff_view(old: Statement | None, new: Statement | None, ignore: list[str]) -> DiffView:
    result = compare(old, new, ignore)
    blocks = _fold(_align(old.paragraphs if old else (), new.paragraphs if new else ()))
    fields = [_field(change) for change in result.changes if change.field != "body"]
    if old is None and new is not None:  # first version: the title is news too
        fields.insert(0, FieldChange("title", "title", [Piece(INSERT, new.title)]))
    return DiffView(blocks, fields, result.summary, result.score, result.problems)


def view_of(old: bytes | None, new: bytes | None, ignore: list[str]) -> DiffView:
    """`diff_view` of two stored statements (canonical JSON), for a worker process: the
    parsing of the stored text happens there too."""
    return diff_view(
        Statement.from_json(old) if old is not None else None,
        Statement.from_json(new) if new is not None else None,
        ignore,
    )


def view_in_worker(old: bytes | None, new: bytes | None, ignore: list[str]) -> DiffView:
    """`view_of` in the UI's worker process, at a lower CPU priority: a hostile diff takes
    the CPU the server needs to answer everyone else only when nobody else wants it."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, 0, _NICENESS)
    return view_of(old, new, ignore)


_V = TypeVar("_V")


class PairCache(Generic[_V]):
    """Diffs by the pair of versions they are between (and the ignore rules they were made
    with): versions are never rewritten, so a diff is computed once per process, not on
    every view (the diff of a 30 KB statement, 450 ms under 20 readers, was computed on
    each request). The least recently used go first past `size`.

    A key names the versions by id, so an edited watch's new ignore rules make new keys
    and its old diffs age out unused. One per server, used by its one thread."""

    def __init__(self, size: int = 256) -> None:
        self.size = size
        self._known: OrderedDict[Hashable, _V] = OrderedDict()

    @staticmethod
    def key(a: int | None, b: int, ignore: Sequence[str]) -> Hashable:
        return (a, b, tuple(ignore))

    def get(self, key: Hashable) -> _V | None:
        found = self._known.get(key)
        if found is not None:
            self._known.move_to_end(key)
        return found

    def put(self, key: Hashable, value: _V) -> None:
        self._known[key] = value
        self._known.move_to_end(key)
        while len(self._known) > self.size:
            self._known.popitem(last=False)

    def __len__(self) -> int:
        return len(self._known)


def failed_view(reason: str) -> DiffView:
    return DiffView([], [], "", 0.0, [reason], failed=True)


def _align(old: tuple[str, ...], new: tuple[str, ...]) -> list[Block]:
    # Spacing-only differences are markup churn (see monitor.diff), so paragraphs are
    # matched with whitespace squashed out.
    matcher = difflib.SequenceMatcher(
        a=[_squash(p) for p in old], b=[_squash(p) for p in new], autojunk=False
    )
    blocks: list[Block] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            blocks += [Block("same", [Piece(EQUAL, p)]) for p in new[b1:b2]]
            continue
        olds, news = old[a1:a2], new[b1:b2]
        for index in range(max(len(olds), len(news))):
            before = olds[index] if index < len(olds) else None
            after = news[index] if index < len(news) else None
            if before is not None and after is not None:
                diffs, _ = word_diff(before, after)
                blocks.append(Block("changed", [Piece(o, t) for o, t in diffs]))
            elif before is not None:
                blocks.append(Block("removed", [Piece(DELETE, before)]))
            elif after is not None:
                blocks.append(Block("added", [Piece(INSERT, after)]))
    return blocks


def _fold(blocks: list[Block]) -> list[Block]:
    """Unchanged runs keep CONTEXT paragraphs next to each change; the rest is folded."""
    out: list[Block] = []
    index = 0
    while index < len(blocks):
        if blocks[index].kind != "same":
            out.append(blocks[index])
            index += 1
            continue
        end = index
        while end < len(blocks) and blocks[end].kind == "same":
            end += 1
        run = blocks[index:end]
        head = CONTEXT if index > 0 else 0  # context after a change above
        tail = CONTEXT if end < len(blocks) else 0  # context before a change below
        if len(run) - head - tail >= 2:
            middle = run[head : len(run) - tail]
            out += run[:head]
            out.append(Block("fold", folded=[b.pieces[0].text for b in middle]))
            out += run[len(run) - tail :]
        else:
            out += run
        index = end
    return out


def _field(change: Change) -> FieldChange:
    # A document's paragraph is read like a caption: whole, word-diffed, with its page in
    # `where` ("the PDF “Full text” changed: page 2, paragraph 3").
    if change.field in ("title", "figures", "documents") and change.before and change.after:
        diffs, _ = word_diff(change.before, change.after)
        pieces = [Piece(op, text) for op, text in diffs]
    else:
        pieces = [Piece(DELETE, change.before)] if change.before else []
        pieces += [Piece(INSERT, change.after)] if change.after else []
    return FieldChange(change.field, change.where, pieces)


def _squash(text: str) -> str:
    return "".join(text.split())
