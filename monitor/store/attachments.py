"""The `attachment` table (schema.py): each new answer for a file a statement links to, with
its bytes and the text read from them as blobs (monitor/attachments.py writes it).

A row is written only for what is new — other bytes than the last row's, or another
problem — so a statement checked every minute with an unchanged PDF adds nothing here. The
blobs are made durable before the row that names them, as everywhere in the archive.
"""

from __future__ import annotations

import json
from collections.abc import Collection
from typing import cast

from sqlalchemy import select

from monitor.store.archive import Archive
from monitor.store.database import Database, inserted_id
from monitor.store.records import AttachmentRecord, AttachmentRow
from monitor.store.schema import attachment


class AttachmentFiles:
    """`store.attachments`: the answers for statements' attachments."""

    def __init__(self, db: Database, archive: Archive) -> None:
        self.db = db
        self.archive = archive

    def record(self, record: AttachmentRecord) -> int:
        """Store an answer (blobs first, then its row); returns the row's id."""
        body_sha = self.archive.put_blob(record.body, record.media_type) if record.body else None
        document_sha = (
            self.archive.put_blob(record.document, "application/json") if record.document else None
        )
        headers = record.headers
        etag = next((v for k, v in headers if k.lower() == "etag"), None)
        modified = next((v for k, v in headers if k.lower() == "last-modified"), None)
        with self.db.write() as conn:
            result = conn.execute(
                attachment.insert().values(
                    watch_id=record.watch_id,
                    url=record.url,
                    fetched_at=record.fetched_at,
                    final_url=record.final_url,
                    status=record.status,
                    headers=json.dumps(headers, ensure_ascii=False),
                    etag=etag,
                    last_modified=modified,
                    body_sha256=body_sha,
                    body_size=record.body_size,
                    media_type=record.media_type,
                    document_sha256=document_sha,
                    problem=record.problem,
                )
            )
            return inserted_id(result)

    def latest(self, watch_id: str, url: str) -> AttachmentRow | None:
        """The newest answer for this attachment of the watch."""
        query = (
            select(attachment)
            .where(attachment.c.watch_id == watch_id, attachment.c.url == url)
            .order_by(attachment.c.id.desc())
            .limit(1)
        )
        return cast("AttachmentRow | None", self.db.row(query, flush=False))

    def latest_read(self, watch_id: str, url: str) -> AttachmentRow | None:
        """The newest answer whose text could be read (its validators and Document)."""
        query = (
            select(attachment)
            .where(
                attachment.c.watch_id == watch_id,
                attachment.c.url == url,
                attachment.c.document_sha256.is_not(None),
            )
            .order_by(attachment.c.id.desc())
            .limit(1)
        )
        return cast("AttachmentRow | None", self.db.row(query, flush=False))

    def history(self, watch_id: str, url: str | None = None) -> list[AttachmentRow]:
        """Every answer recorded for the watch's attachments (one URL's), oldest first."""
        query = select(attachment).where(attachment.c.watch_id == watch_id)
        if url is not None:
            query = query.where(attachment.c.url == url)
        return cast(
            "list[AttachmentRow]", self.db.rows(query.order_by(attachment.c.id), flush=False)
        )

    def by_bodies(self, sha256s: Collection[str]) -> dict[str, AttachmentRow]:
        """For each body SHA-256, the first answer that brought those bytes."""
        if not sha256s:
            return {}
        query = (
            select(attachment)
            .where(attachment.c.body_sha256.in_(sorted(sha256s)))
            .order_by(attachment.c.id)
        )
        rows = cast("list[AttachmentRow]", self.db.rows(query, flush=False))
        found: dict[str, AttachmentRow] = {}
        for row in rows:
            if row["body_sha256"] is not None:  # the query asked for these sha256s
                found.setdefault(row["body_sha256"], row)
        return found
