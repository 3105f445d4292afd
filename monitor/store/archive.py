"""The archive proper: blobs, the one write per check (its response, new versions and
their chains, the alerts they cause), what was archived, and retention of check rows."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import zstandard
from sqlalchemy import Connection, bindparam, func, literal_column, or_, select

from monitor.store.blobs import (
    Blobs,
    DatabaseBlobs,
    FileBlobs,
    StagedBlob,
    UnreadableBlob,
    blob_file,
    stored_blob_file,
)
from monitor.store.chain import link, watch_link
from monitor.store.database import Database, Deferred, DriverStatement, RunStatement
from monitor.store.dialect import insert_ignore
from monitor.store.outbox import AlertPayload, AlertStatements, alert_statements, insert_alert_on
from monitor.store.provenance import response_columns
from monitor.store.records import (
    CheckRecord,
    CheckRow,
    DocumentHead,
    DocumentRow,
    DocumentSummaryRow,
    MementoRow,
    NewVersion,
    ResponseRecord,
    ResponseRow,
    Settlement,
    StoreError,
    VersionRow,
    VersionWithDocumentRow,
    iso,
)
from monitor.store.schema import blob, blob_data, check_run, document, response, version, watch

_PRUNE_BATCH = 10_000
# Rows per query when streaming versions out (export), so memory stays flat.
_PAGE = 500


class Archive:
    """Every version ever seen, byte for byte. `keep_checks`: seconds check rows are kept
    (None: for ever); versions are never deleted."""

    def __init__(self, db: Database, root: Path, keep_checks: float | None = None) -> None:
        self.db = db
        self.root = root
        self.keep_checks = keep_checks
        self.blobs: Blobs = DatabaseBlobs() if db.blob_mode == "db" else FileBlobs(root / "blobs")

    # The reads of a changed page's check, prepared on first use (an unchanged cycle makes
    # none of them, and `monitor` commands that never check need none).
    @cached_property
    def _select_heads(self) -> DriverStatement:
        return self.db.prepare(_heads_query(), [])

    @cached_property
    def _select_newest(self) -> DriverStatement:
        return self.db.prepare(
            select(version)
            .where(version.c.document_id == bindparam("document_id"))
            .order_by(version.c.seq.desc())
            .limit(bindparam("newest")),
            [],
        )

    @cached_property
    def _select_with_text(self) -> DriverStatement:
        return self.db.prepare(
            select(version)
            .where(
                version.c.document_id == bindparam("document_id"),
                version.c.text_sha256 == bindparam("text_sha256"),
                version.c.observed_at >= bindparam("since"),
            )
            .order_by(version.c.seq),
            [],
        )

    # --- blobs ---------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        """Where a blob's file is, in either layout (see `blob_file`), or would be written
        when it is in neither, when blobs are files."""
        root = self.root / "blobs"
        return stored_blob_file(root, sha256) or blob_file(root, sha256)

    def put_blob(self, data: bytes, media_type: str | None = None) -> str:
        """Store bytes under their SHA-256 (a no-op when already stored)."""
        with self.db.write() as conn:
            staged = self.blobs.stage(conn, data, media_type)
            self._register(conn, staged)
        return staged.sha256

    def read_blob(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name: damage is an error, never data."""
        try:
            compressed = self.blobs.read(self.db, sha256)
        except UnreadableBlob as err:
            raise StoreError(f"blob {sha256} is damaged: {err} (run `monitor verify`)") from None
        if compressed is None:
            raise StoreError(f"blob {sha256} is missing (run `monitor verify`)")
        try:
            data = self.blobs.decompress(compressed)
        except zstandard.ZstdError as err:
            raise StoreError(f"blob {sha256} is damaged: {err} (run `monitor verify`)") from None
        if hashlib.sha256(data).hexdigest() != sha256:
            raise StoreError(f"blob {sha256} is damaged: content does not match its SHA-256")
        return data

    def _stage(self, data: bytes, media_type: str | None) -> StagedBlob:
        if isinstance(self.blobs, DatabaseBlobs):
            # Whether the database holds it already, asked on the driver (blob rows are
            # never in the batch of unchanged checks: it need not be written first), where
            # a transaction of SQLAlchemy's and its select cost more than the rest of the
            # blob's way into the archive, two blobs of every new page.
            return self.blobs.stage_known(data, media_type, self._stored_size)
        assert isinstance(self.blobs, FileBlobs)  # the only other place blobs live
        return self.blobs.stage(None, data, media_type)  # files: nothing to read

    def _stored_size(self, sha256: str) -> int | None:
        rows = self.db.prepared_rows(self._rows.stored_size, {"sha256": sha256}, flush=False)
        return int(rows[0]["stored_size"]) if rows else None

    def _register(self, conn: Connection, staged: StagedBlob) -> None:
        conn.execute(
            insert_ignore(conn, blob),
            {
                "sha256": staged.sha256,
                "size": staged.size,
                "stored_size": staged.stored_size,
                "media_type": staged.media_type,
            },
        )
        self.blobs.attach(conn, staged)

    # --- the one write per check ---------------------------------------------------------

    def commit_changes(
        self,
        check: CheckRecord,
        response: ResponseRecord | None,
        versions: list[NewVersion],
        alerts: list[AlertPayload],
        rows: list[Deferred],
        settled: Settlement | None = None,
    ) -> list[int]:
        """A check that found something (`CheckWrites.commit_check`): its `rows` (its
        check_run row and state), its response, new versions and their alerts, and its
        verdict on pending versions, in one transaction. Returns the new versions' ids."""
        staged = self._stage_changes(response, versions)
        with self.db.write() as conn:
            return self._write_changes(
                conn, staged, check, response, versions, alerts, rows, settled
            )

    async def commit_changes_together(
        self,
        check: CheckRecord,
        response: ResponseRecord | None,
        versions: list[NewVersion],
        alerts: list[AlertPayload],
        rows: list[Deferred],
        settled: Settlement | None = None,
    ) -> list[int]:
        """`commit_changes`, in one transaction with the other checks' of the moment (see
        `Database.together`), each check's atomically; it returns once they are committed."""
        staged = self._stage_changes(response, versions)

        def write(conn: Connection) -> list[int]:
            return self._write_changes(
                conn, staged, check, response, versions, alerts, rows, settled
            )

        return await self.db.together(write)

    def _stage_changes(
        self, response: ResponseRecord | None, versions: list[NewVersion]
    ) -> _Staged:
        """Blob bytes first (files: durably on disk); the rows naming them come after, in
        one transaction with everything else."""
        body = request_body = None
        if response is not None and versions:
            body = self._stage(response.body, response.media_type)
            if response.request_body:
                request_body = self._stage(response.request_body, None)
        texts = [
            self._stage(v.text, "application/json") if v.text is not None else None
            for v in versions
        ]
        return _Staged(body, request_body, texts)

    def _write_changes(
        self,
        conn: Connection,
        staged: _Staged,
        check: CheckRecord,
        response: ResponseRecord | None,
        versions: list[NewVersion],
        alerts: list[AlertPayload],
        rows: list[Deferred],
        settled: Settlement | None,
    ) -> list[int]:
        """A check's rows, inside the transaction `conn` is in."""
        body, request_body, texts = staged.body, staged.request_body, staged.texts
        version_ids: list[int] = []
        with self._driver(conn) as rows_of:
            if settled is not None:
                _settle(rows_of, self._rows, check.watch_id, settled, check.at)
            response_id = None
            if response is not None and body is not None:
                response_id = self._insert_response(
                    conn, rows_of, check.watch_id, response, body, request_body
                )
            for new, text in zip(versions, texts, strict=True):
                if text is not None:
                    self._register_on(conn, rows_of, text)
                version_id = self._insert_version(
                    rows_of, check, new, response_id, text, body.sha256 if body else None
                )
                version_ids.append(version_id)
                for payload, channels in new.alerts:
                    insert_alert_on(
                        rows_of,
                        self._rows.alerts,
                        check.watch_id,
                        version_id,
                        payload,
                        channels,
                        check.at,
                    )
            for payload, channels in alerts:
                insert_alert_on(
                    rows_of, self._rows.alerts, check.watch_id, None, payload, channels, check.at
                )
            for statement, values in rows:
                rows_of(statement, values)
        return version_ids

    @contextmanager
    def _driver(self, conn: Connection) -> Iterator[_RowsOf]:
        """Statements run on the driver's own connection inside `conn`'s transaction (the
        same connection): the dozen statements of a new version cost several times what
        SQLite takes for them when SQLAlchemy builds and runs each (its result objects,
        events and parameter processing), a millisecond and more per new page."""
        with self.db.statements_on(conn) as rows_of:
            yield rows_of

    @cached_property
    def _rows(self) -> _Rows:
        return _prepared_rows(self.db)

    def _register_on(self, conn: Connection, rows_of: _RowsOf, staged: StagedBlob) -> None:
        """`_register` on the driver."""
        rows_of(
            self._rows.register_blob,
            {
                "sha256": staged.sha256,
                "size": staged.size,
                "stored_size": staged.stored_size,
                "media_type": staged.media_type,
            },
        )
        if isinstance(self.blobs, DatabaseBlobs) and staged.data is not None:
            # The bytes with their row, on the driver too (`DatabaseBlobs.attach`).
            rows_of(self._rows.register_blob_data, {"sha256": staged.sha256, "data": staged.data})
        else:
            self.blobs.attach(conn, staged)

    def _insert_response(
        self,
        conn: Connection,
        rows_of: _RowsOf,
        watch_id: str,
        record: ResponseRecord,
        body: StagedBlob,
        request_body: StagedBlob | None,
    ) -> int:
        self._register_on(conn, rows_of, body)
        if request_body is not None:
            self._register_on(conn, rows_of, request_body)
        server_date = next((v for k, v in record.headers if k.lower() == "date"), None)
        values = {
            "watch_id": watch_id,
            "requested_at": record.requested_at,
            "method": record.method,
            "url": record.url,
            "final_url": record.final_url,
            "status": record.status,
            "http_version": record.http_version,
            "request_headers": json.dumps(record.request_headers, ensure_ascii=False),
            "request_body": request_body.sha256 if request_body else None,
            "headers": json.dumps(record.headers, ensure_ascii=False),
            "redirects": json.dumps(record.redirects),
            "server_date": server_date,
            "body_sha256": body.sha256,
            "body_size": body.size,
            **response_columns(conn, record.tls, record.requested_at),
        }
        return int(rows_of(self._rows.insert_response, values).fetchone()[0])

    def _insert_version(
        self,
        rows_of: _RowsOf,
        check: CheckRecord,
        new: NewVersion,
        response_id: int | None,
        text: StagedBlob | None,
        body_sha256: str | None,
    ) -> int:
        """A version, numbered after its statement's last, linked into its statement's chain
        and its watch's (store/chain.py); its document is made or updated to match. A new
        statement's document is made with its chain head, its version numbered 1 (two
        statements of a first sweep's ~12 per page fewer: no version to count, nothing
        to update)."""
        prepared = self._rows
        fields = _document_fields(check, new)
        found = rows_of(
            prepared.find_document, {"watch_id": check.watch_id, "key": new.key}
        ).fetchone()
        document_id: int | None = None
        if found is not None:
            document_id, prev = int(found[0]), found[1]
            seq = int(rows_of(prepared.next_seq, {"doc": document_id}).fetchone()[0])
        else:
            prev, seq = None, 1
        facts = {
            "watch": check.watch_id,
            "key": new.key,
            "seq": seq,
            "observed_at": check.at,
            "kind": new.kind,
            "text_sha256": text.sha256 if text else None,
            "body_sha256": body_sha256,
            "score": new.score,
            "summary": new.summary,
        }
        chain = link(prev, facts)
        found = rows_of(prepared.watch_chain, {"watch_id": check.watch_id}).fetchone()
        watch_chain = watch_link(found[0] if found is not None else None, chain)
        if document_id is None:
            values: dict[str, Any] = {
                "watch_id": check.watch_id,
                "key": new.key,
                "first_seen": check.at,
                "chain_head": chain,
            }
            document_id = int(rows_of(prepared.insert_document, values | fields).fetchone()[0])
        else:
            rows_of(prepared.update_document, {"doc": document_id, "chain_head": chain} | fields)
        rows_of(prepared.update_watch, {"watch_id": check.watch_id, "chain_head": watch_chain})
        row: dict[str, Any] = {
            "document_id": document_id,
            "seq": seq,
            "observed_at": check.at,
            "kind": new.kind,
            "response_id": response_id,
            "text_sha256": facts["text_sha256"],
            "score": new.score,
            "summary": new.summary,
            "confirmation": new.confirmation,
            "prev_chain": prev,
            "chain": chain,
            "watch_chain": watch_chain,
        }
        return int(rows_of(prepared.insert_version, row).fetchone()[0])

    # --- retention -----------------------------------------------------------------------

    def prune_checks(self, now: datetime | None = None) -> int:
        """Delete check_run rows older than keep_checks; versions are never touched.

        Rows are found by id, not by an index on time: ids grow with time, so the expired
        rows are a prefix of the table and the scan stops at the first row still kept."""
        if not self.keep_checks:
            return 0
        cutoff = iso((now or datetime.now(UTC)) - timedelta(seconds=self.keep_checks))
        deleted = 0
        while True:
            with self.db.write() as conn:
                upto = _expired_upto(conn, cutoff)
                if upto is None:
                    return deleted
                result = conn.execute(check_run.delete().where(check_run.c.id < upto))
                deleted += result.rowcount

    # --- reading -------------------------------------------------------------------------

    def heads(self, watch_id: str) -> dict[str, DocumentHead]:
        # Documents and versions only: the batch of unchanged checks (check_run and
        # watch_state rows) need not be written first, as it was, in a transaction of its
        # own for every check whose page came back with other bytes.
        rows = self.db.prepared_rows(self._select_heads, {"watch_id": watch_id}, flush=False)
        return {row["key"]: DocumentHead(**row) for row in rows}

    def has_versions(self, watch_id: str) -> bool:
        query = select(document.c.id).where(document.c.watch_id == watch_id).limit(1)
        return self.db.row(query) is not None

    def reference(self, document_id: int, before_seq: int) -> VersionWithDocumentRow | None:
        """The newest version of a statement before `before_seq` that stands: not transient,
        not pending (what a pending version's alert compares against)."""
        return self._version_row(
            version_with_document()
            .where(
                version.c.document_id == document_id,
                version.c.seq < before_seq,
                or_(
                    version.c.confirmation.is_(None),
                    version.c.confirmation.not_in(("pending", "transient")),
                ),
            )
            .order_by(version.c.seq.desc())
            .limit(1)
        )

    def documents(self, watch_id: str) -> list[DocumentSummaryRow]:
        query = (
            select(
                document,
                func.count(version.c.id).label("versions"),
                func.max(version.c.observed_at).label("last_version_at"),
            )
            .join(version, version.c.document_id == document.c.id)
            .where(document.c.watch_id == watch_id)
            .group_by(document.c.id)
            .order_by(document.c.published.desc().nulls_last(), document.c.key)
        )
        return cast("list[DocumentSummaryRow]", self.db.rows(query))

    def document(self, watch_id: str, key: str) -> DocumentRow | None:
        return cast(
            "DocumentRow | None",
            self.db.row(
                select(document).where(document.c.watch_id == watch_id, document.c.key == key)
            ),
        )

    def document_by_id(self, document_id: int) -> DocumentRow | None:
        return cast(
            "DocumentRow | None", self.db.row(select(document).where(document.c.id == document_id))
        )

    def versions(self, document_id: int, newest: int | None = None) -> list[VersionRow]:
        """A statement's versions, oldest first; with `newest`, only that many of the
        newest (read from the end of the (document_id, seq) index: the same cost at the
        5,000th version as at the second)."""
        if newest is None:
            rows = self.db.rows(
                select(version).where(version.c.document_id == document_id).order_by(version.c.seq)
            )
        else:
            values = {"document_id": document_id, "newest": newest}
            rows = self.db.prepared_rows(self._select_newest, values)[::-1]
        return cast("list[VersionRow]", rows)

    def versions_with_text(
        self, document_id: int, text_sha256: str, since: str
    ) -> list[VersionRow]:
        """A statement's versions with this text observed at `since` or later, oldest first
        (through the version_text_seen index)."""
        values = {"document_id": document_id, "text_sha256": text_sha256, "since": since}
        return cast("list[VersionRow]", self.db.prepared_rows(self._select_with_text, values))

    def version(self, version_id: int) -> VersionWithDocumentRow | None:
        """A version with its document's watch, key, title, URL and language."""
        return self._version_row(version_with_document().where(version.c.id == version_id))

    def version_at(self, document_id: int, seq: int) -> VersionWithDocumentRow | None:
        return self._version_row(
            version_with_document().where(
                version.c.document_id == document_id, version.c.seq == seq
            )
        )

    def last_seq(self, document_id: int) -> int:
        query = select(func.max(version.c.seq)).where(version.c.document_id == document_id)
        return int(self.db.scalar(query) or 0)

    def latest_change(self, watch_id: str) -> VersionWithDocumentRow | None:
        """The newest edited, removed or restored version of a watch."""
        return self._version_row(
            version_with_document()
            .where(
                document.c.watch_id == watch_id,
                version.c.kind.in_(("edited", "removed", "restored")),
            )
            .order_by(version.c.id.desc())
            .limit(1)
        )

    def response(self, response_id: int) -> ResponseRow | None:
        """A stored response, its JSON columns decoded."""
        return self.responses([response_id]).get(response_id)

    def responses(self, response_ids: Collection[int]) -> dict[int, ResponseRow]:
        """Stored responses by id, their JSON columns decoded, in one query (a list of a
        statement's versions read them one by one)."""
        if not response_ids:
            return {}
        rows = self.db.rows(select(response).where(response.c.id.in_(sorted(set(response_ids)))))
        for row in rows:
            for name in ("request_headers", "headers", "redirects"):
                row[name] = json.loads(row[name])
        return {row["id"]: cast("ResponseRow", row) for row in rows}

    def version_count(self, watch_id: str | None = None) -> int:
        query = select(func.count(version.c.id)).select_from(version)
        if watch_id is not None:
            query = query.join(document, document.c.id == version.c.document_id).where(
                document.c.watch_id == watch_id
            )
        return int(self.db.scalar(query))

    def iter_versions(
        self, watch_id: str | Collection[str] | None = None, since: str | None = None
    ) -> Iterator[VersionWithDocumentRow]:
        """Every version (oldest first) with its document, a page of rows at a time; of a
        watch, or of several."""
        after = 0
        watch_ids = [watch_id] if isinstance(watch_id, str) else watch_id
        while True:
            query = version_with_document().where(version.c.id > after)
            if watch_ids is not None:
                query = query.where(document.c.watch_id.in_(list(watch_ids)))
            if since is not None:
                query = query.where(version.c.observed_at >= since)
            rows = cast(
                "list[VersionWithDocumentRow]",
                self.db.rows(query.order_by(version.c.id).limit(_PAGE)),
            )
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1]["id"]

    def mementos(self, url: str) -> list[MementoRow]:
        """Every version of the statements at this URL read from a stored response (not
        removals), by when the response was asked for: what Memento's TimeMap lists."""
        query = (
            select(
                document.c.watch_id,
                document.c.key,
                version.c.seq,
                version.c.observed_at,
                version.c.response_id,
                response.c.requested_at,
            )
            .join(version, version.c.document_id == document.c.id)
            .join(response, response.c.id == version.c.response_id)
            .where(document.c.url == url, version.c.kind != "removed")
            .order_by(response.c.requested_at, version.c.id)
        )
        return cast("list[MementoRow]", self.db.rows(query))

    def checks(self, watch_id: str, limit: int = 20) -> list[CheckRow]:
        return cast(
            "list[CheckRow]",
            self.db.rows(
                select(check_run)
                .where(check_run.c.watch_id == watch_id)
                .order_by(check_run.c.id.desc())
                .limit(limit)
            ),
        )

    def _version_row(self, query: Any) -> VersionWithDocumentRow | None:
        """The first row of a `version_with_document()` query."""
        return cast("VersionWithDocumentRow | None", self.db.row(query))


