"""The archive proper: blobs, the one write per check (its response, new versions and
their chains, the alerts they cause), what was archived, and retention of check rows."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache, cached_property
from pathlib import Path
from typing import Any, cast

import zstandard
from sqlalchemy import Connection, bindparam, func, or_, select

from monitor.store.blobs import Blobs, DatabaseBlobs, FileBlobs, StagedBlob, blob_file
from monitor.store.chain import link, watch_link
from monitor.store.database import Database, Deferred, DriverStatement, inserted_id
from monitor.store.dialect import insert_ignore
from monitor.store.outbox import AlertPayload, insert_alert
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
    WatchState,
    iso,
)
from monitor.store.schedule import Schedule
from monitor.store.schema import blob, check_run, document, response, version, watch

# Retention runs at most this often (seconds), after a commit, so a daemon prunes a few
# rows at a time instead of a cron job deleting millions at once.
_PRUNE_EVERY = 3600.0
_PRUNE_BATCH = 10_000
# Rows per query when streaming versions out (export), so memory stays flat.
_PAGE = 500
_CHECK_COLUMNS = ["watch_id", "at", "ms", "outcome", "status", "detail", "instance"]


class Archive:
    """Every version ever seen, byte for byte. `keep_checks`: seconds check rows are kept
    (None: for ever); versions are never deleted."""

    def __init__(
        self, db: Database, schedule: Schedule, root: Path, keep_checks: float | None = None
    ) -> None:
        self.db = db
        self.schedule = schedule
        self.root = root
        self.keep_checks = keep_checks
        self.blobs: Blobs = DatabaseBlobs() if db.blob_mode == "db" else FileBlobs(root / "blobs")
        self._insert_check = db.prepare(check_run.insert(), _CHECK_COLUMNS)
        self._next_prune = 0.0

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
        """Where a blob's file is (or would be) when blobs are files."""
        return blob_file(self.root / "blobs", sha256)

    def put_blob(self, data: bytes, media_type: str | None = None) -> str:
        """Store bytes under their SHA-256 (a no-op when already stored)."""
        with self.db.write() as conn:
            staged = self.blobs.stage(conn, data, media_type)
            self._register(conn, staged)
        return staged.sha256

    def read_blob(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name: damage is an error, never data."""
        with self.db.read() as conn:
            compressed = self.blobs.load(conn, sha256)
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
        with self.db.read() as conn:
            return self.blobs.stage(conn, data, media_type)

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
        rows = [
            (self._insert_check, {name: getattr(check, name) for name in _CHECK_COLUMNS}),
            self.schedule.state_write(state),
        ]
        if versions or alerts or settled:
            with self.db.writing("versions"):
                version_ids = self._commit_changes(
                    check, response, versions or [], alerts or [], rows, settled
                )
        else:
            self.db.defer(rows, keys=[state.watch_id])
            version_ids = []
        if self.keep_checks and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY
            self.prune_checks()
        return version_ids

    def _commit_changes(
        self,
        check: CheckRecord,
        response: ResponseRecord | None,
        versions: list[NewVersion],
        alerts: list[AlertPayload],
        rows: list[Deferred],
        settled: Settlement | None = None,
    ) -> list[int]:
        # Blob bytes first (files: durably on disk); the rows naming them come after, in
        # one transaction with everything else.
        body = request_body = None
        if response is not None and versions:
            body = self._stage(response.body, response.media_type)
            if response.request_body:
                request_body = self._stage(response.request_body, None)
        texts = [
            self._stage(v.text, "application/json") if v.text is not None else None
            for v in versions
        ]
        version_ids: list[int] = []
        with self.db.write() as conn:
            if settled is not None:
                _settle(conn, check.watch_id, settled, check.at)
            response_id = None
            if response is not None and body is not None:
                response_id = self._insert_response(
                    conn, check.watch_id, response, body, request_body
                )
            for new, text in zip(versions, texts, strict=True):
                if text is not None:
                    self._register(conn, text)
                version_id = _insert_version(
                    conn, check, new, response_id, text, body.sha256 if body else None
                )
                version_ids.append(version_id)
                for payload, channels in new.alerts:
                    insert_alert(conn, check.watch_id, version_id, payload, channels, check.at)
            for payload, channels in alerts:
                insert_alert(conn, check.watch_id, None, payload, channels, check.at)
            for statement, values in rows:
                conn.execute(statement.core, values)
        return version_ids

    def _insert_response(
        self,
        conn: Connection,
        watch_id: str,
        record: ResponseRecord,
        body: StagedBlob,
        request_body: StagedBlob | None,
    ) -> int:
        self._register(conn, body)
        if request_body is not None:
            self._register(conn, request_body)
        server_date = next((v for k, v in record.headers if k.lower() == "date"), None)
        # Values as parameters of one statement built once, not a statement built with
        # them (its construction and cache key cost more than SQLite's insert).
        result = conn.execute(
            _statements().insert_response,
            {
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
            },
        )
        return inserted_id(result)

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


def _insert_version(
    conn: Connection,
    check: CheckRecord,
    new: NewVersion,
    response_id: int | None,
    text: StagedBlob | None,
    body_sha256: str | None,
) -> int:
    """A version, numbered after its statement's last, linked into its statement's chain
    and its watch's (store/chain.py); its document is made or updated to match."""
    document_id, prev = _document_for(conn, check, new)
    statements = _statements()
    seq = conn.execute(statements.next_seq, {"doc": document_id}).scalar_one()
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
    watch_prev = conn.execute(
        statements.watch_chain, {"watch_id": check.watch_id}
    ).scalar_one_or_none()
    watch_chain = watch_link(watch_prev, chain)
    conn.execute(
        statements.update_document,
        {"doc": document_id, "chain_head": chain, **_document_fields(check, new)},
    )
    conn.execute(statements.update_watch, {"watch_id": check.watch_id, "chain_head": watch_chain})
    result = conn.execute(
        statements.insert_version,
        {
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
        },
    )
    return inserted_id(result)


@dataclass(frozen=True)
class _Statements:
    """The statements of a new version, built once: building them anew for every version
    (SQLAlchemy's constructs and their cache keys) cost more than SQLite's work on them."""

    find_document: Any
    next_seq: Any
    watch_chain: Any
    update_document: Any
    update_watch: Any
    insert_version: Any
    insert_document: Any
    insert_response: Any
    settle_version: Any


@cache
def _statements() -> _Statements:
    return _Statements(
        find_document=select(document.c.id, document.c.chain_head).where(
            document.c.watch_id == bindparam("watch_id"), document.c.key == bindparam("key")
        ),
        next_seq=select(func.coalesce(func.max(version.c.seq), 0) + 1).where(
            version.c.document_id == bindparam("doc")
        ),
        watch_chain=select(watch.c.chain_head).where(watch.c.id == bindparam("watch_id")),
        update_document=document.update().where(document.c.id == bindparam("doc")),
        update_watch=watch.update().where(watch.c.id == bindparam("watch_id")),
        insert_version=version.insert(),
        insert_document=document.insert(),
        insert_response=response.insert(),
        settle_version=version.update()
        .where(version.c.id == bindparam("version_id"), version.c.confirmation == "pending")
        .values(confirmation=bindparam("verdict")),
    )


def _document_fields(check: CheckRecord, new: NewVersion) -> dict[str, Any]:
    return {
        "url": new.url,
        "title": new.title,
        "published": new.published,
        "language": new.language,
        "removed_at": check.at if new.kind == "removed" else None,
    }


def _document_for(conn: Connection, check: CheckRecord, new: NewVersion) -> tuple[int, str | None]:
    """The id of the version's document (made if new) and its chain head."""
    found = conn.execute(
        _statements().find_document, {"watch_id": check.watch_id, "key": new.key}
    ).first()
    if found is not None:
        return int(found[0]), found[1]
    result = conn.execute(
        _statements().insert_document,
        {
            "watch_id": check.watch_id,
            "key": new.key,
            "first_seen": check.at,
            **_document_fields(check, new),
        },
    )
    return inserted_id(result), None


def _settle(conn: Connection, watch_id: str, settled: Settlement, at: str) -> None:
    """Record verdicts on pending versions and the alerts they release. Only a version
    still pending is settled: two looks racing to confirm it alert once."""
    for version_id, verdict in settled.verdicts.items():
        changed = conn.execute(
            _statements().settle_version, {"version_id": version_id, "verdict": verdict}
        ).rowcount
        if not changed:
            continue
        for payload, channels in settled.alerts.get(version_id, []):
            insert_alert(conn, watch_id, version_id, payload, channels, at)


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
