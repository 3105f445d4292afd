"""Regexes written by users (a watch's `ignore` rules), compiled so none can hang the daemon.

Python's `re` backtracks: an ignore rule such as `(\\w+\\s?)+$` takes exponential time on
an ordinary paragraph, and the daemon's masking step and the UI's diff view both run it.

A rule goes to RE2 (`google-re2`), which matches in linear time, whenever RE2 can express
it with Python's meaning. RE2's `\\w`, `\\d`, `\\s` are ASCII-only, so they are rewritten
to their Unicode classes first (`\\w` is `[\\p{L}\\p{N}_]`: Cyrillic and Kazakh letters are
word characters, as in Python). What RE2 cannot express — lookarounds, backreferences,
Unicode `\\b`, atomic groups, `\\W` inside a class — runs on the `regex` module (Python's
syntax and meaning) with a time limit: a match over its budget raises `RegexTimeout`, and
the caller decides what a rule that gave up means (`monitor.diff`: not applied, said so).
Known differences: `$` on RE2 matches at the very end only, where Python's also matches
before a final newline (the masked texts, extracted paragraphs and titles, have none);
`regex` does not count "²" and other No-category numerals as `\\w`, which Python does.

A rule neither engine compiles is refused with `UserRegexError` (a ValueError), at config
load and in the UI's form, before it is ever saved.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

# Python's \w, \d and \s for str patterns, in RE2's syntax (for use inside a class).
_WORD = r"\p{L}\p{N}_"
_DIGIT = r"\p{Nd}"
_SPACE = r"\t\n\x0B\f\r\x1C-\x1F\x85\p{Z}"
_OUTSIDE = {
    "w": f"[{_WORD}]",
    "W": f"[^{_WORD}]",
    "d": _DIGIT,
    "D": r"\P{Nd}",
    "s": f"[{_SPACE}]",
    "S": f"[^{_SPACE}]",
    "Z": r"\z",
}
_INSIDE = {"w": _WORD, "d": _DIGIT, "D": r"\P{Nd}", "s": _SPACE}
# Escapes whose Python meaning RE2 has no way to say (Unicode word boundaries; the
# complement of a Unicode class inside another class).
_UNEXPRESSIBLE_OUTSIDE = set("bB")
_UNEXPRESSIBLE_INSIDE = set("WSbB")

# What one fallback (`regex`) rule may spend on one call by default, in seconds.
DEFAULT_BUDGET = 1.0


class UserRegexError(ValueError):
    """A user's regex that cannot be compiled."""


class RegexTimeout(Exception):
    """A fallback regex ran out of its time on some text."""


@dataclass(frozen=True)
class UserRegex:
    """A user's regex compiled by `compile_user_regex`; `engine` says which one runs it."""

    pattern: str
    engine: Literal["re2", "regex"]
    _compiled: Any

    def sub(self, replacement: str, text: str, timeout: float = DEFAULT_BUDGET) -> str:
        """`text` with every match replaced by the literal `replacement`. Raises
        RegexTimeout when a fallback rule takes longer than `timeout` seconds."""

        # A function, not a template: google-re2 expands a str template through
        # "unicode_escape", which garbles every non-ASCII character ("⟨…⟩").
        def replace(_: object) -> str:
            return replacement

        if self.engine == "re2":
            return str(self._compiled.sub(replace, text))
        try:
            return str(self._compiled.sub(replace, text, timeout=max(timeout, 0.001)))
        except TimeoutError:
            raise RegexTimeout(self._gave_up(timeout)) from None

    def search(self, text: str, timeout: float = DEFAULT_BUDGET) -> bool:
        """Whether the rule matches anywhere in `text` (RegexTimeout as for `sub`)."""
        if self.engine == "re2":
            return self._compiled.search(text) is not None
        try:
            return self._compiled.search(text, timeout=max(timeout, 0.001)) is not None
        except TimeoutError:
            raise RegexTimeout(self._gave_up(timeout)) from None

    def _gave_up(self, timeout: float) -> str:
        return f"ignore pattern {self.pattern!r} gave up after {timeout:.1f}s (not applied)"


