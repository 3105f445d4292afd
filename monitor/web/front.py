"""The pages a newsroom opens first: the latest changes (`/`) and the watches grouped by
ministry (`/watches`). The flat table of every watch stays at `/watches/all` (ui.py).

The front page is the changes feed (store/changes.py) rendered: newest first, pages of 50
that end at a cursor (no OFFSET: the 100th page costs what the first does), filtered by
ministry, language, kind and period with a plain GET form. Each logged-in reader's front
page views are recorded (store/accounts.py `visit`), so it can mark and filter what
changed since their last visit.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, urlencode

from markupsafe import Markup, escape
from sqlalchemy.exc import SQLAlchemyError
from starlette.requests import Request
from starlette.responses import Response

from monitor.clock import iso
from monitor.config import MonitorConfig
from monitor.redact import redact_text
from monitor.store import StoreError
from monitor.store.changes import KINDS, ChangeFilter, Cursor
from monitor.store.overview import WatchHealth
from monitor.store.records import ChangeEvent
from monitor.web.api import change_entry
from monitor.web.grouping import (
    SORTS,
    STATUS_WORDS,
    GroupPage,
    Listing,
    Ministry,
    group,
    listing_status,
    ministries_of,
    paginate,
    sort_rows,
)
from monitor.web.i18n import translator
from monitor.web.kept import KeptByMark
from monitor.web.pages import Pages, Visit, page
from monitor.web.ui import KeptRows

logger = logging.getLogger("monitor.web")

# Changes per page of the front page.
FRONT_PAGE = 50
# Seconds the listings and ministries of one snapshot of the watches serve the front page.
DIRECTORY_FOR = 30.0
# Seconds one grouping of the statements serves /watches while they stay the same.
GROUPED_FOR = 30.0
# Pages of one grouping (filters, sorting, page number) kept.
GROUPED_PAGES = 256
# The period filter: its values, and how far back each reaches (None: the last visit).
PERIODS: dict[str, timedelta | None] = {
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
    "30d": timedelta(days=30),
    "visit": None,
}
_FILTERS = ("ministry", "listing", "language", "kind", "period")


class FrontPages(Pages):
    def __init__(self, *args: Any, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self._made: Directory | None = None
        self._made_groups: Grouped | None = None
        # Every watch's health, and its failure as the grouping last read it (SQLite).
        self.health = WatchHealth(self.store.db)
        self._failures: dict[str, tuple[Any, ...]] = {}
        # The front page's rows, rendered once per change and language (50 a page).
        self.rows = KeptRows(self.env, "change_row.html.j2")
        self._front_options, self._group_options = MinistryOptions(), MinistryOptions()
        # The front page's main parts: (data mark, directory, UTF-8 HTML) by what was asked.
        self._front_pages: KeptByMark[bytes] = KeptByMark(GROUPED_PAGES)

    # --- the front page: latest changes ----------------------------------------------------

    @page()
    async def front(self, request: Request, visit: Visit) -> Response:
        params = request.query_params
        if "q" in params or "status" in params:  # the watch table's filters, from before
            return self.redirect(visit, "/watches/all?" + request.url.query)
        try:
            cursor = Cursor.parse(params["cursor"]) if params.get("cursor") else None
        except ValueError:
            _ = translator(visit.language)
            return self.error(visit, 400, _("Not a page of this list."), params["cursor"])
        now = datetime.now(UTC)
        previous = self._visit(visit, now)
        directory = self._directory()
        chosen = chosen_filters(params)
        # The main part as made last for these filters, language and last visit, while the
        # archive's data mark and the directory hold; not for a period that ends now (its
        # start moves with the clock).
        mark = self.store.overview.data_mark()  # after the visit's own write, if any
        asked = (request.url.query, visit.language, previous, visit.user is not None)
        kept = self._front_pages.get(asked, mark, directory)
        if kept is not None:
            return self.render_main(visit, "front.html.j2", kept)
        since = period_start(chosen["period"], previous, now)
        wanted = change_filter(params, chosen, directory.ministries, since, cursor)
        rows, following = self.store.changes(wanted, FRONT_PAGE)
        changes = [self._entry(row, directory.by_id, previous) for row in rows]
        _ = translator(visit.language)
        html = [
            self.rows.render(_row_key(visit.language, change), _=_, c=change) for change in changes
        ]
        shown = [(k, v) for k, v in params.multi_items() if k in _FILTERS and v]
        following_url = "/?" + urlencode([*shown, ("cursor", str(following))])
        main = (
            self.env.get_template("front_main.html.j2")
            .render(
                _=_,
                lang=visit.language,
                user=visit.user is not None,
                changes=changes,
                rows=[Markup(row) for row in html],
                marker=visit_marker(changes),
                previous=previous,
                ministry_options=self._front_options.html(
                    directory.ministry_list, chosen["ministry"]
                ),
                languages=directory.languages(self.store),
                kinds=KINDS,
                periods=list(PERIODS),
                chosen=chosen,
                cursor=cursor,
                first_url="/?" + urlencode(shown),
                next_url=following_url if following else None,
            )
            .encode()
        )
        if chosen["period"] in ("", "visit"):
            self._front_pages.put(asked, mark, main, directory)
        return self.render_main(visit, "front.html.j2", main)

    def _visit(self, visit: Visit, now: datetime) -> str | None:
        """Record this view; when the reader's previous visit ended (None: never, or no one
        logged in)."""
        if visit.user is None:
            return None
        try:
            return self.store.accounts.visit(visit.user.name, iso(now))
        except (StoreError, SQLAlchemyError) as err:  # a marker is not worth failing a page
            logger.warning("front page: visit of %s not recorded: %s", visit.user.name, err)
            return self.store.accounts.last_visit(visit.user.name)

    @staticmethod
    def _entry(row: ChangeEvent, names: dict[str, Listing], previous: str | None) -> Any:
        entry = change_entry(row)
        listing = names.get(row["listing"])
        entry["ministry"] = listing.name if listing else row["listing"]
        entry["language"] = entry["language"] or (listing.language if listing else None)
        entry["unseen"] = bool(previous and row["at"] > previous)
        if row["source"] == "version" and row.get("key"):
            entry["links"]["statement"] = (
                f"/watch/{_q(row['watch_id'])}/statement?key={_q(row['key'])}"
            )
        return entry

    def _directory(self) -> Directory:
        """The listings and ministries of the watches in force, made once per snapshot of
        them (and at least every DIRECTORY_FOR seconds: a daemon elsewhere may register
        watches): with 10,000 watches, making them took 300 ms of every front page."""
        config, now = self.config, time.monotonic()
        made = self._made
        # Which watches are listings changes only with these numbers (see
        # `Overview.directory_mark`), so a statement a listing just discovered, which is a
        # listing no more, shows at once.
        known = self.store.overview.directory_mark()  # first: a change after it shows next
        if (
            made is None
            or made.config is not config
            or now - made.at > DIRECTORY_FOR
            or made.known != known
        ):
            made = self._made = Directory(config, self.listings(), now)
            made.known = known
        return made

    def listings(self) -> list[Listing]:
        """Every listing (a watch no listing discovered): its name and language from the
        configuration when it is there, its health from the archive."""
        configured = {watch.id: watch for watch in self.config.watch}
        found = []
        stored = self.store.overview.watch_states()
        for state in stored:
            if state["parent"] is not None:
                continue
            watch = configured.get(state["id"])
            found.append(
                Listing(
                    state["id"],
                    watch.display_name if watch else state["id"],
                    state["url"],
                    watch.language if watch else None,
                    listing_status(state),
                )
            )
        known = {state["id"] for state in stored}
        for watch in configured.values():  # saved a moment ago: not in the archive yet
            if watch.id not in known:
                status = listing_status({})
                found.append(
                    Listing(watch.id, watch.display_name, watch.url, watch.language, status)
                )
        return found

    # --- the watches, grouped --------------------------------------------------------------

    @page()
    async def grouped(self, request: Request, visit: Visit) -> Response:
        params = request.query_params
        # The listings and their ministries of this snapshot of the watches (made once);
        # the health of the listings shown as it is now (see Grouped.main).
        directory = self._directory()
        grouped, mark = self._grouped(directory)
        chosen = {name: params.get(name, "") for name in ("ministry", "status", "q", "sort")}
        sort = chosen["sort"] if chosen["sort"] in SORTS else SORTS[0]
        try:
            number = int(params.get("page", "1"))
        except ValueError:
            number = 1
        kept = [(k, v) for k, v in params.multi_items() if k != "page" and v]

        def render(result: GroupPage) -> str:
            ministries = grouped.ministries
            return self.env.get_template("watch_groups_main.html.j2").render(
                _=translator(visit.language),
                lang=visit.language,
                result=result,
                # The counts of the ministries on this page, over all their statements.
                totals={m.key: grouped.by_key[m.key].counts for m, _rows in result.sections},
                ministry_options=self._group_options.html(
                    # The snapshot's own list when no orphan was added: not compared again.
                    directory.ministry_list
                    if len(ministries) == len(directory.ministry_list)
                    else ministries,
                    chosen["ministry"],
                ),
                status_words=STATUS_WORDS,
                sorts=SORTS,
                chosen=chosen | {"sort": sort},
                page_url=lambda n: "/watches?" + urlencode([*kept, ("page", n)]),
            )

        main = grouped.main(chosen, sort, visit.language, number, mark, self.store, render)
        return self.render_main(visit, "watch_groups.html.j2", main)

    def _grouped(self, directory: Directory) -> tuple[Grouped, Any]:
        """The statements grouped under the directory's ministries, and the archive's data
        mark they are known to hold for. Made again only when the directory or the
        statements' rows (their newest versions, their watches' failures) changed, or when
        it is GROUPED_FOR old ("edited today" ends 24 hours after the edit): with 10,000
        watches, grouping them took 70 ms of every page. The rows (10 ms of SQL) are read
        only when the archive's data mark moved since they were."""
        made, at = self._made_groups, time.monotonic()
        overview = self.store.overview
        mark = overview.data_mark()  # first: a commit after it only makes the next differ
        current = made is not None and made.directory is directory and at - made.at <= GROUPED_FOR
        if made is not None and current and made.mark == mark:
            return made, mark
        # Before the rows, what says whether they may have changed since they were read
        # (a commit in between only makes them read again): on SQLite, the statements'
        # mark and the failures of the watches checked since.
        facts = overview.statements_mark()
        failed = facts is not None and self._failures_changed()
        if (
            made is not None
            and current
            and facts is not None
            and made.facts == facts
            and not failed
        ):
            made.mark = mark
            return made, mark
        # What the grouping shows of them: a check changes its watch's last_check_at, which
        # no status word reads (a daemon checks some statement every moment).
        statements = [
            {k: v for k, v in row.items() if k != "last_check_at"} for row in overview.statements()
        ]
        if made is None or not current or made.statements != statements:
            now = datetime.now(UTC)
            ministries = group(statements, directory.by_id.values(), now, directory.ministries)
            made = self._made_groups = Grouped(directory, statements, ministries, at)
        made.mark, made.facts = mark, facts
        return made, mark

    def _failures_changed(self) -> bool:
        """Whether a watch's failure (failing_since, failure_reason) changed since this was
        last asked (`WatchHealth`: the states of the watches checked since; True when
        every state was read)."""
        health, changed = self.health.read()
        if changed is None:
            self._failures = {i: state[1:3] for i, state in health.items()}
            return True
        moved = False
        for watch_id in changed:
            failure = health[watch_id][1:3]
            if self._failures.get(watch_id) != failure:
                self._failures[watch_id], moved = failure, True
        return moved


