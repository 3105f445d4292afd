"""Learned furniture: what the archive shows is not news, per watch and per host.

Fixed rules (the site profiles) drop the noise of any page. What they cannot know is one
site's own: a "featured" story inside the article that rotates on every visit, a number
that moves on every check, a notice pasted into every page of a host. The archive knows.
Three kinds of item are learned from it:

* **slot** (per watch): the paragraphs between two neighbours that stayed, when they
  changed in at least `MIN_CHANGES`, and at least `SHARE`, of the consecutive versions
  (among a statement's newest `WINDOW`) in which those neighbours stood, and no version
  that changed them was marked significant by a person. Masked: what stands between the
  same two neighbours, when it is no more paragraphs than were ever seen there.
* **shape** (per watch): a paragraph whose words stay and whose numbers change, as often.
  Masked: its numbers only; its words are still compared.
* **template** (per host): a paragraph found, numbers aside, in the newest version of at
  least `TEMPLATE_MIN`, and at least half, of the host's `HOST_SAMPLE` most recently
  changed statements in one language. Masked: that paragraph. Kept `TEMPLATE_KEEP` after
  it was last found, so that pages archived with the old template compare quietly too.

Masking happens only where a check decides whether a change alerts (`LearnedFurniture.
compare`); what is archived never changes. A user may say an item is not furniture
(`monitor furniture forget`, the web UI): it is no longer masked and never learned again.
`monitor compare` on two files has no archive and so only the fixed rules.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import struct
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from functools import lru_cache, partial
from itertools import pairwise
from typing import TYPE_CHECKING, Any, TypeVar, overload

from monitor.diff import DiffResult, compare
from monitor.extract import Statement

if TYPE_CHECKING:  # imported where used: see `_store`
    from monitor.config import WatchConfig
    from monitor.store import NewVersion, Store
    from monitor.store.furniture import LearnedItem
    from monitor.store.records import FurnitureRow

logger = logging.getLogger("monitor.learned")

# A block is furniture after changing in this many versions, and in this share of them.
MIN_CHANGES = 3
SHARE = 0.6
# Versions of each statement that learning reads: a carousel that stopped is forgotten
# once it has not moved for this long.
WINDOW = 30
# A change larger than this share of the statement's words is not learned as furniture:
# a statement rewritten on every check is news every time.
MAX_SHARE_OF_TEXT = 0.4
# Templates: found in this many of the host's most recently changed statements, and in
# at least half of those in the same language.
TEMPLATE_MIN = 5
TEMPLATE_SHARE = 0.5
HOST_SAMPLE = 20
TEMPLATE_KEEP = 7 * 86400.0
# A host's templates are learned again when a comparison needs them and its versions were
# stored since: this many, and at least HOST_COST_FACTOR times the last learning's cost
# later (so it takes at most 1/20 of the time: 100 ms at 2,000 statements, at most every
# 2 s on a busy host), or any number this long after.
HOST_RELEARN_AFTER = 5
HOST_COST_FACTOR = 20.0
HOST_RELEARN_EVERY = 600.0
# Parsed statements kept for learning again (each ~10 KB).
_CACHE = 256
# The rules that made the evidence the archive keeps (what changed from one text to the
# next, a text's digest: see `LearnedFurniture.learn_watch`): kept evidence of other rules
# is not read but found again. Bump it with any change to what `_changes`, `normal`,
# `shape`, `MAX_SHARE_OF_TEXT` or `Digest` make (tests/test_learned_evidence.py).
RULES = 1
# The form of a statement's window as the archive keeps it (`_Window`): a window of another
# form is not read but made again. Bump it with any change to what `_Window` holds or how it
# is written (tests/test_learned_evidence.py).
WINDOW_FORMAT = 2

_START, _END = None, None
_T = TypeVar("_T", str, int)
_NUMBER = re.compile(r"\d+(?:[\s.,:/-]\d+)*")


def normal(text: str) -> str:
    """A paragraph as learning compares it: spaces collapsed, case folded."""
    return " ".join(text.split()).casefold()


def shape(text: str) -> str:
    """A normal paragraph with its numbers masked ("views: 4 116" -> "views: #")."""
    return _NUMBER.sub("#", text)


# A paragraph's normal form, and a normal form's shape, for masking a comparison's two
# sides and for learning: an edit's old and new statements share most paragraphs, and the
# old one was the new one of the edit before (the worker that masks keeps these between
# comparisons). Apart: learning a watch needs the shapes of a few changed paragraphs only,
# and the number pattern costs twice what the normal form does.
@lru_cache(maxsize=8192)
def _normal(paragraph: str) -> str:
    return normal(paragraph)


@lru_cache(maxsize=8192)
def _shape(normalised: str) -> str:
    return shape(normalised)


def normal_shape(paragraph: str) -> tuple[str, str]:
    normalised = _normal(paragraph)
    return normalised, _shape(normalised)


@lru_cache(maxsize=8192)
def _hash(text: str) -> int:
    """A normal form or a shape as `Digest` keeps it: 64 bits of its BLAKE2b."""
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")


def _fingerprint(kind: str, key: Any) -> str:
    data = json.dumps([kind, key], ensure_ascii=False, sort_keys=True).encode()
    return hashlib.sha256(data).hexdigest()


def _words(paragraphs: Iterable[str]) -> int:
    return sum(len(p.split()) for p in paragraphs)


def _clip(text: str, width: int = 200) -> str:
    return text if len(text) <= width else text[: width - 1].rstrip() + "…"


# --- learning --------------------------------------------------------------------------------


class Text:
    """A version's paragraphs as learning reads them, worked out once (and cached by the
    learner between learnings): normal forms, the number of words, and the shapes when
    first asked for (a host's templates read them all; a watch's learning, those of its
    changed paragraphs and of the shapes that changed often enough to judge)."""

    __slots__ = ("_forms", "_shapes", "normals", "paragraphs", "words")

    def __init__(self, paragraphs: Sequence[str]) -> None:
        self.paragraphs = tuple(paragraphs)
        # Through `_normal`'s cache: a host learns again from the new versions of
        # statements whose paragraphs it mostly read before (half of a learning's CPU).
        self.normals = [_normal(p) for p in self.paragraphs]
        self._forms: list[str] | None = None
        self._shapes: set[str] | None = None
        # `_words`: a normal form is its words joined by single spaces (case folding makes
        # no white space), so its words are its spaces and one.
        self.words = sum(n.count(" ") + 1 for n in self.normals if n)

    @property
    def forms(self) -> list[str]:
        """Each paragraph's shape, in order."""
        if self._forms is None:
            self._forms = [_shape(n) for n in self.normals]
        return self._forms

    @property
    def shapes(self) -> set[str]:
        if self._shapes is None:
            self._shapes = set(self.forms)
        return self._shapes

    def between(self, before: str | None, after: str | None) -> bool:
        """Whether a slot's two neighbours stand in this text, in order."""
        return _between(self.normals, before, after)

    def has_shape(self, form: str) -> bool:
        return form in self.shapes