def _heads_query() -> Any:
    """Each statement of a watch (`watch_id`) with its newest version."""
    later = version.alias("later")
    latest = (
        select(func.max(later.c.seq)).where(later.c.document_id == document.c.id)
    ).scalar_subquery()
    return (
        select(
            document.c.id,
            document.c.key,
            document.c.url,
            document.c.title,
            document.c.published,
            document.c.language,
            version.c.text_sha256,
            version.c.seq,
            version.c.response_id,
            version.c.confirmation,
            version.c.id.label("version_id"),
        )
        .join(version, version.c.document_id == document.c.id)
        .where(document.c.watch_id == bindparam("watch_id"), version.c.seq == latest)
    )


def version_with_document() -> Any:
    """A version with its document's watch, key, title, URL, language and date."""
    return select(
        version,
        document.c.watch_id,
        document.c.key,
        document.c.title,
        document.c.url,
        document.c.language,
        document.c.published,
    ).join(document, document.c.id == version.c.document_id)


# Runs a prepared statement with its values on the driver's connection; the driver's cursor.
_RowsOf = RunStatement


@dataclass(frozen=True)
class _Staged:
    """A check's blobs, made ready before its transaction (see `Archive._stage_changes`)."""

    body: StagedBlob | None
    request_body: StagedBlob | None
    texts: list[StagedBlob | None]