class Grouped:
    """One grouping of the statements, and the pages of it asked for (their filters and
    sorting applied; the listings' health is read for each request)."""

    def __init__(
        self, directory: Directory, statements: list[Any], ministries: list[Ministry], at: float
    ) -> None:
        self.directory, self.statements, self.at = directory, statements, at
        self.ministries = ministries
        self.by_key = {m.key: m for m in ministries}
        self._pages: dict[tuple[Any, ...], GroupPage] = {}
        # The data mark the statements were last found unchanged at, and their facts
        # then (`Overview.statements_mark`; FrontPages._grouped).
        self.mark: Any = None
        self.facts: Any = None
        # Each page's main part as rendered: (data mark, its listings' health, UTF-8 HTML).
        self._html: dict[tuple[Any, ...], tuple[Any, Any, bytes]] = {}

    def page(self, chosen: dict[str, str], sort: str, language: str, number: int) -> GroupPage:
        asked = (*chosen.values(), sort, language, number)
        found = self._pages.get(asked)
        if found is None:
            if len(self._pages) >= GROUPED_PAGES:
                self._pages.clear()
            shown = filter_ministries(self.ministries, chosen, sort, language)
            found = self._pages[asked] = paginate(shown, number)
        return found

    def main(
        self,
        chosen: dict[str, str],
        sort: str,
        language: str,
        number: int,
        mark: Any,
        store: Any,
        render: Callable[[GroupPage], str],
    ) -> bytes:
        """The page's main part as `render` makes it of the page with its listings' health
        now: kept by page and language, as long as the archive's data mark is the one it
        was made (or last found the same) at; past that, its listings' health is read and
        compared (a check changes some watch's state every moment, seldom a listing's
        status). Rendering it took half of each request (a 500 KB page)."""
        asked = (*chosen.values(), sort, language, number)
        kept = self._html.get(asked)
        if kept is not None and kept[0] == mark:
            return kept[2]
        result = self.page(chosen, sort, language, number)
        ids = [listing.id for ministry, _rows in result.sections for listing in ministry.listings]
        states = store.states(ids) if ids else {}
        health = {i: _health(state) for i, state in states.items()}
        if kept is not None and kept[1] == health:
            html = kept[2]
        else:
            html = render(with_health(result, store, states)).encode()
        if len(self._html) >= GROUPED_PAGES:
            self._html.clear()
        self._html[asked] = (mark, health, html)
        return html