class Digest:
    """What counting where an item stood reads of a text (`between`, `has_shape`, as
    `Text` answers them, of `_hash`ed normal forms and shapes): its paragraphs' normal
    forms in order, and its shapes that hold a "#". A shape item's always does: its
    paragraph's numbers changed, so its shape holds the "#" that stands for them. The
    archive keeps it, so that a statement's next edit need not read every text of its
    window again (see `LearnedFurniture.learn_watch`)."""

    __slots__ = ("_first", "_last", "normals", "shapes")

    def __init__(self, normals: Sequence[int], shapes: Iterable[int]) -> None:
        self.normals = list(normals)
        self.shapes = frozenset(shapes)
        self._first: dict[int, int] | None = None
        self._last: dict[int, int] = {}

    @classmethod
    def of(cls, text: Text) -> Digest:
        return cls([_hash(n) for n in text.normals], {_hash(f) for f in text.shapes if "#" in f})

    def between(self, before: int | None, after: int | None) -> bool:
        """`_between` of its normal forms, from where each stands first and last."""
        if self._first is None:
            self._first = {}
            for index, hashed in enumerate(self.normals):
                self._first.setdefault(hashed, index)
                self._last[hashed] = index
        start = 0
        if before is not None:
            first = self._first.get(before)
            if first is None:
                return False
            start = first + 1
        return after is None or self._last.get(after, -1) >= start

    def has_shape(self, form: int) -> bool:
        return form in self.shapes

    def to_bytes(self) -> tuple[bytes, bytes]:
        """(normals, shapes) as the archive keeps them: little-endian, shapes sorted."""
        shapes = sorted(self.shapes)
        return (
            struct.pack(f"<{len(self.normals)}Q", *self.normals),
            struct.pack(f"<{len(shapes)}Q", *shapes),
        )

    @classmethod
    def from_bytes(cls, normals: bytes, shapes: bytes) -> Digest:
        return cls(
            struct.unpack(f"<{len(normals) // 8}Q", normals),
            struct.unpack(f"<{len(shapes) // 8}Q", shapes),
        )


@dataclass(frozen=True)
class VersionText:
    """A version as learning reads it: how to read its text (None: a removal), its text's
    hash and people's verdict."""

    version_id: int
    seq: int
    kind: str
    verdict: str | None
    # The text's hash: the changes between two texts are the same whichever versions hold
    # them (a statement back and forth, two watches of one page), learnt once.
    text_sha256: str | None
    # Read when learning first needs it: after an edit, the changes of the older pairs are
    # known (see `learn_from_history`), and reading every text of the window from the
    # archive again (once the learner's cache had let it go) was most of a watch's learning.
    read: Callable[[], Text] | None
    # Its digest, for counting where items stood when their evidence is hashed (`_Kept`).
    digest: Callable[[], Digest] | None = None

    @classmethod
    def of(
        cls,
        row: Mapping[str, Any],
        read: Callable[[], Text] | None,
        digest: Callable[[], Digest] | None = None,
    ) -> VersionText:
        """A version as `Store.recent_versions` gives it."""
        return cls(
            row["id"], row["seq"], row["kind"], row["verdict"], row["text_sha256"], read, digest
        )

    @property
    def has_text(self) -> bool:
        return self.read is not None

    def loaded(self) -> Text:
        """The text, read now (the learner's cache keeps it between reads)."""
        assert self.read is not None, "a removal has no text"
        return self.read()

    def standing(self) -> Any:
        """What counting where an item stood reads of it (`between`, `has_shape`): its
        digest, else its text."""
        return self.digest() if self.digest is not None else self.loaded()


@dataclass
class _Evidence:
    changed: set[int] = field(default_factory=set)  # pair indexes
    significant: bool = False
    run: int = 0
    # The last change's example (its words, or, hashed, where to read them: see `_Kept`).
    example: Any = ""


# What changed between two versions, as learning counts it: ("shape", form, 1, shown) or
# ("slot", (before, after), run, shown). As the archive keeps it (`_kept_changes`), its
# slot's neighbours and its shape are `_hash`ed, and it shows `_Span`: what it replaced.
Change = tuple[str, Any, int, Any]
# A change's place: the paragraphs it replaced in the older text (i1 to i2) and the newer
# (j1 to j2), as `SequenceMatcher` gives them; a shape's is one paragraph of each.
_Span = tuple[int, int, int, int]
# From an item's evidence to its (neighbours or shape) and example in words.
_Words = Callable[[str, Any, "_Evidence", "_Pairs"], tuple[Any, str]]


def learn_from_history(
    key: str,
    versions: Sequence[VersionText],
    seen: dict[tuple[Any, Any], list[Change]] | None = None,
) -> list[LearnedItem]:
    """Slots and shapes of one statement, from its versions (oldest first). `seen` keeps
    the changes of pairs already compared (by their texts' hashes, else version ids):
    after an edit, learning again compares only the newest pair. `LearnedFurniture`
    learns the same from what the archive kept (`_Kept`)."""
    pairs = _pairs(versions)
    return _learn(key, pairs, [_pair_changes(a, b, seen) for a, b in pairs], _as_shown)


_Pairs = Sequence[tuple[VersionText, VersionText]]
_Slot = tuple[Any, Any]


