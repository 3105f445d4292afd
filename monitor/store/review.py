"""What people add to the archive in the web UI: annotations (their verdicts on changes),
the timelines they are shown beside, and watches added or edited in the UI."""

from __future__ import annotations

import json
from typing import Any, cast

from sqlalchemy import func, select

from monitor.store.accounts import ROLES
from monitor.store.database import Database, inserted_id
from monitor.store.dialect import MARK_END, MARK_START, upsert
from monitor.store.records import AnnotationRow, TimelineRow, VerdictRow, now_iso
from monitor.store.schema import annotation, blob, document, response, ui_watch, version

__all__ = ["MARK_END", "MARK_START", "ROLES", "VERDICTS", "Review"]

VERDICTS = ("significant", "noise")


class Review:
    def __init__(self, db: Database) -> None:
        self.db = db

    def timeline(
        self, document_id: int, first: int = 1, last: int | None = None
    ) -> list[TimelineRow]:
        """Versions `first`..`last` (by number) of a statement, oldest first, with the size
        of their text and of the response they came from, and their newest annotation
        (verdict, note, by whom)."""
        newest = (
            select(func.max(annotation.c.id))
            .where(annotation.c.version_id == version.c.id)
            .correlate(version)
            .scalar_subquery()
        )
        query = (
            select(
                version,
                blob.c.size.label("text_size"),
                response.c.body_size,
                annotation.c.verdict,
                annotation.c.note,
                annotation.c.username.label("annotated_by"),
            )
            .outerjoin(blob, blob.c.sha256 == version.c.text_sha256)
            .outerjoin(response, response.c.id == version.c.response_id)
            .outerjoin(annotation, annotation.c.id == newest)
            .where(version.c.document_id == document_id, version.c.seq >= first)
            .order_by(version.c.seq)
        )
        if last is not None:
            query = query.where(version.c.seq <= last)
        return cast("list[TimelineRow]", self.db.rows(query))

    # --- annotations ---------------------------------------------------------------------

    def annotate(
        self,
        document_id: int,
        version_id: int | None,
        username: str,
        verdict: str | None,
        note: str = "",
    ) -> int:
        if verdict is not None and verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, not {verdict!r}")
        with self.db.write() as conn:
            result = conn.execute(
                annotation.insert().values(
                    document_id=document_id,
                    version_id=version_id,
                    username=username,
                    verdict=verdict,
                    note=note,
                    created_at=now_iso(),
                )
            )
        return inserted_id(result)

    def annotations(self, document_id: int) -> list[AnnotationRow]:
        """Every annotation of a statement and its versions, newest first."""
        query = (
            select(annotation)
            .where(annotation.c.document_id == document_id)
            .order_by(annotation.c.id.desc())
        )
        return cast("list[AnnotationRow]", self.db.rows(query))

    def verdicts(self, watch_id: str, limit: int = 200) -> list[VerdictRow]:
        """The `limit` versions of a watch most recently given a verdict, with their newest
        verdict, newest first (the input of ignore suggestions)."""
        newest = (
            select(func.max(annotation.c.id).label("id"))
            .where(annotation.c.version_id.is_not(None), annotation.c.verdict.is_not(None))
            .group_by(annotation.c.version_id)
            .subquery()
        )
        query = (
            select(
                annotation.c.version_id,
                annotation.c.verdict,
                version.c.seq,
                version.c.text_sha256,
                version.c.document_id,
            )
            .join(newest, newest.c.id == annotation.c.id)
            .join(version, version.c.id == annotation.c.version_id)
            .join(document, document.c.id == version.c.document_id)
            .where(document.c.watch_id == watch_id)
            .order_by(annotation.c.id.desc())
            .limit(limit)
        )
        return cast("list[VerdictRow]", self.db.rows(query))

    # --- watches edited in the UI --------------------------------------------------------

    def is_ui_watch(self, watch_id: str) -> bool:
        """Whether this watch was saved in the UI (one row, where `ui_watches` reads all:
        states.py)."""
        query = select(ui_watch.c.id).where(ui_watch.c.id == watch_id)
        return self.db.row(query, flush=False) is not None

    def put_ui_watch(self, watch_id: str, settings: dict[str, Any], username: str) -> None:
        values = {
            "id": watch_id,
            "config": json.dumps(settings, ensure_ascii=False, sort_keys=True),
            "updated_at": now_iso(),
            "updated_by": username,
        }
        with self.db.write() as conn:
            conn.execute(
                upsert(conn, ui_watch, "id", values, ["config", "updated_at", "updated_by"])
            )

    def delete_ui_watch(self, watch_id: str) -> bool:
        with self.db.write() as conn:
            result = conn.execute(ui_watch.delete().where(ui_watch.c.id == watch_id))
        return result.rowcount == 1
