"""The watch list grouped as a newsroom reads it: by ministry, one row per statement with
its language versions side by side, each with a status word that says something.

A ministry is what its listings have in common: the same site and path once the language
is taken out (`?lang=en` and `?lang=ru`, or `/en/press` and `/ru/press`, are one ministry).
A statement's languages are one row when the site says they belong together: a discovered
statement's translation group (the profile's), or a key that is a language and a shared id
(gov.kz: `en/1234`, `ru/1234`). Anything else is a row of its own.

Pure functions over the rows of `store.overview`; the page (web/front.py) only renders.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from monitor.clock import parse_iso

# Columns in this order, the rest alphabetically after them.
LANGUAGE_ORDER = ("en", "ru", "kk")
# A change this recent is today's news ("new", "edited today").
FRESH = timedelta(hours=24)
# Most newsworthy first: a row shows the first word any of its languages has.
STATUS_WORDS = ("failing", "removed", "edited today", "new", "quiet")
SORTS = ("latest", "title", "status")
PAGE_SIZE = 50

# ISO 639-1 codes a site puts in a path segment for its language versions.
_LANGUAGE_CODES = frozenset(
    """ar az be bg cs da de el en es et fa fi fr he hi hr hu hy id it ja ka kk kz ky
    ko lt lv mn nl no pl pt ro ru sk sl sr sv tg tj tk tr uk ur uz vi zh""".split()  # noqa: SIM905
)
_LANGUAGE_PARAMS = frozenset(("lang", "language", "locale", "hl", "lng"))
_LANGUAGE_SEGMENT = re.compile(r"([a-z]{2})(?:[-_][a-zA-Z]{2})?")


@dataclass(frozen=True)
class Listing:
    """A watch that is not a discovered statement: a ministry's press page in one language,
    or a page watched on its own."""

    id: str
    name: str
    url: str
    language: str | None = None
    status: Status | None = None


@dataclass(frozen=True)
class Status:
    """What the reader should know: `word` (one of STATUS_WORDS, or "not checked yet" for
    a listing) and the moment it refers to (failing since, removed at, edited at)."""

    word: str
    since: str | None = None
    reason: str | None = None

    @property
    def rank(self) -> int:
        return STATUS_WORDS.index(self.word) if self.word in STATUS_WORDS else len(STATUS_WORDS)


@dataclass(frozen=True)
class LanguageVersion:
    """One language version of a statement: where it is archived and how it stands."""

    language: str
    watch_id: str
    key: str
    title: str
    seq: int
    last_at: str
    status: Status
    changed_at: str | None = None  # its newest version unless that is the baseline


@dataclass
class StatementRow:
    identity: str
    versions: dict[str, LanguageVersion] = field(default_factory=dict)

    @property
    def status(self) -> Status:
        return min((v.status for v in self.versions.values()), key=lambda s: s.rank)

    @property
    def last_at(self) -> str:
        return max(v.last_at for v in self.versions.values())

    @property
    def last_change(self) -> str | None:
        """When any of its languages last changed (None: none has since the baseline)."""
        return max((v.changed_at for v in self.versions.values() if v.changed_at), default=None)

    def title(self, prefer: str | None = None) -> str:
        chosen = self.versions.get(prefer or "") or self.versions[order_languages(self.versions)[0]]
        return chosen.title

    def search_text(self) -> str:
        return " ".join(f"{v.title} {v.key} {v.watch_id}" for v in self.versions.values()).lower()


@dataclass
class Ministry:
    key: str
    name: str
    listings: list[Listing] = field(default_factory=list)
    rows: list[StatementRow] = field(default_factory=list)

    @property
    def languages(self) -> list[str]:
        """The language columns of this ministry's rows."""
        found = {lang for row in self.rows for lang in row.versions}
        found |= {listing.language for listing in self.listings if listing.language}
        return order_languages(found)

    @property
    def counts(self) -> dict[str, int]:
        """How many statements, and how many of them have each status word."""
        counts = {"statements": len(self.rows)} | dict.fromkeys(STATUS_WORDS, 0)
        for row in self.rows:
            counts[row.status.word] += 1
        return counts