def _pairs(versions: Sequence[VersionText]) -> list[tuple[VersionText, VersionText]]:
    """The consecutive pairs of versions that learning compares (see `_pair_keys`)."""
    return [
        (a, b)
        for a, b in pairwise(versions)
        if a.has_text
        and b.has_text
        # A version of kind "baseline" after the first was read again under changed
        # extraction rules: the rules' doing, not the page's.
        and b.kind != "baseline"
    ]


def _learn(
    key: str, pairs: _Pairs, changes: Sequence[Sequence[Change]], words: _Words
) -> list[LearnedItem]:
    """The items the pairs' changes make (`changes[i]` are those of `pairs[i]`), whose
    neighbours, shapes and examples `words` gives (the changes' own, or read again)."""
    slots, shapes = _evidence(pairs, changes)
    return _slot_items(key, pairs, slots, words) + _shape_items(key, pairs, shapes, words)


def _evidence(
    pairs: _Pairs, changes: Sequence[Sequence[Change]]
) -> tuple[dict[_Slot, _Evidence], dict[Any, _Evidence]]:
    """What changed across the pairs, slot by slot and shape by shape: only what `_judge`
    may take whatever its count comes to (a watch's learning then reads few shapes, see
    `Text`)."""
    slots: dict[_Slot, _Evidence] = {}
    shapes: dict[Any, _Evidence] = {}
    for index, ((_a, b), found) in enumerate(zip(pairs, changes, strict=True)):
        for kind, where, run, shown in found:
            evidence = (shapes if kind == "shape" else slots).setdefault(where, _Evidence())
            evidence.changed.add(index)
            evidence.significant |= b.verdict == "significant"
            evidence.run = max(evidence.run, run)
            evidence.example = (index, shown)
    return (
        {where: evidence for where, evidence in slots.items() if _judgeable(evidence)},
        {form: evidence for form, evidence in shapes.items() if _judgeable(evidence)},
    )


def _slot_items(
    key: str, pairs: _Pairs, slots: dict[_Slot, _Evidence], words: _Words
) -> list[LearnedItem]:
    items = []
    # Each text's, once: counting asks them for every slot.
    standing = [(a.standing(), b.standing()) for a, b in pairs] if slots else []
    for (before, after), evidence in slots.items():
        stood = sum(1 for a, b in standing if a.between(before, after) or b.between(before, after))
        if _accepted(evidence, stood):
            (before, after), example = words("slot", (before, after), evidence, pairs)
            pattern = {"before": before, "after": after, "run": evidence.run}
            items.append(_judge("slot", pattern, evidence, stood, key, example))
    return items


def _shape_items(
    key: str, pairs: _Pairs, shapes: dict[Any, _Evidence], words: _Words
) -> list[LearnedItem]:
    items = []
    standing = [a.standing() for a, _b in pairs] if shapes else []
    for form, evidence in shapes.items():
        stood = sum(1 for a in standing if a.has_shape(form))
        if _accepted(evidence, stood):
            form, example = words("shape", form, evidence, pairs)
            items.append(_judge("shape", {"shape": form}, evidence, stood, key, example))
    return items


def _as_shown(_kind: str, where: Any, evidence: _Evidence, _held: _Pairs) -> tuple[Any, str]:
    """An item's words as its changes (`_changes`) hold them."""
    return where, evidence.example[1]


def _pair_changes(
    a: VersionText, b: VersionText, seen: dict[tuple[Any, Any], list[Change]] | None
) -> list[Change]:
    """`_changes` of a pair, from `seen` when that pair was compared before (by the texts'
    hashes, else the version ids: a pair held by several versions is compared once)."""
    ids: tuple[Any, Any] = (a.version_id, b.version_id)
    if a.text_sha256 and b.text_sha256:
        ids = (a.text_sha256, b.text_sha256)
    changes = seen.get(ids) if seen is not None else None
    if changes is None:
        changes = _changes(a.loaded(), b.loaded())
        if seen is not None:
            seen[ids] = changes
    return changes


