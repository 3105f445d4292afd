"""Annotations as the pages of one version, and search, show them (store/review.py writes
them): a note saved on a change is seen wherever that version is."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol, cast

from sqlalchemy import func, select

from monitor.store.database import Database
from monitor.store.records import AnnotationRow, NotedRow, NumberedAnnotationRow
from monitor.store.schema import annotation, document, version

# Notes looked through by a search of notes (newest first): people write a few a day.
NOTES_SEARCHED = 5000


class _Archive(Protocol):
    db: Database


def version_annotations(store: _Archive, version_id: int) -> list[AnnotationRow]:
    """The annotations of one version, newest first."""
    query = (
        select(annotation)
        .where(annotation.c.version_id == version_id)
        .order_by(annotation.c.id.desc())
    )
    return cast("list[AnnotationRow]", store.db.rows(query))


def newest_annotations(
    store: _Archive, document_ids: Collection[int]
) -> dict[int, NumberedAnnotationRow]:
    """{statement: its newest annotation (with the version's number)}, for those that have
    one."""
    if not document_ids:
        return {}
    newest = (
        select(func.max(annotation.c.id))
        .where(annotation.c.document_id.in_(sorted(document_ids)))
        .group_by(annotation.c.document_id)
    )
    query = (
        select(annotation, version.c.seq)
        .outerjoin(version, version.c.id == annotation.c.version_id)
        .where(annotation.c.id.in_(newest))
    )
    rows = cast("list[NumberedAnnotationRow]", store.db.rows(query))
    return {row["document_id"]: row for row in rows}


def noted(store: _Archive, limit: int = NOTES_SEARCHED) -> list[NotedRow]:
    """The newest annotations with a note, each with its statement (watch, key, title) and
    version number."""
    query = (
        select(
            annotation,
            version.c.seq,
            document.c.watch_id,
            document.c.key,
            document.c.title,
        )
        .join(document, document.c.id == annotation.c.document_id)
        .outerjoin(version, version.c.id == annotation.c.version_id)
        .where(annotation.c.note != "")
        .order_by(annotation.c.id.desc())
        .limit(limit)
    )
    return cast("list[NotedRow]", store.db.rows(query))
