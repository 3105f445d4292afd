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
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from difflib import SequenceMatcher
from functools import lru_cache, partial
from itertools import pairwise
from typing import TYPE_CHECKING, Any

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

_START, _END = None, None
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

    @property
    def has_text(self) -> bool:
        return self.read is not None

    def loaded(self) -> Text:
        """The text, read now (the learner's cache keeps it between reads)."""
        assert self.read is not None, "a removal has no text"
        return self.read()


@dataclass
class _Evidence:
    changed: set[int] = field(default_factory=set)  # pair indexes
    significant: bool = False
    run: int = 0
    example: str = ""


# What changed between two versions, as learning counts it: ("shape", form, 1, shown) or
# ("slot", (before, after), run, shown).
Change = tuple[str, Any, int, str]


def learn_from_history(
    key: str,
    versions: Sequence[VersionText],
    seen: dict[tuple[Any, Any], list[Change]] | None = None,
) -> list[LearnedItem]:
    """Slots and shapes of one statement, from its versions (oldest first). `seen` keeps
    the changes of pairs already compared (by their texts' hashes, else version ids):
    after an edit, learning again compares only the newest pair."""
    pairs = [
        (a, b)
        for a, b in pairwise(versions)
        if a.has_text
        and b.has_text
        # A version of kind "baseline" after the first was read again under changed
        # extraction rules: the rules' doing, not the page's.
        and b.kind != "baseline"
    ]
    slots, shapes = _evidence(pairs, seen)
    return _slot_items(key, pairs, slots) + _shape_items(key, pairs, shapes)


_Pairs = Sequence[tuple[VersionText, VersionText]]
_Slot = tuple[str | None, str | None]


def _evidence(
    pairs: _Pairs, seen: dict[tuple[Any, Any], list[Change]] | None
) -> tuple[dict[_Slot, _Evidence], dict[str, _Evidence]]:
    """What changed across the pairs, slot by slot and shape by shape: only what `_judge`
    may take whatever its count comes to (a watch's learning then reads few shapes, see
    `Text`)."""
    slots: dict[_Slot, _Evidence] = {}
    shapes: dict[str, _Evidence] = {}
    for index, (a, b) in enumerate(pairs):
        for kind, where, run, shown in _pair_changes(a, b, seen):
            evidence = (shapes if kind == "shape" else slots).setdefault(where, _Evidence())
            evidence.changed.add(index)
            evidence.significant |= b.verdict == "significant"
            evidence.run = max(evidence.run, run)
            evidence.example = shown
    return (
        {where: evidence for where, evidence in slots.items() if _judgeable(evidence)},
        {form: evidence for form, evidence in shapes.items() if _judgeable(evidence)},
    )


def _slot_items(key: str, pairs: _Pairs, slots: dict[_Slot, _Evidence]) -> list[LearnedItem]:
    items = []
    for (before, after), evidence in slots.items():
        stood = sum(
            1
            for a, b in pairs
            if _between(a.loaded().normals, before, after)
            or _between(b.loaded().normals, before, after)
        )
        item = _judge("slot", {"before": before, "after": after}, evidence, stood, key)
        if item is not None:
            items.append(replace(item, pattern={**item.pattern, "run": evidence.run}))
    return items


def _shape_items(key: str, pairs: _Pairs, shapes: dict[str, _Evidence]) -> list[LearnedItem]:
    items = []
    for form, evidence in shapes.items():
        stood = sum(1 for a, _b in pairs if form in a.loaded().shapes)
        item = _judge("shape", {"shape": form}, evidence, stood, key)
        if item is not None:
            items.append(item)
    return items


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


def _pair_count(rows: Sequence[Mapping[str, Any]]) -> int:
    """How many consecutive pairs of these versions (oldest first) `learn_from_history`
    compares: both with text, the later not a baseline."""
    return sum(
        1
        for a, b in pairwise(rows)
        if a["text_sha256"] and b["text_sha256"] and b["kind"] != "baseline"
    )


def _changes(ta: Text, tb: Text) -> list[Change]:
    """The slots and shapes that changed from one version's text to the next."""
    na, nb = ta.normals, tb.normals
    size = min(ta.words, tb.words)
    changes: list[Change] = []
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
                    changes.append(("shape", forms[offset], 1, tb.paragraphs[j1 + offset]))
            continue
        before = na[i1 - 1] if i1 > 0 else _START
        after = na[i2] if i2 < len(na) else _END
        if before is _START and after is _END:
            continue  # the whole statement: never furniture
        if max(_words(olds), _words(news)) > MAX_SHARE_OF_TEXT * size:
            continue
        shown = " / ".join(tb.paragraphs[j1:j2]) or " / ".join(ta.paragraphs[i1:i2])
        changes.append(("slot", (before, after), max(len(olds), len(news)), shown))
    return changes


def _judgeable(evidence: _Evidence) -> bool:
    """Whether `_judge` may learn an item from this evidence, depending on how often the
    item stood (else it never does)."""
    return not evidence.significant and len(evidence.changed) >= MIN_CHANGES


def _judge(
    kind: str, pattern: dict[str, Any], evidence: _Evidence, stood: int, key: str
) -> LearnedItem | None:
    hits = len(evidence.changed)
    if not _judgeable(evidence) or hits < SHARE * max(stood, hits):
        return None
    what = "changed" if kind == "slot" else "changed its numbers"
    reason = (
        f"{what} in {hits} of {max(stood, hits)} consecutive versions of {key} "
        f"(newest {WINDOW}); none marked significant"
    )
    learned_item = _store().LearnedItem
    return learned_item(kind, _fingerprint(kind, pattern), pattern, _clip(evidence.example), reason)


def _between(normals: Sequence[str], before: str | None, after: str | None) -> bool:
    """Whether both neighbours of a slot stand in this text, in order."""
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
        self._pairs: OrderedDict[tuple[Any, Any], list[Change]] = OrderedDict()
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
        started = time.thread_time()
        items: dict[str, LearnedItem] = {}
        for rows in self.store.recent_versions(watch_id, WINDOW).values():
            if _pair_count(rows) < MIN_CHANGES:
                # Too few consecutive pairs of texts to learn anything from: no item can
                # have changed in MIN_CHANGES of them (see `_judge`). Reading the texts
                # and comparing them cost most of a young statement's edit.
                continue
            history = [
                VersionText(
                    row["id"],
                    row["seq"],
                    row["kind"],
                    row["verdict"],
                    row["text_sha256"],
                    partial(self._text, row["text_sha256"]) if row["text_sha256"] else None,
                )
                for row in rows
            ]
            for item in learn_from_history(rows[-1]["key"], history, self._pairs):
                items.setdefault(item.fingerprint, item)
        while len(self._pairs) > 4 * _CACHE:
            self._pairs.popitem(last=False)
        added, dropped = self.store.store_learned("watch", watch_id, list(items.values()))
        self._account(started, "watch", watch_id, len(items), added, dropped)
        return list(items.values())

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
