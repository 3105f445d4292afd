"""Word-level diffs that name the sentence, on realistic statements."""

from __future__ import annotations

import random
import sys

from monitor import diff
from monitor.diff import compare, split_sentences, word_diff
from monitor.extract import Link, Statement
from monitor.replica import STATEMENTS, ReplicaSite

PARAGRAPH = (
    "The Ministry of Foreign Affairs of the Republic of Kazakhstan held consultations with the "
    "delegation of the partner country on paragraph {n} of the agenda. The parties discussed "
    "trade, transit and water resources, and agreed to continue the dialogue in Astana."
)


def statement(paragraphs: list[str], **fields: object) -> Statement:
    base: dict[str, object] = {
        "key": "en/1",
        "url": "https://www.gov.kz/x",
        "title": "Consultations",
        "paragraphs": tuple(paragraphs),
        "published": "2026-11-20T10:00:00.000+05:00",
        "language": "en",
        "links": (),
    }
    base.update(fields)
    return Statement(**base)  # type: ignore[arg-type]


def long_paragraphs() -> list[str]:
    # About 50 KB of text, like the longest briefings.
    return [PARAGRAPH.format(n=n) for n in range(1, 200)]


def test_one_word_deep_in_a_long_statement_is_named_by_paragraph_and_sentence() -> None:
    old = long_paragraphs()
    assert sum(len(p) for p in old) > 45_000
    new = list(old)
    new[150] = new[150].replace("agreed to continue", "declined to continue")
    result = compare(statement(old), statement(new))
    [change] = result.changes
    assert change.where == "paragraph 151, sentence 2"
    assert change.removed == ("agreed",) and change.added == ("declined",)
    assert change.before.startswith("The parties discussed") and "declined" in change.after
    assert result.summary == "Paragraph 151, sentence 2: “agreed” → “declined”"
    assert 0 < result.score < 0.5
    assert not result.timed_out


def test_whole_text_word_diff_of_50kb_does_not_time_out() -> None:
    old = "\n".join(long_paragraphs())
    new = old.replace("paragraph 7 ", "paragraph seven ").replace("water", "energy", 3)
    diffs, timed_out = word_diff(old, new)
    assert not timed_out
    assert "".join(text for op, text in diffs if op != 1) == old
    assert "".join(text for op, text in diffs if op != -1) == new


def test_changed_number_and_date() -> None:
    old = statement(["The cargo of 1,250 tonnes left on 26 November."])
    new = statement(
        ["The cargo of 1,520 tonnes left on 26 November."],
        published="2026-11-21T10:00:00.000+05:00",
    )
    result = compare(old, new)
    fields = {c.field: c for c in result.changes}
    assert fields["body"].removed == ("1,250",) and fields["body"].added == ("1,520",)
    assert fields["published"].before.startswith("2026-11-20")


def test_removed_attachment_link() -> None:
    link = Link("https://www.gov.kz/uploads/2026/11/statement.pdf", "Full text (PDF)")
    result = compare(statement(["Text."], links=(link,)), statement(["Text."]))
    [change] = result.changes
    assert change.field == "attachments" and change.where == "attachment removed"
    assert "statement.pdf" in change.removed[0]
    assert result.score >= 0.4


def test_swapped_paragraphs_are_reported() -> None:
    a, b = "First paragraph here.", "Second paragraph there."
    result = compare(statement([a, b]), statement([b, a]))
    [change] = result.changes
    assert change.where in ("paragraph 1 moved to paragraph 2", "paragraph 2 moved to paragraph 1")
    assert result.score == 0.1
    assert "moved" in result.summary


def test_ignored_text_scores_zero() -> None:
    old = statement(["Viewed 1,204 times. The statement text."])
    new = statement(["Viewed 1,377 times. The statement text."])
    assert compare(old, new, ignore=[r"Viewed [\d,]+ times"]).changes == []
    assert compare(old, new).changed


def test_abbreviations_do_not_split_sentences() -> None:
    assert split_sentences("Встреча прошла в г. Астане. Стороны согласились.") == [
        "Встреча прошла в г. Астане.",
        "Стороны согласились.",
    ]


def test_every_replica_statement_diffs_against_itself_as_unchanged() -> None:
    # Guards the tokeniser on Kazakh and Russian text: a round trip must lose nothing.
    with ReplicaSite():
        pass
    for item in STATEMENTS:
        for lang, text in item["texts"].items():
            diffs, _ = word_diff(text["body"], text["body"] + " ә")
            assert "".join(t for op, t in diffs if op != 1) == text["body"], lang


# The comparison's shortcuts give what the long way gives (bench/compare_golden.py shows
# the same on every pair at hand): seeded random texts, rich in what the shortcuts skip.
_PIECES = [*'aZ bcé.. !?…«“"()_12٣,-Ⅻ', " стр.", " тел.", " Gen.", " prof.", " approx."]
_PIECES += ["\n", "\t", "\u00a0", "\u2009", "  ", ". ", ". A", ". a", ". (", ". «", ". _x", ". -"]
_PIECES += [". .", " N. ", " г. ", " Mr. ", " U.S. ", " abcdefg."]


def test_a_paragraph_is_cut_into_sentences_as_the_long_way_cuts_it() -> None:
    rng = random.Random(16)
    for n in range(40000):
        text = "".join(rng.choice(_PIECES) for _ in range(rng.randint(0, 30)))
        if n % 2:
            text = " ".join(text.split())  # spaced as the extraction spaces text
        analysed = diff._paragraph(text)
        assert analysed.sentences == diff._split_joining(text), text
        assert analysed.words == len(text.split())
        assert list(analysed.squashed) == ["".join(s.split()) for s in analysed.sentences]


def test_the_spaces_a_plain_paragraph_lacks_are_all_but_the_space() -> None:
    spaces = "".join(chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace())
    assert spaces.replace(" ", "") == diff._OTHER_SPACES
    assert "".join(c for c in diff._OTHER_SPACES if c.isascii()) == diff._ASCII_OTHER_SPACES