def filter_ministries(
    ministries: list[Ministry], chosen: dict[str, str], sort: str, language: str
) -> list[Ministry]:
    """The ministries the filters keep, each with its rows filtered and sorted; a listing
    with no statement yet (most of 10,000) only while no status or text is asked for."""
    needle = chosen["q"].strip().lower()
    narrowed = bool(chosen["status"] or needle)
    shown: list[Ministry] = []
    for ministry in ministries:
        if chosen["ministry"] and ministry.key != chosen["ministry"]:
            continue
        if not ministry.rows:
            if not narrowed:
                shown.append(ministry)
            continue
        rows = [
            row
            for row in ministry.rows
            if (not chosen["status"] or row.status.word == chosen["status"])
            and (not needle or needle in row.search_text())
        ]
        filtered = Ministry(ministry.key, ministry.name, ministry.listings, rows)
        filtered.rows = sort_rows(rows, sort, language)
        if rows or not narrowed:
            shown.append(filtered)
    return shown


def with_health(result: GroupPage, store: Any, states: dict[str, Any] | None = None) -> GroupPage:
    """The page's sections with their listings' status as the archive has it now (`states`:
    their states as just read, by id)."""
    if states is None:
        ids = [listing.id for ministry, _rows in result.sections for listing in ministry.listings]
        states = store.states(ids) if ids else {}

    def now(listing: Listing) -> Listing:
        state = states.get(listing.id)
        return replace(listing, status=listing_status(_health(state) if state else {}))

    sections = [
        (Ministry(m.key, m.name, [now(listing) for listing in m.listings], m.rows), rows)
        for m, rows in result.sections
    ]
    return replace(result, sections=sections)