_DOCUMENT_FIELDS = ["url", "title", "published", "language", "removed_at"]
_RESPONSE_COLUMNS = [
    *("watch_id", "requested_at", "method", "url", "final_url", "status", "http_version"),
    *("request_headers", "request_body", "headers", "redirects", "server_date"),
    *("body_sha256", "body_size", "tls", "tls_chain"),
]
_VERSION_COLUMNS = [
    *("document_id", "seq", "observed_at", "kind", "response_id", "text_sha256", "score"),
    *("summary", "confirmation", "prev_chain", "chain", "watch_chain"),
]


@dataclass(frozen=True)
class _Rows:
    """The statements of a new version, compiled once for the archive's database and run on
    the driver (see `Archive._driver`); inserts return the new row's id."""

    find_document: DriverStatement
    insert_document: DriverStatement
    next_seq: DriverStatement
    watch_chain: DriverStatement
    update_document: DriverStatement
    update_watch: DriverStatement
    insert_version: DriverStatement
    insert_response: DriverStatement
    register_blob: DriverStatement
    register_blob_data: DriverStatement
    stored_size: DriverStatement
    settle_version: DriverStatement
    alerts: AlertStatements


def _prepared_rows(db: Database) -> _Rows:
    return _Rows(
        find_document=db.prepare(
            select(document.c.id, document.c.chain_head).where(
                document.c.watch_id == bindparam("watch_id"), document.c.key == bindparam("key")
            ),
            [],
        ),
        insert_document=db.prepare(
            document.insert().returning(document.c.id),
            ["watch_id", "key", "first_seen", "chain_head", *_DOCUMENT_FIELDS],
        ),
        next_seq=db.prepare(
            select(func.coalesce(func.max(version.c.seq), 0) + 1).where(
                version.c.document_id == bindparam("doc")
            ),
            [],
        ),
        watch_chain=db.prepare(
            select(watch.c.chain_head).where(watch.c.id == bindparam("watch_id")), []
        ),
        update_document=db.prepare(
            document.update().where(document.c.id == bindparam("doc")),
            ["chain_head", *_DOCUMENT_FIELDS],
        ),
        update_watch=db.prepare(
            watch.update().where(watch.c.id == bindparam("watch_id")), ["chain_head"]
        ),
        insert_version=db.prepare(version.insert().returning(version.c.id), _VERSION_COLUMNS),
        insert_response=db.prepare(response.insert().returning(response.c.id), _RESPONSE_COLUMNS),
        register_blob=db.prepare(
            db.dialect.insert(blob).on_conflict_do_nothing(),
            ["sha256", "size", "stored_size", "media_type"],
        ),
        register_blob_data=db.prepare(
            db.dialect.insert(blob_data).on_conflict_do_nothing(), ["sha256", "data"]
        ),
        stored_size=db.prepare(
            select(blob.c.stored_size).where(blob.c.sha256 == bindparam("sha256")), []
        ),
        settle_version=db.prepare(
            version.update()
            .where(
                version.c.id == bindparam("version_id"),
                version.c.confirmation == literal_column("'pending'"),
            )
            .values(confirmation=bindparam("verdict")),
            [],
        ),
        alerts=alert_statements(db),
    )


