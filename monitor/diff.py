"""Diff stage: what changed between two versions of a statement, in words.

Body text is compared sentence by sentence, and within a changed sentence word by word with
diff-match-patch (words mapped to single characters, then `diff_main` + semantic cleanup):
character-level diffs of long pages hit dmp's time limit silently, word-level ones take
milliseconds. Title, date and links are compared as separate fields so an alert can say
which one moved.
"""

from __future__ import annotations

import difflib
import logging
import re
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import accumulate, chain
from typing import Any, Literal, NamedTuple

from diff_match_patch import diff_match_patch

from monitor.clock import parse_iso
from monitor.links import is_attachment, normalize_url
from monitor.statement import Document, Link, Statement
from monitor.userregex import RegexTimeout, UserRegex, compile_user_regex

logger = logging.getLogger("monitor.diff")

# Numbers stay whole ("1,250", "3.5", "14.11.2026", "1 250") so an alert says 1,250 → 1,520,
# not 250 → 520; otherwise a word, a punctuation mark or a run of spaces is one token.
_TOKEN = re.compile(r"\d{1,3}(?: \d{3})+(?!\d)|\d+(?:[.,]\d+)*|\w+|[^\w\s]|\s+")
# Sentence ends: . ! ? … followed by space and an upper-case letter, digit or quote. The
# space (group 1) is where a paragraph splits; the mark it follows is matched, not looked
# behind for: the same splits, found in half the time (a lookbehind is tried at every
# position, a leading character class lets the engine skip to the next mark).
_SENTENCE_END = re.compile(r"[.!?…](\s+)(?=[\"«“(\d\w])")
# A "sentence" ending in a word of one or two letters plus a period is an abbreviation or an
# initial (г. Астана, Mr. Smith, N. Nazarbayev, No. 5, ст. 12), not a sentence end.
_ABBREVIATION_END = re.compile(
    r"(?:^|[\s(«\"])(?:\w{1,2}\.)+$|\b(?:gen|prof|dept|approx|ст|стр|тел)\.$", re.I
)
_MASK = "⟨…⟩"
DIFF_TIMEOUT = 2.0
# Seconds one ignore rule that RE2 cannot run may spend on one comparison.
IGNORE_BUDGET = 1.0

EQUAL, DELETE, INSERT = 0, -1, 1

# What of a statement a change is in.
ChangedField = Literal["title", "published", "body", "figures", "links", "attachments", "documents"]


@dataclass(frozen=True)
class Change:
    field: ChangedField
    where: str  # human location, e.g. "paragraph 2, sentence 3"
    before: str  # the whole sentence/value before ("" when added)
    after: str  # the whole sentence/value after ("" when removed)
    removed: tuple[str, ...] = ()  # the changed fragments only
    added: tuple[str, ...] = ()

    def as_json(self) -> dict[str, Any]:
        """As alerts (the webhook's schema) and the API give it."""
        return {
            "field": self.field,
            "where": self.where,
            "before": self.before,
            "after": self.after,
            "removed": list(self.removed),
            "added": list(self.added),
        }


@dataclass
class DiffResult:
    changes: list[Change] = field(default_factory=list)
    score: float = 0.0
    summary: str = "no change"
    timed_out: bool = False
    # Why part of the comparison was not done as configured (an ignore rule over its time,
    # not applied): for that one watch's check to report.
    problems: list[str] = field(default_factory=list)
    # What changed that is no edit and never alerts: a file re-generated with the same text
    # (its metadata), OCR that read a scan differently. Shown with the version.
    notes: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def removed(self) -> list[str]:
        return [fragment for change in self.changes for fragment in change.removed]

    @property
    def added(self) -> list[str]:
        return [fragment for change in self.changes for fragment in change.added]