def _pair_keys(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """The texts' hashes of the consecutive pairs of these versions (oldest first) that
    `learn_from_history` compares: both with text, the later not a baseline."""
    return [
        (a["text_sha256"], b["text_sha256"])
        for a, b in pairwise(rows)
        if a["text_sha256"] and b["text_sha256"] and b["kind"] != "baseline"
    ]


def _changes(ta: Text, tb: Text) -> list[Change]:
    """The slots and shapes that changed from one version's text to the next."""
    return [
        (kind, where, run, _shown(kind, span, ta, tb))
        for kind, where, run, span in _changed(ta, tb)
    ]


def _kept_changes(ta: Text, tb: Text) -> list[Change]:
    """`_changes` as the archive keeps them: neighbours and shapes hashed, where each
    change stands instead of its words (read again for the few items judged)."""
    return [(kind, _hashed(kind, where), run, span) for kind, where, run, span in _changed(ta, tb)]


def _changed(ta: Text, tb: Text) -> Iterator[tuple[str, Any, int, _Span]]:
    """The slots and shapes that changed from one text to the next, each with its span."""
    na, nb = ta.normals, tb.normals
    size = min(ta.words, tb.words)
    matcher = SequenceMatcher(a=na, b=nb, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        olds, news = na[i1:i2], nb[j1:j2]
        # The shapes of the changed paragraphs only (through `_shape`'s cache): the number
        # pattern over every changed paragraph, uncached, was a third of a learning.
        forms = [_shape(o) for o in olds]
        if len(olds) == len(news) and forms == [_shape(n) for n in news]:
            for offset, (old, new) in enumerate(zip(olds, news, strict=True)):
                if old != new:
                    i, j = i1 + offset, j1 + offset
                    yield "shape", forms[offset], 1, (i, i + 1, j, j + 1)
            continue
        before = na[i1 - 1] if i1 > 0 else _START
        after = na[i2] if i2 < len(na) else _END
        if before is _START and after is _END:
            continue  # the whole statement: never furniture
        if max(_words(olds), _words(news)) > MAX_SHARE_OF_TEXT * size:
            continue
        yield "slot", (before, after), max(len(olds), len(news)), (i1, i2, j1, j2)


def _shown(kind: str, span: _Span, ta: Text, tb: Text) -> str:
    """What a change shows: its paragraph of the newer text, or its slot's paragraphs of
    the newer text (of the older when it removed them)."""
    i1, i2, j1, j2 = span
    if kind == "shape":
        return tb.paragraphs[j1]
    return " / ".join(tb.paragraphs[j1:j2]) or " / ".join(ta.paragraphs[i1:i2])


def _hashed(kind: str, where: Any) -> Any:
    if kind == "shape":
        return _hash(where)
    return tuple(None if w is None else _hash(w) for w in where)


def _encode_changes(changes: Sequence[Change]) -> str:
    """`_kept_changes` as the archive keeps them (JSON)."""
    return json.dumps(changes, separators=(",", ":"))


def _decode_changes(kept: str) -> list[Change]:
    return [
        (kind, tuple(where) if kind == "slot" else where, run, tuple(span))
        for kind, where, run, span in json.loads(kept)
    ]


def _judgeable(evidence: _Evidence) -> bool:
    """Whether `_judge` may learn an item from this evidence, depending on how often the
    item stood (else it never does)."""
    return not evidence.significant and len(evidence.changed) >= MIN_CHANGES


def _accepted(evidence: _Evidence, stood: int) -> bool:
    """Whether the item is learned, having stood in `stood` of the pairs."""
    hits = len(evidence.changed)
    return _judgeable(evidence) and hits >= SHARE * max(stood, hits)


def _judge(
    kind: str, pattern: dict[str, Any], evidence: _Evidence, stood: int, key: str, example: str
) -> LearnedItem:
    """The item `_accepted` learns."""
    hits = len(evidence.changed)
    what = "changed" if kind == "slot" else "changed its numbers"
    reason = (
        f"{what} in {hits} of {max(stood, hits)} consecutive versions of {key} "
        f"(newest {WINDOW}); none marked significant"
    )
    # A slot's fingerprint is of its neighbours: its run may grow, the item stays.
    key_pattern = {k: v for k, v in pattern.items() if k != "run"}
    learned_item = _store().LearnedItem
    return learned_item(kind, _fingerprint(kind, key_pattern), pattern, _clip(example), reason)


def _between(normals: Sequence[_T], before: _T | None, after: _T | None) -> bool:
    """Whether both neighbours of a slot stand in this text, in order (normal forms, or
    their hashes in a `Digest`)."""
    start = 0
    if before is not None:
        if before not in normals:
            return False
        start = normals.index(before) + 1
    return after is None or after in normals[start:]


def learn_templates(host: str, statements: Sequence[Statement]) -> list[LearnedItem]:
    """Template paragraphs of a host, from the newest versions of its statements (each
    statement once: keys repeat across watches, a generic page's is always "page")."""
    return _templates(host, [(s.language, Text(s.paragraphs)) for s in statements])


def _templates(host: str, texts: Sequence[tuple[str | None, Text]]) -> list[LearnedItem]:
    """`learn_templates` of statements given as (language, Text): a host learns again from
    mostly the same statements, whose Texts the learner keeps."""
    by_language: dict[str, list[Text]] = {}
    for language, text in texts:
        by_language.setdefault(language or "", []).append(text)
    items = []
    for language, group in sorted(by_language.items()):
        holders: dict[str, set[int]] = {}
        examples: dict[str, str] = {}
        for number, text in enumerate(group):
            for paragraph, form in zip(text.paragraphs, text.forms, strict=True):
                if form:
                    holders.setdefault(form, set()).add(number)
                    examples[form] = paragraph
        for form, keys in holders.items():
            if len(keys) < TEMPLATE_MIN or len(keys) < TEMPLATE_SHARE * len(group):
                continue
            where = f" ({language})" if language else ""
            reason = (
                f"on {len(keys)} of the {len(group)} most recently changed statements"
                f"{where} of {host}"
            )
            pattern = {"shape": form}
            fingerprint = _fingerprint("template", pattern)
            items.append(
                _store().LearnedItem(
                    "template", fingerprint, pattern, _clip(examples[form]), reason
                )
            )
    return items


# --- masking ---------------------------------------------------------------------------------


def compare_masked(mask: Mask, old: Statement, new: Statement, ignore: Sequence[str]) -> DiffResult:
    """`diff.compare` with `mask` applied to both sides (`LearnedFurniture.compare` once the
    mask is read; a check runs it in a worker process, see monitor/isolate.py)."""
    if not mask:
        return compare(old, new, ignore)
    masked = compare(mask.apply(old), mask.apply(new), ignore)
    if masked.changed:
        return masked
    whole = compare(old, new, ignore)
    if whole.changed:
        masked.summary = f"only learned furniture changed: {whole.summary}"
    return masked


class Mask:
    """What a watch's learned furniture hides from a comparison."""

    def __init__(self, rows: Iterable[FurnitureRow]) -> None:
        self.slots: list[tuple[str | None, str | None, int]] = []
        self.shapes: set[str] = set()
        self.templates: set[str] = set()
        for row in rows:
            pattern = row["pattern"]
            if row["kind"] == "slot":
                self.slots.append((pattern["before"], pattern["after"], int(pattern["run"])))
            elif row["kind"] == "shape":
                self.shapes.add(pattern["shape"])
            elif row["kind"] == "template":
                self.templates.add(pattern["shape"])

    def __bool__(self) -> bool:
        return bool(self.slots or self.shapes or self.templates)

    def key(self) -> tuple[Any, ...]:
        """What the mask hides, as a hashable value: two masks with equal keys mask alike."""
        return (tuple(self.slots), tuple(sorted(self.shapes)), tuple(sorted(self.templates)))

    def apply(self, statement: Statement) -> Statement:
        """The statement without its furniture: slots and templates left out (with the
        links whose words were theirs), numbers of shapes masked."""
        pairs = [normal_shape(p) for p in statement.paragraphs]
        normals = [normalised for normalised, _ in pairs]
        forms = [form for _, form in pairs]
        drop = self._dropped(normals, forms)
        if not drop and not any(form in self.shapes for form in forms):
            return statement
        kept, gone = [], []
        for i, paragraph in enumerate(statement.paragraphs):
            if i in drop:
                gone.append(normals[i])
            elif forms[i] in self.shapes:
                kept.append(_NUMBER.sub("#", paragraph))
            else:
                kept.append(paragraph)
        links = tuple(link for link in statement.links if not _words_of(link.text, gone))
        return replace(statement, paragraphs=tuple(kept), links=links)

    def _dropped(self, normals: Sequence[str], forms: Sequence[str]) -> set[int]:
        """Indexes of the paragraphs that are a template, or fill a slot between its two
        anchors (no more than the slot's run of them)."""
        drop = {i for i, form in enumerate(forms) if form in self.templates}
        for before, after, run in self.slots:
            starts = [-1] if before is None else [i for i, n in enumerate(normals) if n == before]
            for start in starts:
                end = _next(normals, after, start + 1)
                if end is not None and 1 <= end - start - 1 <= run:
                    drop.update(range(start + 1, end))
        return drop


def _words_of(link_text: str, gone: Sequence[str]) -> bool:
    """Whether a link's words were those of a dropped paragraph (it goes with it)."""
    words = normal(link_text)
    return bool(words) and any(words in text for text in gone)


def _next(normals: Sequence[str], after: str | None, start: int) -> int | None:
    if after is None:
        return len(normals)
    for index in range(start, len(normals)):
        if normals[index] == after:
            return index
    return None


# --- the check stage's hook ----------------------------------------------------------------


class LearnedFurniture:
    """Learns a watch's furniture after its edits are stored, a host's templates when a
    comparison needs them, and masks both where a check decides whether a change alerts."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._statements: OrderedDict[str, Statement] = OrderedDict()
        self._texts: OrderedDict[str, Text] = OrderedDict()
        # What learning found in pairs of texts (`_kept_changes`) and in texts (`Digest`),
        # by their hashes, as the archive keeps them.
        self._changes: OrderedDict[tuple[str, str], list[Change]] = OrderedDict()
        self._digests: OrderedDict[str, Digest] = OrderedDict()
        # What learning found in each statement's window (`_Window`), by document id.
        self._windows: OrderedDict[int, _Window] = OrderedDict()
        self._host_learned: dict[str, float] = {}
        self._host_cost: dict[str, float] = {}
        self._host_stored: dict[str, int] = {}
        # What learning cost, for the log and the README's figures.
        self.learned = 0
        self.seconds = 0.0

    def compare(
        self, watch: WatchConfig, old: Statement | None, new: Statement | None
    ) -> DiffResult:
        """`diff.compare` with the watch's learned furniture masked on both sides. A change
        to furniture alone compares as no change, its summary saying what moved."""
        if old is None or new is None:
            return compare(old, new, watch.ignore)
        return compare_masked(self.mask(watch), old, new, watch.ignore)

    def mask(self, watch: WatchConfig) -> Mask:
        host = _store().host_of(watch.url)
        self._learn_host_if_due(host)
        return Mask(self.store.mask_items(watch.id, host))

    def stored(self, watch: WatchConfig, versions: Sequence[NewVersion]) -> None:
        """After a check stored versions: an edit teaches the watch at once; the host
        learns when a comparison next needs its templates."""
        if not versions:
            return
        host = _store().host_of(watch.url)
        self._host_stored[host] = self._host_stored.get(host, 0) + len(versions)
        if any(v.kind in ("edited", "restored") for v in versions):
            try:
                self.learn_watch(watch.id)
            except Exception:  # learning must never cost a check
                logger.exception("%s: could not learn furniture", watch.id)

    def remember(self, statements: Mapping[str, Statement]) -> None:
        """Statements by text hash that a check already holds (its new versions' and their
        predecessors'): learning then need not read them back from the archive."""
        for sha256, statement in statements.items():
            self._statements[sha256] = statement
            self._statements.move_to_end(sha256)
        while len(self._statements) > _CACHE:
            self._statements.popitem(last=False)

    def learn_watch(self, watch_id: str) -> list[LearnedItem]:
        """Learn a watch's slots and shapes again from its statements' newest versions: the
        items `learn_from_history` finds in their texts, from what the last learning found
        in each statement's window (`_Window`, held or kept in the archive). An edit then
        compares its own pair of texts only and judges from the window's running counts:
        reading and comparing every text of the window again, as each `check --once` did (a
        new process each time), grew with the history, and so did going over the window's
        kept evidence at each edit. A window that cannot go on to this one (none kept, a
        verdict changed) is made again from what the archive kept of its pairs (`_Kept`)."""
        started = time.thread_time()
        items: dict[str, LearnedItem] = {}
        histories = [
            rows
            for rows in self.store.recent_versions(watch_id, WINDOW).values()
            # Too few consecutive pairs of texts to learn anything from: no item can have
            # changed in MIN_CHANGES of them (see `_judgeable`). Reading the texts and
            # comparing them cost most of a young statement's edit.
            if len(_pair_keys(rows)) >= MIN_CHANGES
        ]
        kept = _Kept(self, histories)
        windows = self._held_windows([rows[-1]["document_id"] for rows in histories])
        plans = []
        for rows in histories:
            pairs = _RowPairs(rows, kept)
            ids = pairs.ids()
            window = windows.get(rows[-1]["document_id"])
            held = _advanced(window, ids) if window is not None else None
            if window is None or held is None:
                window, held = _Window(), 0
            plans.append((rows, pairs, ids, window, held))
        entering = [
            [pairs[i] for i in range(held, len(pairs))] for _r, pairs, _i, _w, held in plans
        ]
        kept.fetch([pair for pairs in entering for pair in pairs])
        for (rows, pairs, ids, window, held), new in zip(plans, entering, strict=True):
            document = rows[-1]["document_id"]
            try:
                judged = _go_on(window, new, ids[held:], rows[-1]["key"], pairs, kept)
            except Exception:
                if not held:
                    raise
                # A kept window spoilt (a faulty write, a hand, a disk): made again from the
                # pairs, as one of another form is. Else its watch learnt nothing at any
                # edit while the row stayed.
                logger.warning("statement %s: its kept learning window made again", document)
                window = _Window()
                kept.fetch(list(pairs))
                judged = _go_on(window, list(pairs), ids, rows[-1]["key"], pairs, kept)
            for item in judged:
                items.setdefault(item.fingerprint, item)
            kept.windows.append((document, window.encode()))
            self._windows[document] = window
        while len(self._windows) > _CACHE:
            self._windows.popitem(last=False)
        kept.keep()
        for cache in (self._changes, self._digests):
            while len(cache) > 4 * _CACHE:
                cache.popitem(last=False)
        added, dropped = self.store.store_learned("watch", watch_id, list(items.values()))
        self._account(started, "watch", watch_id, len(items), added, dropped)
        return list(items.values())

    def _held_windows(self, documents: Sequence[int]) -> dict[int, _Window]:
        """The windows of these statements as the last learning left them: held (taken
        out, so that a learning that fails leaves none half gone on), else kept."""
        windows = {d: self._windows.pop(d) for d in documents if d in self._windows}
        unheld = [d for d in documents if d not in windows]
        if unheld:
            for document, state in self.store.learned_windows(unheld, RULES):
                try:
                    window = _Window.decode(state)
                except TypeError:  # not a list (spoilt): made again
                    window = None
                if window is not None:
                    windows[document] = window
        return windows

    def learn_host(self, host: str) -> list[LearnedItem]:
        started = time.thread_time()
        self._host_learned[host] = time.monotonic()
        self._host_stored[host] = 0
        rows = self.store.newest_texts(host, HOST_SAMPLE)
        shas = [row["text_sha256"] for row in rows]
        items = _templates(host, [(self._statement(sha).language, self._text(sha)) for sha in shas])
        added, dropped = self.store.store_learned("host", host, items, TEMPLATE_KEEP)
        self._host_cost[host] = self._account(started, "host", host, len(items), added, dropped)
        return items

    def _learn_host_if_due(self, host: str) -> None:
        stored = self._host_stored.get(host, 0)
        last = self._host_learned.get(host)
        if not stored:
            return
        if last is not None:
            since = time.monotonic() - last
            soon = since < HOST_COST_FACTOR * self._host_cost.get(host, 0.0)
            if since < HOST_RELEARN_EVERY and (stored < HOST_RELEARN_AFTER or soon):
                return
        try:
            self.learn_host(host)
        except Exception:  # learning must never cost a check
            logger.exception("%s: could not learn template furniture", host)

    def _holds(self, sha256: str) -> bool:
        """Whether the learner holds this text (a check gave it, or it was read)."""
        return sha256 in self._texts or sha256 in self._statements

    def _statement(self, sha256: str) -> Statement:
        return _cached(
            self._statements, sha256, lambda: Statement.from_json(self.store.read_blob(sha256))
        )

    def _text(self, sha256: str) -> Text:
        return _cached(self._texts, sha256, lambda: Text(self._statement(sha256).paragraphs))

    def _account(
        self, started: float, scope: str, scope_id: str, found: int, added: int, dropped: int
    ) -> float:
        # CPU time, not the clock: the host's relearning is paced to a share of the CPU, and
        # a loaded machine stretching the wall-clock time would space it out for nothing.
        spent = time.thread_time() - started
        self.learned += 1
        self.seconds += spent
        if added or dropped:
            logger.info(
                "%s %s: learned furniture: %d items (%d new, %d dropped) in %.1f ms of CPU",
                scope,
                scope_id,
                found,
                added,
                dropped,
                spent * 1000,
            )
        return spent


class _Kept:
    """What the archive kept of one learning's pairs and texts (`Store.learned_pairs`,
    `learned_texts`), read once for all the pairs the learner does not hold, and for all
    the texts once a digest is first asked for. What it did not keep (a new pair, a store
    from before schema 16, a process stopped before its batch was written) is found from
    the texts and kept with the batch of unchanged checks (`Store.keep_learned`)."""

    def __init__(self, learner: LearnedFurniture, histories: Sequence[Sequence[Any]]) -> None:
        self.learner = learner
        self.texts = {row["text_sha256"] for rows in histories for row in rows}
        self.texts.discard(None)
        self.unkept: set[tuple[str, str]] = set()  # compared now (`changes`), then kept
        self.read = False
        self.found: list[str] = []
        self.windows: list[tuple[int, str]] = []

    def fetch(self, pairs: Iterable[tuple[VersionText, VersionText]]) -> None:
        """Read what the archive kept of these pairs that the learner does not hold, in one
        query. An edit's own pair alone is compared at once: it is new, and asking cost
        more than nothing (a kept one compares the same)."""
        held = self.learner._changes
        wanted = {(a.text_sha256 or "", b.text_sha256 or "") for a, b in pairs}
        wanted -= held.keys()
        if len(wanted) > 1:
            olds = {old for old, _new in wanted}
            for old, new, changes in self.learner.store.learned_pairs(olds, RULES):
                if (old, new) in wanted:
                    held[old, new] = _decode_changes(changes)
                    wanted.discard((old, new))
        self.unkept |= wanted

    def version(self, row: Mapping[str, Any]) -> VersionText:
        """A version of the window, its text read and its digest found when needed."""
        sha = row["text_sha256"]
        if not sha:
            return VersionText.of(row, None)
        return VersionText.of(row, partial(self.learner._text, sha), partial(self.digest, sha))

    def changes(self, a: VersionText, b: VersionText) -> list[Change]:
        """`_kept_changes` of a pair: held, kept, or compared now."""
        key = (a.text_sha256 or "", b.text_sha256 or "")
        changes = self.learner._changes.get(key)
        if changes is None:
            changes = self.learner._changes[key] = _kept_changes(a.loaded(), b.loaded())
        return changes

    def digest(self, sha256: str) -> Digest:
        """A text's `Digest`: held, kept, or made now (at once from a text the learner
        holds: an edit's own two)."""
        digests = self.learner._digests
        digest = digests.get(sha256)
        if digest is None and not self.read and not self.learner._holds(sha256):
            self.read = True
            unread = [sha for sha in self.texts if sha not in digests]
            for sha, normals, shapes in self.learner.store.learned_texts(unread, RULES):
                digests[sha] = Digest.from_bytes(normals, shapes)
            digest = digests.get(sha256)
        if digest is None:
            digest = digests[sha256] = Digest.of(self.learner._text(sha256))
            self.found.append(sha256)
        return digest

    def pair_standing(self, a: VersionText, b: VersionText) -> tuple[Digest, Digest]:
        """The digests of a pair's two texts."""
        return self.digest(a.text_sha256 or ""), self.digest(b.text_sha256 or "")

    def standing(self, pairs: _Pairs) -> list[tuple[Digest, Digest]]:
        """The digests of every pair's two texts."""
        return [self.pair_standing(a, b) for a, b in pairs]

    def words(self, kind: str, _where: Any, evidence: _Evidence, pairs: _Pairs) -> tuple[Any, str]:
        """An item's neighbours or shape, and example, read from the texts of the last
        pair that changed it (`_Words`; the newest pair's are those the check holds)."""
        index, (i1, i2, j1, j2) = evidence.example
        a, b = pairs[index]
        ta, tb = a.loaded(), b.loaded()
        example = _shown(kind, (i1, i2, j1, j2), ta, tb)
        if kind == "shape":
            return _shape(ta.normals[i1]), example
        before = ta.normals[i1 - 1] if i1 > 0 else _START
        after = ta.normals[i2] if i2 < len(ta.normals) else _END
        return (before, after), example

    def keep(self) -> None:
        """Keep what this learning found that the archive did not hold."""
        changes = self.learner._changes
        pairs = [
            (a, b, _encode_changes(changes[a, b])) for a, b in self.unkept if (a, b) in changes
        ]
        texts = [(sha, *self.learner._digests[sha].to_bytes()) for sha in self.found]
        self.learner.store.keep_learned(pairs, texts, RULES, self.windows)


def _advanced(window: _Window, pairs: Sequence[_PairId]) -> int | None:
    """`window.advance(pairs)`, or None (made again) when the window, kept, is spoilt: a
    list that `_Window.decode` took but not as a window writes it."""
    try:
        return window.advance(pairs)
    except (TypeError, ValueError, IndexError, KeyError):
        return None


def _go_on(
    window: _Window,
    new: Sequence[tuple[VersionText, VersionText]],
    ids: Sequence[_PairId],
    key: str,
    pairs: _Pairs,
    kept: _Kept,
) -> list[LearnedItem]:
    """The window gone on by its new pairs (`ids` theirs), judged."""
    for (a, b), pair in zip(new, ids, strict=True):
        window.add(pair, kept.changes(a, b), partial(kept.pair_standing, a, b))
    return window.judge(key, pairs, kept)


# A pair of a window as `_Window` knows it: its two versions' ids (a version's text never
# changes), and whether people marked the newer one significant.
_PairId = list[Any]


class _RowPairs(Sequence[tuple[VersionText, VersionText]]):
    """The pairs `_pairs` makes of a window's versions (`Store.recent_versions` rows), each
    made a `VersionText` only when asked for: an edit reads its own pair's, and making all
    of them cost as much as the rest of its learning."""

    def __init__(self, rows: Sequence[Mapping[str, Any]], kept: _Kept) -> None:
        self.rows = [
            (a, b)
            for a, b in pairwise(rows)
            if a["text_sha256"] and b["text_sha256"] and b["kind"] != "baseline"
        ]
        self.kept = kept

    def ids(self) -> list[_PairId]:
        """Each pair as `_Window` knows it: its versions' ids, and whether people marked
        the newer one significant."""
        return [[a["id"], b["id"], b["verdict"] == "significant"] for a, b in self.rows]

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> tuple[VersionText, VersionText]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[VersionText, VersionText]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        a, b = self.rows[index]
        return self.kept.version(a), self.kept.version(b)


def _key(kind: str, where: Any) -> str:
    """A change's slot or shape (`_kept_changes`) as a window names it."""
    if kind == "shape":
        return f"shape:{where}"
    return ":".join(["slot", *("" if w is None else str(w) for w in where)])


def _where(key: str) -> tuple[str, Any]:
    """(kind, where) of a window's name for it (`_key`)."""
    kind, *hashes = key.split(":")
    where = [int(h) if h else None for h in hashes]
    return kind, where[0] if kind == "shape" else tuple(where)


def _stands(kind: str, where: Any, a: Any, b: Any) -> bool:
    """Whether an item stood in a pair (its texts' digests), as `_slot_items` and
    `_shape_items` count it."""
    if kind == "shape":
        return bool(a.has_shape(where))
    return bool(a.between(*where) or b.between(*where))


class _Window:
    """What learning found in one statement's window, carried from one edit to the next so
    that an edit costs its own pair, not the window's 29: the window's pairs, oldest first,
    and each slot and shape that changed in them (`_kept_changes`, by `_key`) with the
    running counts that `_evidence` and `_slot_items` / `_shape_items` make over the whole
    window. Judged, it gives the items `learn_from_history` finds, in the same order.

    Each slot or shape holds [hits, span, stood, words]: the pairs it changed in, oldest
    first, as [newer version's id, its run there, its place among the pair's changes]; the
    span of its last change; the pairs it stood in, oldest first (counted from when it may
    be learned, see `_judgeable`, else None); and, once learned, [its neighbours or shape
    in words, its example, the pair that was read at]: read again from an older text at
    each edit, they were half a learning. All of it plain JSON, kept as it is read: a
    window is read at each edit of a statement (`check --once`), and making objects of it
    cost more than the rest of its learning. A slot or shape that is neither counted nor
    learned (most of them: changed once or twice, never judged) is kept as one string
    (`_pack`), read only when an edit touches it or it may be judged: a window holds a
    hundred of them, and making lists of each at every edit, then writing them out again,
    grew with the window.

    It depends on its pairs' texts and verdicts only, so one kept by a process that then
    stopped goes on to the window of later edits, and one that cannot (its pairs are not
    the start of the window's now: a verdict changed, or none of its pairs is left) is made
    again from the pairs' kept changes."""

    def __init__(self, pairs: list[_PairId] | None = None, found: dict[str, Any] | None = None):
        self.pairs: list[_PairId] = pairs or []
        self.found: dict[str, Any] = found or {}

    def advance(self, pairs: Sequence[_PairId]) -> int | None:
        """Let go of the pairs that left the window; how many of the window's pairs now
        (`pairs`, oldest first) it holds (the rest to `add`), or None: it cannot go on."""
        if not self.pairs or not pairs or pairs[0] not in self.pairs:
            return None
        start = self.pairs.index(pairs[0])
        held = self.pairs[start:]
        if list(pairs[: len(held)]) != held:
            return None
        gone = {pair[1] for pair in self.pairs[:start]}
        self.pairs = held
        if gone:
            # A packed one's first pair left when its string begins with that pair's id.
            leaving = tuple(f"{newer}." for newer in gone)
            for key, value in list(self.found.items()):
                if isinstance(value, str):
                    if not value.startswith(leaving):
                        continue
                    value = self.found[key] = _unpack(value)
                hits, _span, stood, _words = value
                while hits and hits[0][0] in gone:
                    del hits[0]
                while stood and stood[0] in gone:
                    del stood[0]
                if not hits:
                    del self.found[key]
        return len(held)

    def add(
        self,
        pair: _PairId,
        changes: Sequence[Change],
        standing: Callable[[], tuple[Digest, Digest]],
    ) -> None:
        """The window's next pair: its changes (`_kept_changes`), and where the items being
        counted stood in it (its texts' digests, from `standing`)."""
        counted = [
            (key, value[2])
            for key, value in self.found.items()
            if not isinstance(value, str) and value[2] is not None
        ]
        self.pairs.append(pair)
        newer = pair[1]
        found = self.found
        for place, (kind, where, run, span) in enumerate(changes):
            key = _key(kind, where)
            value = found.get(key)
            if value is None:
                found[key] = _pack([[[newer, run, place]], span, None, None])
                continue
            if isinstance(value, str):
                value = found[key] = _unpack(value)
            hits = value[0]
            if hits[-1][0] != newer:
                hits.append([newer, run, place])
            elif run > hits[-1][1]:
                hits[-1][1] = run
            value[1] = span
        if counted:
            a, b = standing()
            for key, stood in counted:
                if _stands(*_where(key), a, b):
                    stood.append(newer)

    def judge(self, key: str, pairs: _Pairs, kept: _Kept) -> list[LearnedItem]:
        """The items of the window (whose pairs are `pairs`), as `_learn` judges them."""
        assert len(pairs) == len(self.pairs), "a window judged with other pairs"
        index = {pair[1]: i for i, pair in enumerate(self.pairs)}
        significant = {pair[1] for pair in self.pairs if pair[2]}
        judged = []
        for name, value in list(self.found.items()):
            if isinstance(value, str):
                # Fewer than MIN_CHANGES pairs (spaces between its hits): neither counted
                # nor judged, as below.
                if value.count(" ", 0, value.index("|")) < MIN_CHANGES - 1:
                    continue
                value = self.found[name] = _unpack(value)
            hits = value[0]
            if len(hits) < MIN_CHANGES or (
                significant and any(hit[0] in significant for hit in hits)
            ):
                value[2] = None  # `_judgeable` never takes it: not counted
            else:
                judged.append((*_where(name), value))
        uncounted = [(k, w, value) for k, w, value in judged if value[2] is None]
        if uncounted:
            standing = kept.standing(pairs)
            for kind, where, value in uncounted:
                value[2] = [
                    pair[1]
                    for pair, (a, b) in zip(self.pairs, standing, strict=True)
                    if _stands(kind, where, a, b)
                ]
        items = []
        for kind, where, value in judged:
            hits, span, stood, words = value
            last = hits[-1][0]
            evidence = _Evidence({hit[0] for hit in hits}, False, max(hit[1] for hit in hits))
            evidence.example = (index[last], tuple(span))
            if not _accepted(evidence, len(stood)):
                continue
            if words is None or words[2] != last:
                # Read at its last change: mostly the newest pair, whose texts the check holds.
                said, shown = kept.words(kind, where, evidence, pairs)
                words = value[3] = [said, _clip(shown), last]
            said, shown = words[0], words[1]
            if kind == "slot":
                pattern = {"before": said[0], "after": said[1], "run": evidence.run}
            else:
                pattern = {"shape": said}
            order = (kind == "shape", index[hits[0][0]], hits[0][2])
            items.append((order, _judge(kind, pattern, evidence, len(stood), key, shown)))
        items.sort(key=lambda item: item[0])
        return [item for _order, item in items]

    def encode(self) -> str:
        """As the archive keeps it (JSON): [WINDOW_FORMAT, pairs, found], each slot or
        shape neither counted nor learned `_pack`ed."""
        found = {
            key: _pack(value)
            if not isinstance(value, str) and value[2] is None and value[3] is None
            else value
            for key, value in self.found.items()
        }
        return json.dumps([WINDOW_FORMAT, self.pairs, found], separators=(",", ":"))

    @classmethod
    def decode(cls, state: str) -> _Window | None:
        """A kept window; None when it is of another form (made again)."""
        try:
            form, pairs, found = json.loads(state)
        except ValueError:
            return None
        if form != WINDOW_FORMAT or not isinstance(pairs, list) or not isinstance(found, dict):
            return None
        return cls(pairs, found)


def _pack(value: list[Any]) -> str:
    """A window's slot or shape that is neither counted nor learned ([hits, span, None,
    None]) as one string: "newer.run.place newer.run.place|i1.i2.j1.j2"."""
    hits, span = value[0], value[1]
    return (
        " ".join(f"{newer}.{run}.{place}" for newer, run, place in hits)
        + "|"
        + ".".join(str(int(i)) for i in span)
    )


def _unpack(packed: str) -> list[Any]:
    """A `_pack`ed slot or shape as the window works on it: [hits, span, None, None]."""
    hits, span = packed.split("|")
    return [
        [[int(n) for n in hit.split(".")] for hit in hits.split(" ")],
        [int(i) for i in span.split(".")],
        None,
        None,
    ]


def _store() -> Any:
    """monitor.store.furniture, imported on first use: the workers that mask and diff
    (monitor/isolate.py) import this module, and the store's SQLAlchemy and the
    configuration's channels cost their forkserver over half a second of CPU to import,
    at every start of `monitor check`."""
    from monitor.store import furniture

    return furniture


def _cached(cache: OrderedDict[str, Any], key: str, make: Callable[[], Any]) -> Any:
    """A least-recently-used cache of `_CACHE` entries."""
    value = cache.get(key)
    if value is None:
        value = cache[key] = make()
        if len(cache) > _CACHE:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value
