"""The one write of every check: its `check_run` row and its watch's state, with the new
versions and alerts it found (archive.py writes those), atomically.

An unchanged check — nearly all a daemon does — is one check_run insert and one
watch_state update, in SQL text on the driver's connection, written with the other
unchanged checks of the moment (see database.BATCH_WINDOW); none of it needs SQLAlchemy,
which the archive (and retention of old rows) brings when a check finds something new.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict, Unpack

from monitor.store.database import Database, Deferred, Plain
from monitor.store.records import CheckRecord, NewVersion, ResponseRecord, Settlement, WatchState
from monitor.store.states import WatchStates

if TYPE_CHECKING:
    from monitor.store.archive import Archive
    from monitor.store.outbox import AlertPayload

# Retention runs at most this often (seconds), after a commit, so a daemon prunes a few
# rows at a time instead of a cron job deleting millions at once.
_PRUNE_EVERY = 3600.0
CHECK_COLUMNS = ("watch_id", "at", "ms", "outcome", "status", "detail", "instance")


def _insert_check_core() -> Any:
    from monitor.store.schema import check_run

    return check_run.insert()


INSERT_CHECK = Plain(
    "checks: insert",
    f"INSERT INTO check_run ({', '.join(CHECK_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in CHECK_COLUMNS)})",
    CHECK_COLUMNS,
    _insert_check_core,
)


class CheckWrites:
    """`store.check_writes`: each check's write. `archive` gives the archive when a check has
    something new for it (or old check rows are to go: `keep_checks`, seconds)."""

    def __init__(
        self,
        db: Database,
        states: WatchStates,
        archive: Callable[[], Archive],
        keep_checks: float | None = None,
    ) -> None:
        self.db = db
        self.states = states
        self.archive = archive
        self.keep_checks = keep_checks
        self._insert_check = db.plain(INSERT_CHECK)
        self._next_prune = 0.0

    def commit_check(
        self,
        check: CheckRecord,
        state: WatchState,
        response: ResponseRecord | None = None,
        versions: list[NewVersion] | None = None,
        alerts: list[AlertPayload] | None = None,
        settled: Settlement | None = None,
    ) -> list[int]:
        """Record a check, its new versions and their alerts, and the verdict it reached on
        versions that were pending, atomically. Returns version ids.

        An unchanged check is one check_run insert and one watch_state update, written with
        the other unchanged checks of the moment (see database.BATCH_WINDOW)."""
        rows = self._check_rows(check, state)
        if versions or alerts or settled:
            with self.db.writing("versions"):
                version_ids = self.archive().commit_changes(
                    check, response, versions or [], alerts or [], rows, settled
                )
        else:
            self.db.defer(rows, keys=[state.watch_id])
            version_ids = []
        self._prune_now_and_then()
        return version_ids

    async def commit_check_together(
        self, check: CheckRecord, state: WatchState, **changes: Unpack[CheckChanges]
    ) -> list[int]:
        """`commit_check`, for a check in an event loop: its new versions, alerts and
        verdicts are written in one transaction with those of the other checks of the
        moment (see `Database.together`), each check's atomically; it returns once they
        are committed. An unchanged check is written as `commit_check` writes it."""
        response, settled = changes.get("response"), changes.get("settled")
        versions, alerts = changes.get("versions") or [], changes.get("alerts") or []
        if not (versions or alerts or settled):
            return self.commit_check(check, state, **changes)
        rows = self._check_rows(check, state)
        with self.db.writing("versions"):
            version_ids = await self.archive().commit_changes_together(
                check, response, versions, alerts, rows, settled
            )
        self._prune_now_and_then()
        return version_ids

    def _check_rows(self, check: CheckRecord, state: WatchState) -> list[Deferred]:
        """The check_run row and the watch's state, written by every check."""
        return [
            (self._insert_check, {name: getattr(check, name) for name in CHECK_COLUMNS}),
            self.states.state_write(state),
        ]

    def _prune_now_and_then(self) -> None:
        if self.keep_checks and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY
            self.archive().prune_checks()


class CheckChanges(TypedDict, total=False):
    """What a check has to archive beside its check_run row (`CheckWrites.commit_check`)."""

    response: ResponseRecord | None
    versions: list[NewVersion] | None
    alerts: list[AlertPayload] | None
    settled: Settlement | None