def word_diff(
    old: str, new: str, timeout: float = DIFF_TIMEOUT
) -> tuple[list[tuple[int, str]], bool]:
    """Word-level diff as (op, text) pairs, and whether dmp ran out of time."""
    tokens: dict[str, str] = {}
    words: dict[str, str] = {}  # a token's character -> the token

    def encode(text: str) -> str:
        found = _TOKEN.findall(text)
        # New tokens numbered in the order they first stand, as one by one.
        fresh = [token for token in dict.fromkeys(found) if token not in tokens]
        chars = _token_chars(len(tokens), len(fresh))
        tokens.update(zip(fresh, chars, strict=True))
        words.update(zip(chars, fresh, strict=True))
        return "".join(map(tokens.__getitem__, found))

    engine = diff_match_patch()
    engine.Diff_Timeout = timeout
    encoded_old, encoded_new = encode(old), encode(new)
    started = time.monotonic()
    diffs = engine.diff_main(encoded_old, encoded_new, False)
    timed_out = timeout > 0 and time.monotonic() - started >= timeout
    engine.diff_cleanupSemantic(diffs)
    decoded = [(op, "".join(map(words.__getitem__, text))) for op, text in diffs]
    return decoded, timed_out


# The characters of the first tokens of a diff (most diffs have no more), made once.
_TOKEN_CHARS: list[str] = []
_TOKEN_TABLE = 1 << 14


def _token_chars(start: int, count: int) -> list[str]:
    """`_token_char` of start, start + 1, ... (count of them)."""
    end = start + count
    if end > _TOKEN_TABLE:
        return [_token_char(index) for index in range(start, end)]
    if end > len(_TOKEN_CHARS):
        _TOKEN_CHARS.extend(map(_token_char, range(len(_TOKEN_CHARS), _TOKEN_TABLE)))
    return _TOKEN_CHARS[start:end]


def _token_char(index: int) -> str:
    # Start above control characters and step over the surrogate block, which str can't hold.
    code = 0x100 + index
    return chr(code + 0x800 if code >= 0xD800 else code)


def compare(
    old: Statement | None,
    new: Statement | None,
    ignore: Sequence[str | UserRegex] = (),
    ignore_budget: float = IGNORE_BUDGET,
) -> DiffResult:
    """Changes from `old` to `new`; text matching an `ignore` regex is masked on both sides.

    The regexes are users' (`monitor.userregex`): linear-time where RE2 can run them, else
    limited to `ignore_budget` seconds each for the whole comparison. A rule that runs out
    is not applied at all, on either side (half-masked text would show false changes), and
    `problems` says so: an edit shown that a rule meant to hide beats a daemon stuck in it.
    Raises UserRegexError for a rule that does not compile."""
    rules = [compile_user_regex(p) if isinstance(p, str) else p for p in ignore]
    if old is None or new is None:
        return _whole(old, new)
    problems: list[str] = []
    # Without ignore rules the paragraphs compared are the statement's own, and each one's
    # analysis (`_paragraph`) serves the spacing, the sentences and the score alike.
    squash = _paragraph_squash if not rules else _squash
    new_paragraphs = _as_before(old.paragraphs, new.paragraphs, squash)
    texts = [old.title, new.title, *old.paragraphs, *new_paragraphs, *old.figures, *new.figures]
    texts = _mask_all(texts, rules, ignore_budget, problems)
    title_old, title_new = texts[0], texts[1]
    body = texts[2 : len(texts) - len(old.figures) - len(new.figures)]
    masked_old, masked_new = body[: len(old.paragraphs)], body[len(old.paragraphs) :]
    figures = texts[len(texts) - len(old.figures) - len(new.figures) :]
    figures_old, figures_new = figures[: len(old.figures)], figures[len(old.figures) :]
    changes: list[Change] = []
    if _squash(title_old) != _squash(title_new):
        changes.append(_field_change("title", "title", title_old, title_new))
    date_old, date_new = old.published or "", new.published or ""
    if not same_moment(date_old, date_new):
        changes.append(Change("published", "date", date_old, date_new, (date_old,), (date_new,)))
    body_changes, timed_out = _body_changes(masked_old, masked_new)
    changes += body_changes
    changes += _figure_changes(figures_old, figures_new)
    changes += _link_changes(old.links + old.attachments, new.links + new.attachments)
    notes: list[str] = []
    if old.documents or new.documents:
        changes += _document_changes(old.documents, new.documents, rules, ignore_budget, notes)
    result = DiffResult(changes=changes, timed_out=timed_out, problems=problems, notes=notes)
    result.score = _score(result, old, _paragraph_words if not rules else _words)
    result.summary = summarize(result)
    if not changes and notes:
        result.summary = "no change; " + "; ".join(notes)
    elif not changes and date_old != date_new:
        # Archived (the stored text differs), but nothing a reader would call an edit.
        result.summary = f"no change (the date read to another precision: {date_old} → {date_new})"
    return result