@dataclass(frozen=True)
class GroupPage:
    """One page of the grouped list: its ministries, each with the rows on this page."""

    sections: list[tuple[Ministry, list[StatementRow]]]
    page: int
    pages: int
    total: int


def order_languages(languages: Iterable[str]) -> list[str]:
    known = [lang for lang in LANGUAGE_ORDER if lang in languages]
    return known + sorted(set(languages) - set(LANGUAGE_ORDER))


def _is_language(segment: str) -> bool:
    match = _LANGUAGE_SEGMENT.fullmatch(segment)
    return bool(match and match.group(1) in _LANGUAGE_CODES)


# A pure function of the URL, asked for every listing on every front page and watch list:
# 10,000 listings took 200 ms of urlsplit and parse_qsl per page.
@lru_cache(maxsize=65536)
def ministry_key(url: str) -> str:
    """The listing's URL without its language: host (no `www.`), path without language
    segments, query without language parameters."""
    parts = urlsplit(url)
    host = (parts.hostname or "").removeprefix("www.")
    if parts.port:
        host += f":{parts.port}"
    path = "/".join(s for s in parts.path.split("/") if s and not _is_language(s))
    query = urlencode(
        sorted((k, v) for k, v in parse_qsl(parts.query) if k.lower() not in _LANGUAGE_PARAMS)
    )
    return f"{host}/{path}" + (f"?{query}" if query else "")


def ministry_name(listings: Sequence[Listing]) -> str:
    """The listings' names without their language ("MFA (en)", "MFA (ru)" → "MFA")."""
    names: list[str] = []
    for listing in listings:
        name = listing.name
        if listing.language:
            pattern = rf"[\s(\[_.-]*\b{re.escape(listing.language)}\b[)\]]?\s*$"
            name = re.sub(pattern, "", name, flags=re.IGNORECASE) or listing.name
        if name.casefold() not in (known.casefold() for known in names):
            names.append(name)
    return " · ".join(names)


def statement_identity(row: Mapping[str, Any]) -> str:
    """What a statement's language versions share within one ministry."""
    if row.get("translation_group"):
        return "group:" + str(row["translation_group"])
    key = str(row["key"])
    head, slash, rest = key.partition("/")
    if slash and rest and (head == row.get("language") or _is_language(head)):
        return "id:" + rest
    return f"watch:{row['watch_id']}:{key}"


def status_of(row: Mapping[str, Any], now: datetime) -> Status:
    """A statement's status word from its newest version and its watch's health."""
    if row.get("failing_since"):
        return Status("failing", row["failing_since"], row.get("failure_reason"))
    if row.get("removed_at") or row.get("last_kind") == "removed":
        return Status("removed", row.get("removed_at") or row.get("last_at"))
    last_at = row.get("last_at")
    fresh = last_at is not None and now - parse_iso(str(last_at)) < FRESH
    if fresh and row.get("last_kind") in ("edited", "restored"):
        return Status("edited today", last_at)
    if fresh and row.get("last_kind") == "published":
        return Status("new", last_at)
    changed = row.get("last_kind") not in (None, "baseline")
    return Status("quiet", last_at if changed else None)


def listing_status(state: Mapping[str, Any]) -> Status:
    if not state.get("last_check_at"):
        return Status("not checked yet")
    if state.get("failing_since"):
        return Status("failing", state["failing_since"], state.get("failure_reason"))
    return Status("quiet")


