"""Users' regexes (ignore rules) never hang the daemon: RE2 where it can run them with
Python's meaning, the `regex` module with a time limit where it cannot."""

from __future__ import annotations

import re
import time
import warnings

import pytest

from monitor.config import WatchConfig
from monitor.diff import compare
from monitor.userregex import RegexTimeout, UserRegexError, check_user_regex, compile_user_regex
from monitor.web.diffview import diff_view
from tests.test_diff import statement

CATASTROPHIC = r"(\w+\s?)+$"
# A paragraph on which Python's `re` backtracks for ever with CATASTROPHIC: words, then
# a character that is neither a word character nor a space at the very end.
RUSSIAN_WORDS = "Министерство иностранных дел Республики Казахстан выражает " * 4
HOSTILE = RUSSIAN_WORDS.strip() + "!"
# One for the fallback engine, which gets past HOSTILE: a long word and a "!".
HOSTILE_WORD = "Министерство" * 5 + "!"

TEXTS = [
    "Просмотров: 1 204. Заявление МИД\u00a0РК от 20.11.2026 г.",
    "Қазақстан Республикасы Сыртқы істер министрлігі 12\u2009345 рет қаралды.",
    "Viewed 1,377 times — updated 10:42; id=abc_12 [draft]",
    "tab\there\nnewline ٣ x_y",
]
# Patterns RE2 runs, and must run with Python's meaning (\w, \d, \s are Unicode in Python
# and ASCII in RE2 unless rewritten).
RE2_PATTERNS = [
    r"\d+ views",
    r"Просмотров: [\d\s]+",
    r"\w+",
    r"\W+",
    r"\d+",
    r"\D+",
    r"\s+",
    r"\S+",
    r"[\w-]+",
    r"[^\d]+",
    r"[^\s\d]+",
    r"(?i)заявление мид",
    r"updated \d{1,2}:\d{2}",
    r"\[draft\]",
    r"[]x]+",
    r"[[a]+",  # a literal "[" in Python's class (which warns of a future nested set)
    r"\u0420\u041a",
    r"рет\Z|қаралды\.\Z",
]
# Patterns only the fallback can run with Python's meaning.
FALLBACK_PATTERNS = [
    r"\bрет\b",
    r"(?<=id=)\w+",
    r"(\d)\1",
    r"[^\W\d_]+",
    r"\d{,2}",
    r"(?>\d+)\.",
]


@pytest.mark.parametrize("pattern", RE2_PATTERNS)
def test_rules_re2_can_run_run_there_with_python_s_meaning(pattern: str) -> None:
    rule = compile_user_regex(pattern)
    assert rule.engine == "re2"
    warnings.simplefilter("ignore", FutureWarning)
    for text in TEXTS:
        assert rule.sub("⟨…⟩", text) == re.sub(pattern, "⟨…⟩", text), text
        assert rule.search(text) == (re.search(pattern, text) is not None)


@pytest.mark.parametrize("pattern", FALLBACK_PATTERNS)
def test_rules_re2_cannot_run_run_on_the_fallback_with_python_s_meaning(pattern: str) -> None:
    rule = compile_user_regex(pattern)
    assert rule.engine == "regex"
    for text in TEXTS:
        assert rule.sub("⟨…⟩", text) == re.sub(pattern, "⟨…⟩", text), text


def test_the_catastrophic_rule_runs_in_linear_time() -> None:
    rule = compile_user_regex(CATASTROPHIC)
    started = time.monotonic()
    assert rule.sub("#", HOSTILE * 50) == HOSTILE * 50  # no match: it ends in "!"
    assert rule.sub("#", RUSSIAN_WORDS) == "#" == re.sub(CATASTROPHIC, "#", RUSSIAN_WORDS)
    assert time.monotonic() - started < 0.5


def test_a_fallback_rule_over_its_time_raises_instead_of_hanging() -> None:
    rule = compile_user_regex(r"(\w|\w\w)+\b$")  # \b: RE2 cannot say it with Unicode
    assert rule.engine == "regex"
    started = time.monotonic()
    with pytest.raises(RegexTimeout, match=r"gave up after 0\.2s"):
        rule.sub("#", HOSTILE_WORD, timeout=0.2)
    assert time.monotonic() - started < 2


@pytest.mark.slow
def test_masking_and_the_ui_diff_view_survive_hostile_rules() -> None:
    """The daemon's masking step (compare) and the UI's diff view, with the catastrophic
    rule (RE2: instant) and a catastrophic rule RE2 cannot run (given up on after the
    budget, not applied on either side, named as a problem), beside an ordinary rule
    that keeps working."""
    paragraphs = [HOSTILE, HOSTILE_WORD]
    old = statement([*paragraphs, "Просмотров: 1 204. Текст заявления."], title=HOSTILE)
    new = statement([*paragraphs, "Просмотров: 1 377. Текст заявления изменён."], title=HOSTILE)
    hopeless = r"(\w|\w\w)+\b$"
    rules = [CATASTROPHIC, hopeless, r"Просмотров: [\d ]+\."]
    started = time.monotonic()
    result = compare(old, new, rules, ignore_budget=0.3)
    view = diff_view(old, new, rules)
    # Budgets of 0.3 s and 1 s a side, given up on; unguarded, the rule would run for hours.
    # The bound leaves room for a loaded machine, not for a hang.
    assert time.monotonic() - started < 15
    assert result.problems == [f"ignore pattern {hopeless!r} took over 0.3s; not applied"]
    [change] = result.changes  # the view counter's change is masked; the edit is not
    assert change.added == ("изменён",)
    assert view.problems == [f"ignore pattern {hopeless!r} took over 1s; not applied"]


def test_rules_are_checked_when_saved() -> None:
    with pytest.raises(UserRegexError, match="not a valid regex"):
        check_user_regex("(unclosed")
    with pytest.raises(UserRegexError):
        check_user_regex(r"\p{L}+")  # the fallback's syntax, not Python's: users write re
    check_user_regex(CATASTROPHIC)  # guarded, so accepted
    watch = WatchConfig(id="w", url="https://x.kz/", ignore=[CATASTROPHIC, r"\bviews\b"])
    assert watch.ignore == [CATASTROPHIC, r"\bviews\b"]
    with pytest.raises(ValueError, match="ignore pattern '\\(unclosed' is not a valid regex"):
        WatchConfig(id="w", url="https://x.kz/", ignore=["(unclosed"])