def _whole(old: Statement | None, new: Statement | None) -> DiffResult:
    if old is None and new is None:
        return DiffResult()
    if old is None:
        assert new is not None
        change = Change("body", "statement", "", new.title, (), (new.title,))
        return DiffResult([change], 1.0, f'Published: "{new.title}"')
    change = Change("body", "statement", old.title, "", (old.title,), ())
    return DiffResult([change], 1.0, f'Removed: "{old.title}"')


# An ISO date as sites and our readers write it: "2026-11-03", "2026-11-03T10:15",
# "2026-11-03T10:15:00.000+05:00".
_ISO_MOMENT = re.compile(
    r"^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2})(?::(\d{2})(?:[.,]\d+)?)?)?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def same_moment(old: str, new: str) -> bool:
    """Whether two dates name the same moment as far as both tell: "2026-11-03T10:15"
    (the date a page shows, Astana wall clock) is the API's "2026-11-03T10:15:00.000+05:00"
    read less precisely, not an edit. Where both carry a zone, the instants are compared."""
    if old == new:
        return True
    a, b = _ISO_MOMENT.match(old.strip()), _ISO_MOMENT.match(new.strip())
    if a is None or b is None:
        return False
    if a[4] and b[4] and a[2] and b[2]:
        try:
            instants = [parse_iso(x) for x in (a[0], b[0])]
        except ValueError:
            return False
        return instants[0] == instants[1]
    # Wall clock: each part that both show must agree.
    return all(x == y for x, y in zip(a.groups()[:3], b.groups()[:3], strict=True) if x and y)


def _mask_all(
    texts: list[str], rules: Sequence[UserRegex], budget: float, problems: list[str]
) -> list[str]:
    """Every text with every rule's matches masked; a rule that spends more than `budget`
    seconds over all the texts is left out, for all of them, and named in `problems`."""
    for rule in rules:
        deadline = time.monotonic() + budget
        try:
            masked = [rule.sub(_MASK, text, deadline - time.monotonic()) for text in texts]
        except RegexTimeout:
            problem = f"ignore pattern {rule.pattern!r} took over {budget:g}s; not applied"
            logger.warning("%s", problem)
            problems.append(problem)
            continue
        texts = masked
    return texts


def _as_before(old: Sequence[str], new: Sequence[str], squash: Callable[[str], str]) -> list[str]:
    """`new`, with each paragraph that differs from an old one only in spacing taken as
    written before, so that a space after an initial ("С.В.Лавров" -> "С.В. Лавров")
    cannot move sentence boundaries."""
    same = {squash(paragraph): paragraph for paragraph in old}
    return [same.get(squash(paragraph), paragraph) for paragraph in new]


def split_sentences(paragraph: str) -> list[str]:
    """Sentences, without splitting after abbreviations and initials ("г.", "Mr.", "N.")."""
    return list(_paragraph(paragraph).sentences)


class _Paragraph(NamedTuple):
    """What a comparison needs of one paragraph, worked out once."""

    sentences: tuple[str, ...]
    squashed: tuple[str, ...]  # each sentence without its spaces (see `_body_changes`)
    words: int  # len(paragraph.split()): a paragraph's words are its sentences'


# The paragraphs of the last few statements compared: an edit's old text was the new text of
# the comparison before, a confirming look compares the same two texts again, and most
# paragraphs of an edit's two sides are the same.
@lru_cache(maxsize=4096)
def _paragraph(paragraph: str) -> _Paragraph:
    if _plain(paragraph):
        # Words are parted by single spaces: the sentences' too (see `_plain`).
        sentences = _split_sentences(paragraph, plain=True)
        squashed = tuple([sentence.replace(" ", "") for sentence in sentences])
        return _Paragraph(sentences, squashed, paragraph.count(" ") + 1)
    sentences = _split_sentences(paragraph)
    parts = list(map(str.split, sentences))
    return _Paragraph(sentences, tuple(map("".join, parts)), sum(map(len, parts)))


# What str.split() and re's \s take for a space, but for the space itself.
_OTHER_SPACES = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f\x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_ASCII_OTHER_SPACES = _OTHER_SPACES[:9]


def _plain(paragraph: str) -> bool:
    """Whether the paragraph's words are parted by single spaces, none at either end, and
    no other space (as the extraction writes them): then its words are its spaces plus
    one, and a sentence's text without spaces is the sentence less its spaces. A few
    searches in C, rather than splitting every word out."""
    if not paragraph or paragraph[0] == " " or paragraph[-1] == " " or "  " in paragraph:
        return False
    others = _ASCII_OTHER_SPACES if paragraph.isascii() else _OTHER_SPACES
    return not any(space in paragraph for space in others)


def _paragraph_squash(paragraph: str) -> str:
    """`_squash(paragraph)`: the paragraph's sentences are its text cut at spaces."""
    return "".join(_paragraph(paragraph).squashed)


def _paragraph_words(paragraph: str) -> int:
    return _paragraph(paragraph).words


def _words(paragraph: str) -> int:
    return len(paragraph.split())


# A paragraph cut at its sentence ends' spaces, as `_sentence_parts` cuts it, by `re.split`
# (in C): the text before each mark, the mark, ... the text after the last.
_SENTENCE_CUT = re.compile(r"([.!?…])\s+(?=[\"«“(\d\w])")
# A sentence end after a word of one or two letters, or after one of the abbreviations
# `_ABBREVIATION_END` knows: only there can `_ends_in_abbreviation` be true (a superset of
# it). A paragraph without one is cut at each end, with no sentence to join. (The period
# first and the lookbehinds after it: the engine skips to each period, 40 times faster
# than trying the word at every position.)
_MAYBE_ABBREVIATION = re.compile(
    r"\.(?:(?<=(?<!\w)\w\.)|(?<=(?<!\w)\w\w\.)"
    r"|(?<=\bgen\.)|(?<=\bprof\.)|(?<=\bdept\.)|(?<=\bapprox\.)"
    r"|(?<=\bст\.)|(?<=\bстр\.)|(?<=\bтел\.))\s+(?=[\"«“(\d\w])",
    re.I,
)


def _split_sentences(paragraph: str, plain: bool = False) -> tuple[str, ...]:
    """`_split_joining(paragraph)`, in C where no sentence can end in an abbreviation; a
    `plain` paragraph (see `_plain`) ending its sentences in periods only is cut by
    str.split at each ". " (a space is the only space it has)."""
    if _MAYBE_ABBREVIATION.search(paragraph) is not None:
        return _split_joining(paragraph)
    if plain and "!" not in paragraph and "?" not in paragraph and "…" not in paragraph:
        pieces = paragraph.split(". ")
        sentences = [pieces[0]]
        for piece in pieces[1:]:
            # A sentence starts with what `_SENTENCE_CUT` looks ahead for ([\d\w] is
            # isalnum() or "_"); else the period and space stay inside the sentence.
            if piece and (piece[0].isalnum() or piece[0] in _SENTENCE_STARTS):
                sentences[-1] += "."
                sentences.append(piece)
            else:
                sentences[-1] += ". " + piece
        return tuple(sentences)
    pieces = _SENTENCE_CUT.split(paragraph)
    if len(pieces) == 1:
        return (paragraph,) if paragraph.strip() else ()
    # Each sentence holds its mark (the last starts with a word): none is blank.
    sentences = list(map(str.__add__, pieces[0:-1:2], pieces[1::2]))
    sentences.append(pieces[-1])
    return tuple(sentences)


_SENTENCE_STARTS = '_"«“('


def _split_joining(paragraph: str) -> tuple[str, ...]:
    """`_split_sentences` of any paragraph: cut at each end, and a cut after an
    abbreviation joined again."""
    sentences: list[str] = []
    for part in _sentence_parts(paragraph):
        if not part.strip():
            continue
        if sentences and _ends_in_abbreviation(sentences[-1]):
            sentences[-1] += " " + part
        else:
            sentences.append(part)
    return tuple(sentences)


def _sentence_parts(paragraph: str) -> list[str]:
    """The paragraph cut at each sentence end's space (the space left out)."""
    parts, last = [], 0
    for match in _SENTENCE_END.finditer(paragraph):
        parts.append(paragraph[last : match.start(1)])
        last = match.end(1)
    parts.append(paragraph[last:])
    return parts


# A sentence whose last word (before its period) is longer than any abbreviation
# `_ABBREVIATION_END` knows (two letters, or "approx") ends no abbreviation: most sentences,
# told without searching.
_LONG_LAST_WORD = re.compile(r"\w{7}\.$")

# `_ABBREVIATION_END` is anchored at the end, yet its search over a whole sentence tried every
# position (a third of a comparison's time). Searched from near the end it finds the same
# matches (lookbehinds and `\b` still see the whole string), except one that starts before
# that point: only a run of initials longer than the tail can, and then the whole is searched.
_ABBREVIATION_TAIL = 40
_INITIALS_RUN = re.compile(r"[\w.]+")


def _ends_in_abbreviation(sentence: str) -> bool:
    if not sentence.endswith("."):
        return False
    if _LONG_LAST_WORD.search(sentence, len(sentence) - 8):
        return False
    start = len(sentence) - _ABBREVIATION_TAIL
    if start <= 0:
        return bool(_ABBREVIATION_END.search(sentence))
    if _ABBREVIATION_END.search(sentence, start):
        return True
    return bool(_INITIALS_RUN.fullmatch(sentence, start) and _ABBREVIATION_END.search(sentence))


def _body_changes(old: Sequence[str], new: Sequence[str]) -> tuple[list[Change], bool]:
    """The changes between two lists of (masked) paragraphs, sentence by sentence."""
    old_side, new_side = _Side(old), _Side(new)
    # Sentences are matched with spaces squashed out: a space that comes or goes around an
    # inline tag ("Astana , 20" vs "Astana, 20", "Kazakh stan" vs "Kazakhstan") is markup
    # churn, not an edit a reader could see.
    changes: list[Change] = []
    timed_out = False
    matcher = difflib.SequenceMatcher(a=old_side.squashed, b=new_side.squashed, autojunk=False)
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        # Pair sentences one to one where both sides changed; the rest are whole removals/additions.
        for index in range(max(a2 - a1, b2 - b1)):
            before = old_side.unit(a1 + index) if a1 + index < a2 else None
            after = new_side.unit(b1 + index) if b1 + index < b2 else None
            if before and after:
                after = (_in_context(after, new_side.sentences, b1 + index), after[1])
                change, slow = _sentence_change(before, after)
                timed_out |= slow
                changes.append(change)
            elif before:
                changes.append(Change("body", before[0], before[1], "", (before[1],), ()))
            elif after:
                changes.append(Change("body", after[0], "", after[1], (), (after[1],)))
    return _moves(changes), timed_out


class _Side:
    """One side's sentences in order, each with where it stands (worked out when asked:
    only changed sentences are named)."""

    def __init__(self, paragraphs: Sequence[str]) -> None:
        analysed = [_paragraph(paragraph) for paragraph in paragraphs]
        self.sentences = list(chain.from_iterable(p.sentences for p in analysed))
        self.squashed = list(chain.from_iterable(p.squashed for p in analysed))
        self.counts = [len(p.sentences) for p in analysed]
        self.starts = list(accumulate(self.counts, initial=0))[:-1]

    def unit(self, index: int) -> tuple[str, str]:
        """The sentence at `index` as (where, sentence): "paragraph 2, sentence 3"."""
        paragraph = bisect_right(self.starts, index) - 1
        where = f"paragraph {paragraph + 1}"
        if self.counts[paragraph] > 1:
            where += f", sentence {index - self.starts[paragraph] + 1}"
        return where, self.sentences[index]


# An edited unit of fewer words than this (a table cell, a figure in a list) is named with
# the text just before it: "paragraph 15, after “Evacuations from crisis areas · 1,204”".
_CONTEXT_WORDS = 4


def _in_context(unit: tuple[str, str], sentences: list[str], index: int) -> str:
    where, text = unit
    if len(text.split()) >= _CONTEXT_WORDS:
        return where
    before: list[str] = []
    for earlier in reversed(sentences[max(0, index - 3) : index]):
        before.insert(0, earlier)
        if len(" ".join(before).split()) >= _CONTEXT_WORDS:
            break
    if not before:
        return where
    context = " · ".join(before)
    if len(context) > 80:
        context = "…" + context[-79:].lstrip()
    return f"{where}, after “{context}”"


def _moves(changes: list[Change]) -> list[Change]:
    """A sentence removed in one place and added unchanged in another was moved."""
    added = {c.after: c for c in changes if c.after and not c.before}
    result = []
    paired: set[str] = set()
    for change in changes:
        moved_to = added.get(change.before) if change.before and not change.after else None
        if moved_to is not None and change.before not in paired:
            paired.add(change.before)
            where = f"{change.where} moved to {moved_to.where}"
            result.append(Change("body", where, change.before, change.before))
        elif not (change.after and not change.before and change.after in paired):
            result.append(change)
    # A moved sentence's addition may come before its removal; drop it in a second pass.
    return [c for c in result if not (c.after and not c.before and c.after in paired)]


def _sentence_change(before: tuple[str, str], after: tuple[str, str]) -> tuple[Change, bool]:
    diffs, timed_out = word_diff(before[1], after[1])
    removed = tuple(t.strip() for op, t in diffs if op == DELETE and t.strip())
    added = tuple(t.strip() for op, t in diffs if op == INSERT and t.strip())
    return Change("body", after[0], before[1], after[1], removed, added), timed_out


def _field_change(name: ChangedField, where: str, old: str, new: str) -> Change:
    diffs, _ = word_diff(old, new)
    removed = tuple(t.strip() for op, t in diffs if op == DELETE and t.strip())
    added = tuple(t.strip() for op, t in diffs if op == INSERT and t.strip())
    return Change(name, where, old, new, removed, added)


def _figure_changes(olds: Sequence[str], news: Sequence[str]) -> list[Change]:
    """Pictures that came or went, named by their caption (or alt text, both masked by the
    ignore rules); a caption reworded in place is named whole, old and new, as a title is."""
    matcher = difflib.SequenceMatcher(
        a=[_squash(text) for text in olds], b=[_squash(text) for text in news], autojunk=False
    )
    changes: list[Change] = []
    for op, a1, a2, b1, b2 in matcher.get_opcodes():
        if op == "equal":
            continue
        before, after = olds[a1:a2], news[b1:b2]
        for index in range(max(len(before), len(after))):
            if index < len(before) and index < len(after):
                changes.append(
                    _field_change("figures", "figure caption", before[index], after[index])
                )
            elif index < len(before):
                text = before[index]
                changes.append(Change("figures", "figure removed", text, "", (text,)))
            else:
                text = after[index]
                changes.append(Change("figures", "figure added", "", text, (), (text,)))
    return changes


def _document_changes(
    olds: Sequence[Document],
    news: Sequence[Document],
    rules: Sequence[UserRegex],
    budget: float,
    notes: list[str],
) -> list[Change]:
    """What changed in the statement's documents, paragraph by paragraph with the page named
    ("the PDF “Full text” changed: page 2, paragraph 3"). A document read for the first time
    is no change (its link's coming is one, see `_link_changes`); a file whose bytes changed
    but not its text changes only `notes` (its metadata), as does OCR noise: a word that a
    second read of the same scan did not confirm, or a word changed by a single character."""
    before = {normalize_url(document.href): document for document in olds}
    changes: list[Change] = []
    for new in news:
        old = before.get(normalize_url(new.href))
        if old is None or old.sha256 == new.sha256:
            continue
        named = f"the {new.kind} “{new.name}”"
        if not old.pages and not new.pages:
            where = f"{named} was replaced (its text is not read)"
            changes.append(Change("documents", where, old.sha256, new.sha256))
            continue
        old_units, new_units = _document_units(old), _document_units(new)
        texts = _mask_all([t for _, t in old_units] + [t for _, t in new_units], rules, budget, [])
        old_texts, new_texts = texts[: len(old_units)], texts[len(old_units) :]
        found, _ = _body_changes(old_texts, new_texts)
        unsure = set(old.ocr_unsure) | set(new.ocr_unsure)
        kept = 0
        for change in found:
            located, on_scan = _page_where(change, old, new, old_units, new_units)
            if on_scan and _ocr_noise(change, unsure):
                continue
            changes.append(
                Change(
                    "documents",
                    f"{named} changed: {located}",
                    change.before,
                    change.after,
                    change.removed,
                    change.added,
                )
            )
            kept += 1
        if not kept:
            notes.append(_same_text_note(named, old, new, bool(found)))
    return changes


def _document_units(document: Document) -> list[tuple[tuple[int, int], str]]:
    """Each paragraph of a document with its (page, paragraph on the page)."""
    return [
        ((page, index), paragraph)
        for page, paragraphs in enumerate(document.pages, start=1)
        for index, paragraph in enumerate(paragraphs, start=1)
    ]


_PARAGRAPH_AT = re.compile(r"paragraph (\d+)")


def _page_where(
    change: Change,
    old: Document,
    new: Document,
    old_units: list[tuple[tuple[int, int], str]],
    new_units: list[tuple[tuple[int, int], str]],
) -> tuple[str, bool]:
    """Where a change of the documents' paragraphs is, as "page 2, paragraph 3[, sentence
    1]", and whether it is on a page read by OCR. `_body_changes` numbers the paragraphs of
    the whole document: a removal's number is the old document's, any other the new's."""
    side, units = (old, old_units) if change.before and not change.after else (new, new_units)
    on_scan = False

    def located(match: re.Match[str]) -> str:
        nonlocal on_scan
        number = int(match.group(1))
        if not 1 <= number <= len(units):
            return match.group(0)
        page, index = units[number - 1][0]
        on_scan |= page in side.ocr_pages
        pages = len(side.pages) > 1 or side.kind == "PDF"
        return f"{side.page_label(page)}, paragraph {index}" if pages else f"paragraph {index}"

    return _PARAGRAPH_AT.sub(located, change.where), on_scan


def _ocr_noise(change: Change, unsure: set[str]) -> bool:
    """Whether a change on a scanned page is what OCR does, not what the file says: only
    words a second read did not confirm, or words that differ by a single character."""
    removed = re.findall(r"\w+", " ".join(change.removed).lower())
    added = re.findall(r"\w+", " ".join(change.added).lower())
    if not removed and not added:
        return True
    # What one read of a scan saw and the second read of the same bytes did not: the
    # change did not survive a re-OCR.
    if any(words and all(word in unsure for word in words) for words in (removed, added)):
        return True
    if len(removed) != len(added):
        return False
    return all(_one_apart(a, b) for a, b in zip(removed, added, strict=True))


def _one_apart(a: str, b: str) -> bool:
    """Whether two words differ by at most one character (changed, added or dropped)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        return sum(x != y for x, y in zip(a, b, strict=True)) <= 1
    short, long = (a, b) if len(a) < len(b) else (b, a)
    return any(long[:i] + long[i + 1 :] == short for i in range(len(long)))


def _same_text_note(named: str, old: Document, new: Document, ocr_only: bool) -> str:
    """The note of a file replaced without a change of its words."""
    if ocr_only:
        return f"{named} was replaced; its OCR text differs only by what OCR misreads"
    before, after = dict(old.metadata), dict(new.metadata)
    moved = [
        f"{name} “{before.get(name, '')}” → “{after.get(name, '')}”"
        for name in sorted(before.keys() | after.keys())
        if before.get(name, "") != after.get(name, "")
    ]
    said = ": " + ", ".join(moved) if moved else " (the same metadata)"
    return f"{named} was re-generated with the same text{said}"


def _link_changes(old: Sequence[Link], new: Sequence[Link]) -> list[Change]:
    """Links and attachments that came or went, matched by URL without tracking parameters."""
    old_set = {normalize_url(link.href): link for link in old}
    new_set = {normalize_url(link.href): link for link in new}
    changes = []
    for key in old_set.keys() - new_set.keys():
        link = old_set[key]
        text = f"{link.text} <{link.href}>"
        changes.append(Change(_link_field(link), f"{_link_kind(link)} removed", text, "", (text,)))
    for key in new_set.keys() - old_set.keys():
        link = new_set[key]
        text = f"{link.text} <{link.href}>"
        where = f"{_link_kind(link)} added"
        changes.append(Change(_link_field(link), where, "", text, (), (text,)))
    return sorted(changes, key=lambda c: (c.where, c.before, c.after))


def _link_field(link: Link) -> Literal["links", "attachments"]:
    return "attachments" if is_attachment(link.href) else "links"


def _link_kind(link: Link) -> str:
    return "attachment" if is_attachment(link.href) else "link"


# Sentences and paragraphs are squashed on both sides of a comparison, and most are the
# same on both: each is worked out once.
@lru_cache(maxsize=8192)
def _squash(text: str) -> str:
    return "".join(text.split())


def _score(result: DiffResult, old: Statement, words: Callable[[str], int] = _words) -> float:
    """0-1: how much of the statement moved, weighted so that any real edit counts.
    `words(paragraph)` is len(paragraph.split()) (or the same, worked out before)."""
    if not result.changes:
        return 0.0
    words_total = max(1, sum(map(words, old.paragraphs)))
    words_changed = sum(
        len(" ".join(c.removed).split()) + len(" ".join(c.added).split())
        for c in result.changes
        if c.field == "body"
    )
    if any(c.field == "documents" for c in result.changes):
        # A file's edit is an edit of the statement, however long the file.
        return 0.6
    score = 0.2 + 0.8 * min(1.0, 4 * words_changed / words_total) if words_changed else 0.0
    if not words_changed and any(" moved to " in c.where for c in result.changes):
        score = 0.1  # reordering changes emphasis, not wording
    fields = {c.field for c in result.changes}
    if "title" in fields:
        score = max(score, 0.6)
    if fields & {"published", "figures", "links", "attachments"}:
        score = max(score, 0.4)
    return round(min(score, 1.0), 3)


def summarize(result: DiffResult, limit: int = 3) -> str:
    """One sentence a journalist can paste: where and what changed."""
    if not result.changes:
        return "no change"
    parts = [_describe(change) for change in result.changes[:limit]]
    more = len(result.changes) - limit
    if more > 0:
        parts.append(f"and {more} more change{'s' if more > 1 else ''}")
    return "; ".join(parts)


def _describe(change: Change) -> str:
    where = change.where[0].upper() + change.where[1:]
    if " moved to " in change.where:
        return f"{where}: {_quote([change.before])}"
    if change.field == "title" or (change.field == "figures" and change.before and change.after):
        # A heading or a caption is short and read whole: "Title: “A” → “B”".
        return f"{where}: {_quote([change.before])} → {_quote([change.after])}"
    if change.field == "figures":
        return f"{where}: {_quote([change.before or change.after])}"
    if change.field == "documents" and not (change.removed or change.added):
        return where  # a file replaced whose text is not read
    if change.field in ("links", "attachments"):
        # The link's own words first (a button's "Download", a document's name), then where
        # it pointed.
        link = change.after or change.before
        text, _, href = link.rpartition(" <")
        named = f"{_quote([text])} <{href}" if text else f"<{href}"
        return f"{where}: {named}"
    if change.removed and change.added:
        return f"{where}: {_quote(change.removed)} → {_quote(change.added)}"
    if change.added:
        return f"{where}: added {_quote(change.added)}"
    return f"{where}: removed {_quote(change.removed)}"


def _quote(fragments: Sequence[str], width: int = 120) -> str:
    text = " … ".join(fragments)
    if len(text) > width:
        text = text[: width - 1].rstrip() + "…"
    return f"“{text}”"


def render_inline(old: str, new: str, color: bool = False) -> str:
    """Word diff as text: [-removed-]{+added+}, or ANSI colours for a terminal."""
    diffs, _ = word_diff(old, new)
    out = []
    for op, text in diffs:
        if op == EQUAL:
            out.append(text)
        elif op == DELETE:
            out.append(f"\x1b[31;9m{text}\x1b[0m" if color else f"[-{text}-]")
        else:
            out.append(f"\x1b[32;1m{text}\x1b[0m" if color else f"{{+{text}+}}")
    return "".join(out)
