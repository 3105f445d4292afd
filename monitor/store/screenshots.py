"""Screenshots of watched pages: the PNG (a blob like any other, content-addressed), what
it was compared with and how much differed, the versions it shows, and the alert a visual
change raised — each written in one transaction. A screenshot that could not be taken is a
row too, with the reason and no PNG, written once per run of the same failure."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, cast

from sqlalchemy import select

from monitor.store.archive import Archive
from monitor.store.database import Database, inserted_id
from monitor.store.outbox import AlertPayload, alert_statements, insert_alert_on
from monitor.store.records import NewScreenshot, ScreenshotRow, VersionScreenshotRow
from monitor.store.schema import screenshot, version, version_screenshot


class Screenshots:
    def __init__(self, db: Database, archive: Archive) -> None:
        self.db = db
        self.archive = archive

    def record(
        self,
        shot: NewScreenshot,
        version_ids: list[int],
        alert: Callable[[int], AlertPayload] | None = None,
    ) -> int:
        """Store the PNG, its row, its links to `version_ids`, and the alert `alert(id)`
        makes of the new row's id, in one transaction; returns the id."""
        staged = self.archive._stage(shot.png, "image/png")
        with self.db.writing("screenshots"), self.db.write() as conn:
            self.archive._register(conn, staged)
            shot_id = inserted_id(
                conn.execute(
                    screenshot.insert().values(
                        watch_id=shot.watch_id,
                        taken_at=shot.taken_at,
                        url=shot.url,
                        sha256=staged.sha256,
                        width=shot.width,
                        height=shot.height,
                        previous_id=shot.previous_id,
                        changed=shot.changed,
                        regions=json.dumps(shot.regions) if shot.previous_id else None,
                    )
                )
            )
            self._link(conn, shot_id, version_ids)
            if alert is not None:
                payload, channels = alert(shot_id)
                with self.db.statements_on(conn) as run:
                    alerts = alert_statements(self.db)
                    insert_alert_on(
                        run, alerts, shot.watch_id, None, payload, channels, shot.taken_at
                    )
        return shot_id

    def link(self, shot_id: int, version_ids: list[int]) -> None:
        """Versions whose page looked as an existing screenshot shows (taken again, the
        same PNG)."""
        if version_ids:
            with self.db.writing("screenshots"), self.db.write() as conn:
                self._link(conn, shot_id, version_ids)

    @staticmethod
    def _link(conn: Any, shot_id: int, version_ids: list[int]) -> None:
        for version_id in version_ids:
            conn.execute(
                version_screenshot.insert().values(version_id=version_id, screenshot_id=shot_id)
            )

    def record_problem(
        self,
        watch_id: str,
        at: str,
        url: str,
        problem: str,
        same: Callable[[str, str], bool] = lambda told, now: told == now,
    ) -> bool:
        """A screenshot that failed, recorded unless the watch's last screenshot row is
        already the `same` problem (the one told, this one; by default, this very one);
        returns whether it was recorded (news)."""
        last = self.last_row(watch_id)
        if last is not None and last["sha256"] is None and same(last["problem"] or "", problem):
            return False
        with self.db.writing("screenshots"), self.db.write() as conn:
            conn.execute(
                screenshot.insert().values(
                    watch_id=watch_id, taken_at=at, url=url, problem=problem[:1000]
                )
            )
        return True

    def last_row(self, watch_id: str) -> ScreenshotRow | None:
        """The watch's newest screenshot row, a problem or not."""
        query = (
            select(screenshot)
            .where(screenshot.c.watch_id == watch_id)
            .order_by(screenshot.c.id.desc())
            .limit(1)
        )
        return cast("ScreenshotRow | None", self.db.row(query))

    def last(self, watch_id: str) -> ScreenshotRow | None:
        """The watch's newest screenshot (with a PNG)."""
        query = (
            select(screenshot)
            .where(screenshot.c.watch_id == watch_id, screenshot.c.sha256.is_not(None))
            .order_by(screenshot.c.id.desc())
            .limit(1)
        )
        return cast("ScreenshotRow | None", self.db.row(query))

    def get(self, shot_id: int) -> ScreenshotRow | None:
        query = select(screenshot).where(screenshot.c.id == shot_id)
        return cast("ScreenshotRow | None", self.db.row(query))

    def of_watch(self, watch_id: str, limit: int = 200) -> list[ScreenshotRow]:
        """The watch's screenshot rows (problems too), newest first."""
        query = (
            select(screenshot)
            .where(screenshot.c.watch_id == watch_id)
            .order_by(screenshot.c.id.desc())
            .limit(limit)
        )
        return cast("list[ScreenshotRow]", self.db.rows(query))

    def of_version(self, version_id: int) -> ScreenshotRow | None:
        """The screenshot taken when a version was archived, if there is one."""
        query = (
            select(screenshot)
            .join(version_screenshot, version_screenshot.c.screenshot_id == screenshot.c.id)
            .where(version_screenshot.c.version_id == version_id)
        )
        return cast("ScreenshotRow | None", self.db.row(query))

    def of_versions(self, version_ids: list[int]) -> dict[int, VersionScreenshotRow]:
        """Screenshots by version id, for the versions that have one (exports)."""
        if not version_ids:
            return {}
        query = (
            select(version_screenshot.c.version_id, screenshot)
            .join(screenshot, version_screenshot.c.screenshot_id == screenshot.c.id)
            .where(version_screenshot.c.version_id.in_(version_ids))
        )
        rows = cast("list[VersionScreenshotRow]", self.db.rows(query))
        return {row["version_id"]: row for row in rows}

    def exported(self, watch_ids: list[str] | None, since: str | None) -> list[ScreenshotRow]:
        """The screenshots (with a PNG) of these watches (None: all), oldest first, taken
        at or after `since`: for exports."""
        query = select(screenshot).where(screenshot.c.sha256.is_not(None))
        if watch_ids is not None:
            query = query.where(screenshot.c.watch_id.in_(watch_ids))
        if since is not None:
            query = query.where(screenshot.c.taken_at >= since)
        return cast("list[ScreenshotRow]", self.db.rows(query.order_by(screenshot.c.id)))

    def versions_of(self, shot_id: int) -> list[int]:
        query = (
            select(version.c.id)
            .join(version_screenshot, version_screenshot.c.version_id == version.c.id)
            .where(version_screenshot.c.screenshot_id == shot_id)
            .order_by(version.c.id)
        )
        return [row["id"] for row in self.db.rows(query)]