def _health(state: Any) -> dict[str, Any]:
    """What a listing's status is made of, of its state."""
    return {
        "last_check_at": state.last_check_at,
        "failing_since": state.failing_since,
        "failure_reason": state.failure_reason,
    }


class MinistryOptions:
    """The ministry filter's <option>s, rendered once for a list of ministries (10,000 of
    them were a fifth of a page), escaped and redacted as the templates did; the chosen
    one is marked per request."""

    def __init__(self) -> None:
        self._source: object = None
        self._of: tuple[tuple[str, str], ...] = ()
        self._options: dict[str, tuple[str, str]] = {}
        self._none_chosen = ""

    def html(self, ministries: Collection[Ministry], chosen: str) -> Markup:
        """`ministries` the same object as last time (the front page's, made once per
        snapshot) are the same ministries; another is compared by keys and names."""
        names = (
            self._of if ministries is self._source else tuple((m.key, m.name) for m in ministries)
        )
        self._source = ministries
        if names != self._of:
            self._options = {
                key: (
                    f'<option value="{escape(redact_text(key))}" ',
                    f">{escape(redact_text(name))}</option>",
                )
                for key, name in names
            }
            self._none_chosen = "\n".join(start + end for start, end in self._options.values())
            self._of = names
        if chosen not in self._options:
            return Markup(self._none_chosen)
        start, end = self._options[chosen]
        return Markup(self._none_chosen.replace(start + end, f"{start}selected{end}", 1))


