"""Discovery: the statements a listing shows become watches of their own.

A listing watch with `discover = true` (a ministry's press page, in each language, or its
RSS feed) no longer keeps the statements itself. Each statement it lists gets a watch of
its own, on the statement's own page, so that it stays watched after newer statements push
it off the listing — ministries edit old statements too. A statement found after the
listing's first check is announced: its watch's first version is "published", alerted;
those on the listing at its first sight are a silent baseline.

The statement watches are checked often while new and less often as they age
(`discover_schedule`, like NewsDiffs); the listing keeps its own `interval`. When the
listing shows a statement differently than last time, or stops showing one it should
still show, that statement's watch is made due at once: the listing is the fast path to
an edit, the statement's own watch records and alerts it (one alert, not two).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monitor.config import MonitorConfig, WatchConfig, parse_schedule
from monitor.extract import Extraction, Profile, date_sort_key
from monitor.store import Discovery, Store
from monitor.store.records import DiscoveredRow

# Settings a statement watch takes over from its listing (how to alert, what to ignore).
_INHERITED = (
    "channels",
    "threshold",
    "ignore",
    "ignore_selectors",
    "robots",
    "quiet_hours",
    "timezone",
    "digest",
    "alert_transient",
    "muted",
    "fetcher",
    "save_to",
    # A listing fetches no files itself: these are for its statements (monitor/attachments.py).
    "attachments",
    "ocr",
)
_ID_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_MAX_ID = 64


@dataclass
class ListingOutcome:
    """What a listing check found: new statement watches, and watches to check now."""

    new: list[str] = field(default_factory=list)
    due: list[str] = field(default_factory=list)


def statement_watch_id(parent_id: str, key: str) -> str:
    """A readable, stable id: `mfa-kz-en.en-1048252`; hashed when it would be too long."""
    slug = _ID_UNSAFE.sub("-", key).strip("-.") or "statement"
    candidate = f"{parent_id}.{slug}"
    if len(candidate) <= _MAX_ID:
        return candidate
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return f"{parent_id[: _MAX_ID - len(digest) - 1]}.{digest}"


def interval_for(schedule: list[str], published: str | None, found: str, now: datetime) -> float:
    """How often a statement of this age is checked: the first step its age is under."""
    born = date_sort_key(published) or date_sort_key(found) or now.timestamp()
    age = max(0.0, now.timestamp() - born)
    for interval, until in parse_schedule(schedule):
        if age < until:
            return interval
    raise AssertionError("parse_schedule always ends with an open-ended step")


def statement_watch(parent: WatchConfig, row: DiscoveredRow, now: datetime) -> WatchConfig:
    """The watch of one discovered statement, as if the user had written it."""
    settings = {name: getattr(parent, name) for name in _INHERITED}
    title = str(row["title"])
    return WatchConfig(
        id=str(row["watch_id"]),
        url=str(row["url"]),
        name=title if len(title) <= 200 else title[:199] + "…",
        profile=row["profile"],
        language=row["language"] or parent.language,
        interval=interval_for(
            parent.discover_schedule,
            row["published"],
            str(row["discovered_at"]),
            now,
        ),
        **settings,
    )


@dataclass(frozen=True)
class StatementWatch:
    """A discovered statement's watch, and what its interval depends on."""

    watch: WatchConfig
    schedule: list[str]
    published: str | None
    found: str

    def interval(self, now: datetime) -> float:
        return interval_for(self.schedule, self.published, self.found, now)


def statement_watches(
    config: MonitorConfig,
    store: Store,
    now: datetime | None = None,
    exclude: Collection[str] = (),
) -> list[StatementWatch]:
    """A watch per discovered statement of the config's discovering listings, except those
    in `exclude` (already scheduled: a daemon asks often, and validating thousands of
    watches it has would be wasted).

    A [[watch]] of the same id (in the file or the web UI) wins: that is how one statement
    gets its own interval or channels. Statements of a listing no longer configured, or no
    longer discovering, are not checked (their archive stays)."""
    parents = {w.id: w for w in config.watch if w.discover}
    if not parents:
        return []
    now = now or datetime.now(UTC)
    known = {w.id for w in config.watch}.union(exclude)
    found = []
    for row in store.discovered(parents):
        if row["watch_id"] in known:
            continue
        parent = parents[str(row["parent_id"])]
        watch = statement_watch(parent, row, now)
        found.append(
            StatementWatch(
                watch, parent.discover_schedule, row["published"], str(row["discovered_at"])
            )
        )
    return found


def discover(
    parent: WatchConfig,
    profile: Profile,
    extraction: Extraction,
    store: Store,
    at: str,
) -> ListingOutcome:
    """Register the listing's new statements as watches; say which known ones to check now."""
    rows = {str(row["key"]): row for row in store.discovered([parent.id])}
    first_sight = not rows
    outcome = ListingOutcome()
    new: list[Discovery] = []
    listed: dict[str, str | None] = {}
    for statement in extraction.statements:
        row = rows.get(statement.key)
        sha = statement.sha256
        if row is None:
            watch_id = statement_watch_id(parent.id, statement.key)
            new.append(
                Discovery(
                    watch_id=watch_id,
                    parent_id=parent.id,
                    key=statement.key,
                    url=statement.url,
                    title=statement.title,
                    language=statement.language or parent.language,
                    profile=profile.statement_profile(),
                    published=statement.published,
                    translation_group=profile.translation_group(statement),
                    announce=not first_sight,
                    listed_sha256=sha,
                )
            )
            outcome.new.append(watch_id)
            continue
        listed[str(row["watch_id"])] = sha
        if row["listed_sha256"] != sha:
            outcome.due.append(str(row["watch_id"]))
    shown = {s.key for s in extraction.statements}
    if extraction.window_start is not None:
        # Missing although the listing still covers its date: perhaps deleted. The
        # statement's own watch finds out (a 404 there is a removal, confirmed).
        # Asked once per disappearance (listed_sha256 is then forgotten), not every time.
        window = date_sort_key(extraction.window_start)
        for key, row in rows.items():
            published = date_sort_key(row["published"])
            if key not in shown and row["listed_sha256"] is not None and published >= window:
                outcome.due.append(str(row["watch_id"]))
                listed[str(row["watch_id"])] = None
    if new:
        store.add_discovered(new, at)
    store.mark_listed(listed, at)
    return outcome
