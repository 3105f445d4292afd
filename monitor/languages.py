"""How the language versions of one statement stand against each other, in words: "edited
in Russian; English and Kazakh unchanged since 3 Dec". One wording for alerts (English)
and the web UI (through its translation table, monitor/web/i18n.py): a ministry that edits
one language and not the others is often the story.

A leaf (no store, no web): alerts and pages hand it the states they read.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta
from zoneinfo import ZoneInfo

from monitor.clock import parse_iso

# Language versions changed this close to each other were changed together (a ministry
# publishes or corrects its translations within hours, and each is checked on its own).
TOGETHER = timedelta(hours=24)

# English names; the UI translates them with the rest of its text.
LANGUAGE_NAMES = {
    "en": "English",
    "ru": "Russian",
    "kk": "Kazakh",
    "uz": "Uzbek",
    "ky": "Kyrgyz",
    "tg": "Tajik",
    "tk": "Turkmen",
    "zh": "Chinese",
    "ar": "Arabic",
    "fr": "French",
    "de": "German",
    "es": "Spanish",
    "tr": "Turkish",
}

# What happened to a language version, by the kind of its latest version.
CHANGED = {
    "published": "published in {languages}",
    "edited": "edited in {languages}",
    "restored": "restored in {languages}",
    "removed": "removed in {languages}",
}
UNCHANGED = "{languages} unchanged since {date}"
# One language version's standing, as a statement's page marks it.
STATUS = {
    "published": "published {date}",
    "edited": "edited {date}",
    "restored": "restored {date}",
    "removed": "removed {date}",
}
STATUS_UNCHANGED = "unchanged since {date}"
REMOVED_ON = "{languages} removed on {date}"
AND = " and "
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")

Translate = Callable[[str], str]


def _as_is(text: str) -> str:
    return text


@dataclass(frozen=True)
class LanguageState:
    """A language version as the wording needs it: its latest version's kind and time."""

    language: str | None
    kind: str  # baseline, published, edited, removed, restored
    at: str  # ISO time its latest version was first seen


def language_name(code: str | None, _: Translate = _as_is) -> str:
    if not code:
        return _("unknown")
    return _(LANGUAGE_NAMES.get(code.lower().split("-")[0], code))


def divergence(
    states: Sequence[LanguageState],
    at: str | None = None,
    _: Translate = _as_is,
    zone: str = "UTC",
) -> str | None:
    """The sentence, or None for a statement in one language (or never changed in any).

    `at` is the moment of the change spoken of (an alert's); by default the latest change
    of any language version (a statement's page). Language versions whose latest change
    lies within TOGETHER of it were changed with it; the others are unchanged since their
    latest version (or removed on its date). The change spoken of comes first."""
    if len(states) < 2:
        return None
    at = at or latest_change(states)
    if at is None:
        return None
    moment = parse_iso(at)
    changed: dict[str, list[LanguageState]] = {}
    unchanged: dict[str, list[LanguageState]] = {}
    removed: dict[str, list[LanguageState]] = {}
    for state in sorted(states, key=lambda s: s.at, reverse=True):
        if state.kind in CHANGED and abs(parse_iso(state.at) - moment) <= TOGETHER:
            changed.setdefault(state.kind, []).append(state)
        else:
            day = _day(state.at, moment.year, _, zone)
            (removed if state.kind == "removed" else unchanged).setdefault(day, []).append(state)
    parts = [_(CHANGED[kind]).format(languages=_names(group, _)) for kind, group in changed.items()]
    parts += [_(UNCHANGED).format(languages=_names(g, _), date=d) for d, g in unchanged.items()]
    parts += [_(REMOVED_ON).format(languages=_names(g, _), date=d) for d, g in removed.items()]
    return "; ".join(parts)


def latest_change(states: Sequence[LanguageState]) -> str | None:
    """The moment of the latest change of any language version (None: never changed)."""
    changes = [s.at for s in states if s.kind in CHANGED]
    return max(changes) if changes else None


def standing(state: LanguageState, at: str | None, _: Translate = _as_is, zone: str = "UTC") -> str:
    """One language version against the change at `at`: "edited 7 Dec" when it was
    changed with it, else "unchanged since 3 Dec" (or "removed 2 Dec")."""
    reference = parse_iso(at or state.at)
    day = _day(state.at, reference.year, _, zone)
    together = abs(parse_iso(state.at) - reference) <= TOGETHER
    if state.kind in CHANGED and (together or state.kind == "removed"):
        return _(STATUS[state.kind]).format(date=day)
    return _(STATUS_UNCHANGED).format(date=day)


def _names(states: list[LanguageState], _: Translate) -> str:
    names = sorted(language_name(state.language, _) for state in states)
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + _(AND) + names[-1]


def _day(moment: str, year: int, _: Translate, zone: str) -> str:
    """ "3 Dec", with the year when it is not the year of the change spoken of."""
    local = parse_iso(moment).astimezone(ZoneInfo(zone))
    day = f"{local.day} {_(MONTHS[local.month - 1])}"
    return day if local.year == year else f"{day} {local.year}"