def _document_fields(check: CheckRecord, new: NewVersion) -> dict[str, Any]:
    return {
        "url": new.url,
        "title": new.title,
        "published": new.published,
        "language": new.language,
        "removed_at": check.at if new.kind == "removed" else None,
    }


def _settle(rows_of: _RowsOf, rows: _Rows, watch_id: str, settled: Settlement, at: str) -> None:
    """Record verdicts on pending versions and the alerts they release. Only a version
    still pending is settled: two looks racing to confirm it alert once."""
    for version_id, verdict in settled.verdicts.items():
        values = {"version_id": version_id, "verdict": verdict}
        if not rows_of(rows.settle_version, values).rowcount:
            continue
        for payload, channels in settled.alerts.get(version_id, []):
            insert_alert_on(rows_of, rows.alerts, watch_id, version_id, payload, channels, at)


def _expired_upto(conn: Connection, cutoff: str) -> int | None:
    """The id below which the next batch of expired check rows lies (None: none left)."""
    first_kept = conn.execute(
        select(check_run.c.id).where(check_run.c.at >= cutoff).order_by(check_run.c.id).limit(1)
    ).scalar_one_or_none()
    if first_kept is None:
        first_kept = conn.execute(
            select(func.coalesce(func.max(check_run.c.id), 0) + 1)
        ).scalar_one()
    oldest = conn.execute(select(func.min(check_run.c.id))).scalar_one_or_none()
    if oldest is None or oldest >= first_kept:
        return None
    return int(min(first_kept, oldest + _PRUNE_BATCH))