def ministries_of(listings: Iterable[Listing]) -> dict[str, Ministry]:
    """The ministries these listings make up, by key, in order of name."""
    found: dict[str, Ministry] = {}
    for listing in listings:
        key = ministry_key(listing.url)
        found.setdefault(key, Ministry(key, "")).listings.append(listing)
    for ministry in found.values():
        ministry.name = ministry_name(ministry.listings)
    return dict(sorted(found.items(), key=lambda item: (item[1].name.casefold(), item[0])))


def group(
    statements: Iterable[Mapping[str, Any]],
    listings: Iterable[Listing],
    now: datetime,
    made: Mapping[str, Ministry] | None = None,
) -> list[Ministry]:
    """Every statement under its ministry, its languages side by side. `made`: the
    ministries of these listings as `ministries_of` made them (kept with a snapshot of the
    watches); they are copied, not changed."""
    by_id = {listing.id: listing for listing in listings}
    if made is None:
        ministries = ministries_of(by_id.values())
    else:
        ministries = {key: Ministry(m.key, m.name, m.listings) for key, m in made.items()}
    of_listing = {listing.id: m for m in ministries.values() for listing in m.listings}
    rows: dict[tuple[str, str], StatementRow] = {}
    for row in statements:
        listing_id = str(row["listing"])
        ministry = of_listing.get(listing_id)
        if ministry is None:  # a listing the archive holds but nobody named: its own group
            orphan = Listing(listing_id, listing_id, str(row["url"]))
            ministry = ministries.setdefault(listing_id, Ministry(listing_id, listing_id, [orphan]))
            of_listing[listing_id] = ministry
        listed = by_id.get(listing_id)
        language = str(row.get("language") or (listed.language if listed else None) or "—")
        version = LanguageVersion(
            language,
            str(row["watch_id"]),
            str(row["key"]),
            str(row["title"]),
            int(row["last_seq"]),
            str(row["last_at"]),
            status_of(row, now),
            None if row.get("last_kind") == "baseline" else str(row["last_at"]),
        )
        identity = statement_identity(row)
        target = rows.setdefault((ministry.key, identity), StatementRow(identity))
        if language in target.versions:  # two of one language: not translations after all
            identity = f"watch:{row['watch_id']}:{row['key']}"
            target = rows.setdefault((ministry.key, identity), StatementRow(identity))
        target.versions[language] = version
    for (key, _identity), statement in rows.items():
        ministries[key].rows.append(statement)
    if made is not None and len(ministries) == len(made):
        return list(ministries.values())  # no orphan: in `made`'s order, which is this one
    return sorted(ministries.values(), key=lambda m: (m.name.casefold(), m.key))


def sort_rows(rows: list[StatementRow], by: str, prefer: str | None = None) -> list[StatementRow]:
    if len(rows) < 2:
        return list(rows)
    if by == "title":
        return sorted(rows, key=lambda r: (r.title(prefer).casefold(), r.identity))
    newest = sorted(rows, key=lambda r: (r.last_change or "", r.last_at, r.identity), reverse=True)
    if by == "status":
        return sorted(newest, key=lambda r: r.status.rank)  # stable: newest first within
    return newest


def paginate(ministries: Sequence[Ministry], page: int, size: int = PAGE_SIZE) -> GroupPage:
    """Page `page` (from 1) of every ministry's rows in turn; a ministry whose rows span two
    pages heads both. Listings with no statement yet still show, with their status, after
    the rows, a place each (10,000 of them made one first page of 3 MB)."""
    flat: list[tuple[Ministry, StatementRow | None]] = [
        (m, row) for m in ministries for row in m.rows
    ]
    total = len(flat)
    flat += [(m, None) for m in ministries if not m.rows]
    pages = max(1, -(-len(flat) // size))
    page = min(max(1, page), pages)
    sections: list[tuple[Ministry, list[StatementRow]]] = []
    for ministry, row in flat[(page - 1) * size : page * size]:
        if not sections or sections[-1][0] is not ministry:
            sections.append((ministry, []))
        if row is not None:
            sections[-1][1].append(row)
    return GroupPage(sections, page, pages, total)