@lru_cache(maxsize=4096)
def compile_user_regex(pattern: str) -> UserRegex:
    """The guarded form of a user's regex; raises UserRegexError when it cannot compile."""
    import re2
    import regex

    translated = _for_re2(pattern)
    if translated is not None:
        try:
            return UserRegex(pattern, "re2", re2.compile(translated, _re2_options()))
        except re2.error:
            pass  # a construct RE2 lacks: the fallback below
    try:
        # VERSION0: Python's `re` semantics, which the rule was written (and tested) for.
        compiled = regex.compile(pattern, regex.VERSION0)
    except (regex.error, ValueError, OverflowError) as err:
        raise UserRegexError(f"{pattern!r} is not a valid regex: {err}") from None
    return UserRegex(pattern, "regex", compiled)


def check_user_regex(pattern: str) -> None:
    """Raise UserRegexError if `pattern` cannot be used as a user's regex. Python's own
    `re` must accept it too: it is the syntax users are told to write."""
    import re

    try:
        re.compile(pattern)
    except (re.error, OverflowError) as err:
        raise UserRegexError(f"{pattern!r} is not a valid regex: {err}") from None
    compile_user_regex(pattern)


class _Unexpressible(Exception):
    pass


def _for_re2(pattern: str) -> str | None:
    """`pattern` rewritten so that RE2 gives it Python's meaning, or None when RE2 cannot
    (the rule then runs on the fallback)."""
    try:
        return _translate(pattern)
    except _Unexpressible:
        return None


def _translate(pattern: str) -> str:
    out: list[str] = []
    in_class = False
    class_start = 0  # index in `pattern` where the current class's items begin
    i, n = 0, len(pattern)
    while i < n:
        char = pattern[i]
        if char == "\\":
            escape, i = _escape(pattern, i, in_class)
            out.append(escape)
            continue
        if in_class:
            # "]" first in a class ("[]a]", "[^]a]") is a literal in Python.
            if char == "]" and i != class_start:
                in_class = False
            elif char == "[":
                char = r"\["  # a literal in Python; RE2 would read "[:alpha:]" as a class
        elif char == "[":
            in_class = True
            class_start = i + 1
            if pattern.startswith("^", class_start):
                class_start += 1
        elif char == "{" and pattern.startswith("{,", i):
            raise _Unexpressible  # Python's {,n} is {0,n}; RE2 reads it as literal text
        out.append(char)
        i += 1
    if in_class:
        raise _Unexpressible
    return "".join(out)


def _escape(pattern: str, i: int, in_class: bool) -> tuple[str, int]:
    """The RE2 spelling of the escape at `pattern[i]` (a backslash), and where the pattern
    goes on after it."""
    if i + 1 >= len(pattern):
        raise _Unexpressible
    escaped = pattern[i + 1]
    i += 2
    if escaped in ("u", "U"):  # Python's \uXXXX / \UXXXXXXXX: RE2's \x{...}
        width = 4 if escaped == "u" else 8
        digits = pattern[i : i + width]
        if len(digits) != width or not all(c in "0123456789abcdefABCDEF" for c in digits):
            raise _Unexpressible
        return f"\\x{{{digits}}}", i + width
    unexpressible, spelling = (
        (_UNEXPRESSIBLE_INSIDE, _INSIDE) if in_class else (_UNEXPRESSIBLE_OUTSIDE, _OUTSIDE)
    )
    if escaped in unexpressible:
        raise _Unexpressible
    return spelling.get(escaped, "\\" + escaped), i


@lru_cache(maxsize=1)
def _re2_options() -> Any:
    import re2

    options = re2.Options()
    options.log_errors = False  # a rule RE2 cannot compile goes to the fallback, quietly
    return options