class Directory:
    """The listings of one snapshot of the watches by id, and their ministries by key."""

    def __init__(self, config: MonitorConfig, listings: list[Listing], at: float) -> None:
        self.config, self.at = config, at
        # The archive's `directory_mark` when it was made.
        self.known: Any = None
        self.by_id = {listing.id: listing for listing in listings}
        self.ministries = ministries_of(listings)
        self.ministry_list = list(self.ministries.values())
        self._languages: list[str] | None = None

    def languages(self, store: Any) -> list[str]:
        """The languages of the statements archived (the language filter's), read once
        for the directory's time."""
        if self._languages is None:
            self._languages = store.overview.languages()
        return self._languages


def _row_key(language: str, change: dict[str, Any]) -> tuple[str, str]:
    """What a change's row on the front page shows."""
    return language, json.dumps(change, sort_keys=True, default=str)


def change_filter(
    params: Any,
    chosen: dict[str, str],
    ministries: dict[str, Ministry],
    since: str | None,
    cursor: Cursor | None,
) -> ChangeFilter:
    """The feed's filter for the front page's query parameters."""
    ministry = ministries.get(chosen["ministry"])
    return ChangeFilter(
        listing=params.get("listing") or None,
        listings=[m.id for m in ministry.listings] if ministry else None,
        language=chosen["language"] or None,
        kinds=[kind for kind in params.getlist("kind") if kind in KINDS] or KINDS,
        since=since,
        below=cursor,
    )


def visit_marker(changes: list[dict[str, Any]]) -> int | None:
    """The row the line "before your last visit" goes above: the first the reader had
    seen, when some above it are new to them."""
    seen = [i for i, change in enumerate(changes) if not change["unseen"]]
    return seen[0] if seen and seen[0] > 0 else None


def chosen_filters(params: Any) -> dict[str, str]:
    """The front page's filters as its form shows them ("" for none or an unknown value;
    kind only when exactly one is asked for)."""
    chosen = {name: params.get(name, "") for name in ("ministry", "language", "period")}
    kinds = [kind for kind in params.getlist("kind") if kind in KINDS]
    chosen["kind"] = kinds[0] if len(kinds) == 1 else ""
    if chosen["period"] not in PERIODS:
        chosen["period"] = ""
    return chosen


def period_start(period: str, previous: str | None, now: datetime) -> str | None:
    """Where the period filter starts: `previous` for "since my last visit"."""
    if period == "visit":
        return previous
    reach = PERIODS.get(period)
    return iso(now - reach) if reach else None


def _q(value: str) -> str:
    return quote(value, safe="")
