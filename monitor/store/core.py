"""The `Store`: every read and write of the archive, on SQLite or PostgreSQL."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections.abc import Collection, Iterator
from contextlib import contextmanager
from dataclasses import fields
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from pathlib import Path
from typing import Any

import zstandard
from sqlalchemy import Connection, and_, bindparam, func, or_, select
from sqlalchemy.exc import OperationalError

from monitor.store.blobs import Blobs, DatabaseBlobs, FileBlobs, StagedBlob, blob_file
from monitor.store.chain import ChainReport, link, walk, watch_link
from monitor.store.changes import ChangesMixin
from monitor.store.furniture import FurnitureMixin
from monitor.store.provenance import response_columns
from monitor.store.records import (
    CheckRecord,
    Delivery,
    DocumentHead,
    NewVersion,
    ResponseRecord,
    Settlement,
    StoreError,
    VerifyReport,
    WatchState,
    iso,
    now_iso,
)
from monitor.store.review import ReviewMixin
from monitor.store.schedule import ScheduleMixin
from monitor.store.schema import (
    alert,
    blob,
    blob_data,
    chain_facts,
    check_run,
    delivery,
    document,
    get_meta,
    metadata,
    migrate,
    response,
    set_meta,
    version,
    watch,
    watch_state,
)
from monitor.store.sessions import SessionMixin
from monitor.store.sql import describe, insert_ignore, postgresql_engine, sqlite_engine, upsert
from monitor.store.tokens import TokenMixin
from monitor.store.writer import WriterLock

Row = dict[str, Any]

logger = logging.getLogger("monitor.store")

# Unchanged checks (a check_run row and the watch's state: nothing of the archive) are
# written in batches, one transaction for all that finish within this many seconds, instead
# of one each: a transaction costs SQLite 80 us, against 30 us per check batched (measured),
# and unchanged checks are nearly all a daemon does. Any other read or write of the store
# writes the batch first, so nothing in this process sees the store without it. A crash
# loses at most the last batch: "checked, nothing changed" rows, never a version.
_BATCH_WINDOW = 0.05
_BATCH_MAX = 1000

# Retention runs at most this often (seconds), after a commit, so a daemon prunes a few
# rows at a time instead of a cron job deleting millions at once.
_PRUNE_EVERY = 3600.0
_PRUNE_BATCH = 10_000
# Rows per query when streaming versions out (export), so memory stays flat.
_PAGE = 500
_CHECK_COLUMNS = ["watch_id", "at", "ms", "outcome", "status", "detail", "instance"]
# Leases belong to the scheduler's claims (schedule.py); a check's commit leaves them alone.
# watch_state's columns a WatchState holds, in the order of its fields: a row is read into
# one positionally (10,000 of them at a daemon's start).
_STATE_COLUMNS = [f.name for f in fields(WatchState) if f.name != "watch_id"]
assert all(name in watch_state.c for name in _STATE_COLUMNS), "WatchState and schema differ"


class _DriverStatement:
    """A Core statement, and its SQL compiled once for the database's dialect so that the
    unchanged-check path can run it on the driver's own connection: SQLAlchemy's execution
    machinery costs three times what SQLite takes for the two statements (measured), and an
    unchanged check is what a daemon does thousands of times a day."""

    def __init__(self, core: Any, dialect: Any, columns: list[str]) -> None:
        self.core = core
        compiled = core.compile(dialect=dialect, column_keys=columns)
        self.sql = str(compiled)
        order = compiled.positiontup  # None for named parameters (psycopg)
        # A tuple in the statement's order (itemgetter of one name gives no tuple).
        self._pick = itemgetter(*order) if order and len(order) > 1 else None
        self._order = order

    def parameters(self, values: dict[str, Any]) -> Any:
        if self._pick is not None:
            return self._pick(values)
        return tuple(values[name] for name in self._order) if self._order else values


class Store(ReviewMixin, ScheduleMixin, SessionMixin, FurnitureMixin, TokenMixin, ChangesMixin):
    """The archive. `path` is the data directory (SQLite index and blob files); with `url`
    the index is a PostgreSQL database and blobs go to the database (`blobs="db"`, the
    default there) or to `path` (`blobs="path"`, a directory every daemon shares)."""

    def __init__(
        self,
        path: str | Path = "snapshots",
        *,
        url: str | None = None,
        blobs: str | None = None,
        keep_checks: float | None = None,
    ) -> None:
        self.root = Path(path)
        self.keep_checks = keep_checks
        self.db_path: Path | None = None
        if url:
            self.engine = postgresql_engine(url)
        else:
            self.root.mkdir(parents=True, exist_ok=True)
            self.db_path = self.root / "index.sqlite"
            self.engine = sqlite_engine(self.db_path)
        self.location = describe(self.engine) if url else str(self.db_path)
        self._sqlite = self.engine.dialect.name == "sqlite"
        # A PostgreSQL archive may be shared by several daemons (they claim each check).
        self.shared = not self._sqlite
        self._next_prune = 0.0
        self._writer: WriterLock | None = None
        self._conn: Connection | None = None
        # The batch of unchanged checks not yet written, and the timer that will write it.
        self._batch: list[tuple[_DriverStatement, dict[str, Any]]] = []
        # The watches whose state the batch updates: reading another's needs no flush.
        self._batched_states: set[str] = set()
        self._batch_timer: asyncio.TimerHandle | None = None
        self._batch_loop: asyncio.AbstractEventLoop | None = None
        # Writes that failed for want of a writable store (a full disk, a read-only data
        # directory, a lost server), by kind: (the error, since when). A kind is cleared by
        # its own next success: checks' rows may still fit on a disk too full for a page.
        self._write_failures: dict[str, tuple[str, str]] = {}
        try:
            self._conn = self.engine.connect()
            with self._write() as conn:
                migrate(conn, self.location)
                mode = _blob_mode(conn, blobs, default="db" if url else "path", where=self.location)
        except OperationalError as err:  # unreachable server, unwritable directory, …
            self.close()
            raise StoreError(f"cannot open the store at {self.location}: {err.orig}") from None
        except BaseException:
            self.close()
            raise
        self.blobs: Blobs = DatabaseBlobs() if mode == "db" else FileBlobs(self.root / "blobs")
        dialect = self.engine.dialect
        self._insert_check = _DriverStatement(check_run.insert(), dialect, _CHECK_COLUMNS)
        self._update_state = _DriverStatement(
            watch_state.update().where(watch_state.c.watch_id == bindparam("state_of")),
            dialect,
            _STATE_COLUMNS,
        )
        # Several watches' states in one query with one parameter (a JSON array on SQLite,
        # an array on PostgreSQL): one SQL text, however many watches are asked for.
        columns = ", ".join(["watch_id", *_STATE_COLUMNS])
        among = "IN (SELECT value FROM json_each(?))" if self._sqlite else "= ANY(%s)"
        self._select_all_states = f"SELECT {columns} FROM {watch_state.name}"
        self._select_states = f"{self._select_all_states} WHERE watch_id {among}"

    @classmethod
    def from_config(cls, config: Any) -> Store:
        """From a `[store]` section (monitor.config.StoreConfig)."""
        return cls(config.path, url=config.url, blobs=config.blobs, keep_checks=config.keep_checks)

    def family(self, watch_id: str) -> list[str]:
        """A watch and the statement watches it discovered (where a listing's statements
        are archived)."""
        return [watch_id, *(row["watch_id"] for row in self.discovered([watch_id]))]

    def chain_heads(
        self, watch_ids: Collection[str] | None = None
    ) -> tuple[dict[str, str | None], dict[str, str | None]]:
        """The chain heads (store/chain.py) of statements and of watches, for exports."""
        with self._read() as conn:
            if watch_ids is None:
                return chain_heads(conn)
            statements: dict[str, str | None] = {}
            watches: dict[str, str | None] = {}
            for watch_id in watch_ids:
                more, more_watches = chain_heads(conn, watch_id)
                statements |= more
                watches |= more_watches
            return statements, watches

    @property
    def write_failure(self) -> str | None:
        """Why the store cannot be written, while it cannot; None when it can (as far as
        the latest writes of each kind went)."""
        if not self._write_failures:
            return None
        return "; ".join(
            f"cannot write {kind} since {since}: {error}"
            for kind, (error, since) in sorted(self._write_failures.items())
        )

    @contextmanager
    def _writing(self, kind: str) -> Iterator[None]:
        """Note whether a write of this kind failed because the store cannot be written."""
        try:
            yield
        except Exception as err:
            if _cannot_write(err):
                since = self._write_failures.get(kind, ("", now_iso()))[1]
                self._write_failures[kind] = (_error_text(err), since)
            raise
        self._write_failures.pop(kind, None)

    def hold_writer_lock(self, purpose: str) -> None:
        """Be the one process that checks this archive (`run`, `check`) until closed: a
        second is refused, naming the first (see writer.py). PostgreSQL archives are
        shared through claims instead, and need no lock."""
        if self._sqlite and self._writer is None:
            self._writer = WriterLock(self.root, purpose)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.release()
            self._writer = None
        if self._conn is not None:
            try:
                # Logged, not raised: a store that cannot take the last checks' rows (a full
                # disk) must still close, and the process end as it would have.
                self._flush_logged()
            finally:
                self._conn.close()
                self._conn = None
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[Connection]:
        conn = self._connection()
        if self._sqlite:
            conn.info["write"] = True  # read by the engine's "begin" hook
        with conn.begin():
            yield conn

    @contextmanager
    def _read(self, flush: bool = True) -> Iterator[Connection]:
        # A short transaction per read: a snapshot left open would hide later commits and
        # keep SQLite from checkpointing its WAL. `flush=False` is for reads of tables the
        # batch of unchanged checks never writes (see `_connection`).
        conn = self._connection(flush)
        with conn.begin():
            yield conn

    def _connection(self, flush: bool = True) -> Connection:
        """The connection; with `flush`, after writing the batch, so that whatever comes
        next sees the unchanged checks so far (a reader that cannot see them passes False)."""
        if self._conn is None:
            raise StoreError(f"the store at {self.location} is closed")
        if flush and self._batch:
            self._flush_logged()
        return self._conn

    def flush(self) -> None:
        """Write the batch of unchanged checks now (see `_BATCH_WINDOW`)."""
        if self._batch_timer is not None:
            self._batch_timer.cancel()
            self._batch_timer = None
        rows, self._batch = self._batch, []
        self._batched_states.clear()
        if rows:
            with self._writing("checks"):
                self._commit_on_driver(rows)

    def _flush_logged(self) -> None:
        """`flush` for callers that are not the check itself (the timer, another query):
        a failed batch is logged, and their own work goes on."""
        try:
            self.flush()
        except Exception:
            logger.exception("could not record a batch of unchanged checks")

    def _defer(self, rows: list[tuple[_DriverStatement, dict[str, Any]]]) -> None:
        """Add an unchanged check's rows to the batch; written within `_BATCH_WINDOW`."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not self._batch_loop:
            # No event loop to write it later (a script), or a new one whose timer the
            # waiting rows do not have: write them now.
            self.flush()
            self._batch_loop = loop
        self._batch.extend(rows)
        self._batched_states.update(
            values["state_of"] for statement, values in rows if statement is self._update_state
        )
        if loop is None or len(self._batch) >= _BATCH_MAX:
            self.flush()
        elif self._batch_timer is None:
            self._batch_timer = loop.call_later(_BATCH_WINDOW, self._flush_logged)

    def _rows(self, query: Any, flush: bool = True) -> list[Row]:
        with self._read(flush) as conn:
            return [dict(row) for row in conn.execute(query).mappings()]

    def _row(self, query: Any) -> Row | None:
        rows = self._rows(query)
        return rows[0] if rows else None

    # --- blobs -------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        """Where a blob's file is (or would be) when blobs are files."""
        return blob_file(self.root / "blobs", sha256)

    def put_blob(self, data: bytes, media_type: str | None = None) -> str:
        """Store bytes under their SHA-256 (a no-op when already stored)."""
        with self._write() as conn:
            staged = self.blobs.stage(conn, data, media_type)
            self._register(conn, staged)
        return staged.sha256

    def read_blob(self, sha256: str) -> bytes:
        """The blob's bytes, checked against its name: damage is an error, never data."""
        with self._read() as conn:
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
        with self._read() as conn:
            return self.blobs.stage(conn, data, media_type)

    def _register(self, conn: Connection, staged: StagedBlob) -> None:
        conn.execute(
            insert_ignore(conn, blob).values(
                sha256=staged.sha256,
                size=staged.size,
                stored_size=staged.stored_size,
                media_type=staged.media_type,
            )
        )
        self.blobs.attach(conn, staged)

    # --- watches and state ---------------------------------------------------------------

    def sync_watch(self, watch_id: str, url: str, profile: str) -> None:
        self.sync_watches([(watch_id, url, profile)])

    def sync_watches(self, watches: list[tuple[str, str, str]]) -> None:
        """Register (id, url, profile) of watches, in one transaction. Rows already up to
        date are not written: a daemon starting with 10,000 watches would otherwise spend
        seconds rewriting what it already has."""
        with self._write() as conn:
            known = {
                watch_id: (url, profile)
                for watch_id, url, profile in conn.execute(
                    select(watch.c.id, watch.c.url, watch.c.profile)
                )
            }
            stale = [w for w in watches if known.get(w[0]) != (w[1], w[2])]
            if not stale:
                return
            first_seen = now_iso()
            # One statement per table, run over all rows (executemany), not two per watch.
            rows = [
                {"id": watch_id, "url": url, "profile": profile, "first_seen": first_seen}
                for watch_id, url, profile in stale
            ]
            conn.execute(upsert(conn, watch, "id", None, ["url", "profile"]), rows)
            conn.execute(insert_ignore(conn, watch_state), [{"watch_id": r["id"]} for r in rows])

    def state(self, watch_id: str) -> WatchState:
        """The watch's state, read on the driver's connection: one check reads it once."""
        return self.states([watch_id]).get(watch_id) or WatchState(watch_id)

    def states(self, watch_ids: Collection[str] | None = None) -> dict[str, WatchState]:
        """The states of these watches (default: every watch), in one query: for a run
        or a moment that checks many watches at once. A watch never checked may be
        missing."""
        if watch_ids is None:
            # On the driver: SQLAlchemy's rows cost more than building the states from them.
            rows = self._read_on_driver(self._select_all_states, ())
        else:
            wanted = list(watch_ids)
            # The batch is written first only when it holds one of these states: a daemon
            # reads states every second, and writing the batch each time cost it a commit.
            flush = not self._batched_states.isdisjoint(wanted)
            ids = json.dumps(wanted) if self._sqlite else wanted
            rows = self._read_on_driver(self._select_states, (ids,), flush=flush)
        return {row[0]: _watch_state(row[0], row[1:]) for row in rows}

    def heads(self, watch_id: str) -> dict[str, DocumentHead]:
        later = version.alias("later")
        latest = (
            select(func.max(later.c.seq)).where(later.c.document_id == document.c.id)
        ).scalar_subquery()
        query = (
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
            .where(document.c.watch_id == watch_id, version.c.seq == latest)
        )
        # Documents and versions only: the batch of unchanged checks (check_run and
        # watch_state rows) need not be written first, as it was, in a transaction of its
        # own for every check whose page came back with other bytes.
        rows = self._rows(query, flush=False)
        return {row["key"]: DocumentHead(**row) for row in rows}

    def has_versions(self, watch_id: str) -> bool:
        query = select(document.c.id).where(document.c.watch_id == watch_id).limit(1)
        return self._row(query) is not None

    # --- the one write per check ---------------------------------------------------------

    def commit_check(
        self,
        check: CheckRecord,
        state: WatchState,
        response: ResponseRecord | None = None,
        versions: list[NewVersion] | None = None,
        alerts: list[tuple[dict[str, Any], list[str]]] | None = None,
        settled: Settlement | None = None,
    ) -> list[int]:
        """Record a check, its new versions and their alerts, and the verdict it reached on
        versions that were pending, atomically. Returns version ids.

        An unchanged check is one check_run insert and one watch_state update, written with
        the other unchanged checks of the moment (see `_BATCH_WINDOW`)."""
        rows = [
            (self._insert_check, {name: getattr(check, name) for name in _CHECK_COLUMNS}),
            (self._update_state, _state_values(state)),
        ]
        if versions or alerts or settled:
            with self._writing("versions"):
                version_ids = self._commit_changes(
                    check, response, versions or [], alerts or [], rows, settled
                )
        else:
            self._defer(rows)
            version_ids = []
        if self.keep_checks and time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + _PRUNE_EVERY
            self.prune_checks()
        return version_ids

    def _read_on_driver(self, sql: str, parameters: Any, flush: bool = True) -> list[Any]:
        """Rows of one query on the driver's connection, in a transaction of its own (see
        `_read`): SQLite's autocommit makes the statement one; psycopg needs asking."""
        connection = self._connection(flush)
        raw = connection.connection.driver_connection
        if self._sqlite:
            return raw.execute(sql, parameters).fetchall()
        try:
            with raw.transaction():
                return raw.execute(sql, parameters).fetchall()
        except BaseException:
            if raw.broken:
                connection.invalidate()
            raise

    def _commit_on_driver(self, rows: list[tuple[_DriverStatement, dict[str, Any]]]) -> None:
        """One transaction on the driver's connection, which SQLAlchemy holds idle between
        its own transactions (every read and write here is one)."""
        connection = self._connection()
        raw = connection.connection.driver_connection
        # One executemany per statement (a batch is a check_run insert and a watch_state
        # update per check): the order within each is kept, and the two never touch the
        # same table.
        batches: dict[_DriverStatement, list[Any]] = {}
        for statement, values in rows:
            batches.setdefault(statement, []).append(statement.parameters(values))
        if self._sqlite:
            raw.execute("BEGIN IMMEDIATE")
            try:
                for statement, parameters in batches.items():
                    raw.executemany(statement.sql, parameters)
            except BaseException:
                raw.execute("ROLLBACK")
                raise
            raw.execute("COMMIT")
            return
        try:
            with raw.transaction(), raw.cursor() as cursor:
                for statement, parameters in batches.items():
                    cursor.executemany(statement.sql, parameters)
        except BaseException:
            if raw.broken:  # a lost server: reconnect on next use, as SQLAlchemy would
                connection.invalidate()
            raise

    def _commit_changes(
        self,
        check: CheckRecord,
        response: ResponseRecord | None,
        versions: list[NewVersion],
        alerts: list[tuple[dict[str, Any], list[str]]],
        rows: list[tuple[_DriverStatement, dict[str, Any]]],
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
        with self._write() as conn:
            if settled is not None:
                self._settle(conn, check.watch_id, settled, check.at)
            response_id = None
            if response is not None and body is not None:
                response_id = self._insert_response(
                    conn, check.watch_id, response, body, request_body
                )
            for new, text in zip(versions, texts, strict=True):
                if text is not None:
                    self._register(conn, text)
                version_id = self._insert_version(
                    conn, check, new, response_id, text, body.sha256 if body else None
                )
                version_ids.append(version_id)
                for payload, channels in new.alerts:
                    self._insert_alert(
                        conn, check.watch_id, version_id, payload, channels, check.at
                    )
            for payload, channels in alerts:
                self._insert_alert(conn, check.watch_id, None, payload, channels, check.at)
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
        result = conn.execute(
            response.insert().values(
                watch_id=watch_id,
                requested_at=record.requested_at,
                method=record.method,
                url=record.url,
                final_url=record.final_url,
                status=record.status,
                http_version=record.http_version,
                request_headers=json.dumps(record.request_headers, ensure_ascii=False),
                request_body=request_body.sha256 if request_body else None,
                headers=json.dumps(record.headers, ensure_ascii=False),
                redirects=json.dumps(record.redirects),
                server_date=server_date,
                body_sha256=body.sha256,
                body_size=body.size,
                **response_columns(conn, record.tls, record.requested_at),
            )
        )
        return int(result.inserted_primary_key[0])

    def _insert_version(
        self,
        conn: Connection,
        check: CheckRecord,
        new: NewVersion,
        response_id: int | None,
        text: StagedBlob | None,
        body_sha256: str | None,
    ) -> int:
        fields = {
            "url": new.url,
            "title": new.title,
            "published": new.published,
            "language": new.language,
            "removed_at": check.at if new.kind == "removed" else None,
        }
        found = conn.execute(
            select(document.c.id, document.c.chain_head).where(
                document.c.watch_id == check.watch_id, document.c.key == new.key
            )
        ).first()
        prev = None
        if found is None:
            result = conn.execute(
                document.insert().values(
                    watch_id=check.watch_id, key=new.key, first_seen=check.at, **fields
                )
            )
            document_id = result.inserted_primary_key[0]
        else:
            document_id, prev = found
        seq = conn.execute(
            select(func.coalesce(func.max(version.c.seq), 0) + 1).where(
                version.c.document_id == document_id
            )
        ).scalar_one()
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
            select(watch.c.chain_head).where(watch.c.id == check.watch_id)
        ).scalar_one_or_none()
        watch_chain = watch_link(watch_prev, chain)
        conn.execute(
            document.update().where(document.c.id == document_id).values(chain_head=chain, **fields)
        )
        conn.execute(
            watch.update().where(watch.c.id == check.watch_id).values(chain_head=watch_chain)
        )
        result = conn.execute(
            version.insert().values(
                document_id=document_id,
                seq=seq,
                observed_at=check.at,
                kind=new.kind,
                response_id=response_id,
                text_sha256=facts["text_sha256"],
                score=new.score,
                summary=new.summary,
                confirmation=new.confirmation,
                prev_chain=prev,
                chain=chain,
                watch_chain=watch_chain,
            )
        )
        return int(result.inserted_primary_key[0])

    def _settle(self, conn: Connection, watch_id: str, settled: Settlement, at: str) -> None:
        """Record verdicts on pending versions and the alerts they release. Only a version
        still pending is settled: two looks racing to confirm it alert once."""
        for version_id, verdict in settled.verdicts.items():
            changed = conn.execute(
                version.update()
                .where(version.c.id == version_id, version.c.confirmation == "pending")
                .values(confirmation=verdict)
            ).rowcount
            if not changed:
                continue
            for payload, channels in settled.alerts.get(version_id, []):
                self._insert_alert(conn, watch_id, version_id, payload, channels, at)

    def reference(self, document_id: int, before_seq: int) -> Row | None:
        """The newest version of a statement before `before_seq` that stands: not transient,
        not pending (what a pending version's alert compares against)."""
        return self._row(
            _version_with_document()
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

    def record_alert(self, watch_id: str, payload: dict[str, Any], channels: list[str]) -> None:
        """An alert that no check caused (the watchdog's), into the outbox."""
        with self._writing("alerts"), self._write() as conn:
            self._insert_alert(conn, watch_id, None, payload, channels, now_iso())

    def _insert_alert(
        self,
        conn: Connection,
        watch_id: str,
        version_id: int | None,
        payload: dict[str, Any],
        channels: list[str],
        at: str,
    ) -> None:
        result = conn.execute(
            alert.insert().values(
                watch_id=watch_id,
                version_id=version_id,
                kind=payload["kind"],
                created_at=at,
                payload=json.dumps(payload, ensure_ascii=False),
            )
        )
        alert_id = result.inserted_primary_key[0]
        for channel in channels:
            conn.execute(
                delivery.insert().values(alert_id=alert_id, channel=channel, next_attempt_at=at)
            )

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
            with self._write() as conn:
                first_kept = conn.execute(
                    select(check_run.c.id)
                    .where(check_run.c.at >= cutoff)
                    .order_by(check_run.c.id)
                    .limit(1)
                ).scalar_one_or_none()
                if first_kept is None:
                    first_kept = conn.execute(
                        select(func.coalesce(func.max(check_run.c.id), 0) + 1)
                    ).scalar_one()
                oldest = conn.execute(select(func.min(check_run.c.id))).scalar_one_or_none()
                if oldest is None or oldest >= first_kept:
                    return deleted
                upto = min(first_kept, oldest + _PRUNE_BATCH)
                result = conn.execute(check_run.delete().where(check_run.c.id < upto))
                deleted += result.rowcount

    # --- outbox --------------------------------------------------------------------------

    def due_deliveries(self, now: str, limit: int = 100) -> list[Delivery]:
        query = (
            select(
                delivery.c.id,
                delivery.c.alert_id,
                delivery.c.channel,
                delivery.c.attempts,
                alert.c.payload,
            )
            .join(alert, alert.c.id == delivery.c.alert_id)
            .where(delivery.c.status == "pending", delivery.c.next_attempt_at <= now)
            .order_by(delivery.c.id)
            .limit(limit)
        )
        return [
            Delivery(r["id"], r["alert_id"], r["channel"], r["attempts"], json.loads(r["payload"]))
            for r in self._rows(query)
        ]

    def claim_deliveries(self, ids: list[int], now: str, until: str) -> set[int]:
        """Of these due deliveries, the ones this process may send: each becomes not due
        until `until`, so no other process sends it meanwhile (and one whose sender died
        is due again after that). Returns the ids claimed."""
        with self._write() as conn:
            result = conn.execute(
                delivery.update()
                .where(
                    delivery.c.id.in_(ids),
                    delivery.c.status == "pending",
                    delivery.c.next_attempt_at <= now,
                )
                .values(next_attempt_at=until)
                .returning(delivery.c.id)
            )
            return {row[0] for row in result}

    def mark_sent(self, delivery_id: int) -> None:
        with self._write() as conn:
            conn.execute(
                delivery.update()
                .where(delivery.c.id == delivery_id)
                .values(
                    status="sent",
                    attempts=delivery.c.attempts + 1,
                    sent_at=now_iso(),
                    last_error=None,
                )
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: str | None) -> None:
        """Record a failed attempt; `retry_at=None` dead-letters the delivery."""
        values: dict[str, Any] = {
            "status": "pending" if retry_at else "dead",
            "attempts": delivery.c.attempts + 1,
            "last_error": error[:500],
        }
        if retry_at:
            values["next_attempt_at"] = retry_at
        with self._write() as conn:
            conn.execute(delivery.update().where(delivery.c.id == delivery_id).values(**values))

    def deliveries(self, status: str | None = None, limit: int = 200) -> list[Row]:
        """Deliveries with their alert, newest first (status: pending, sent, dead)."""
        query = select(
            delivery, alert.c.watch_id, alert.c.kind, alert.c.created_at, alert.c.payload
        ).join(alert, alert.c.id == delivery.c.alert_id)
        if status:
            query = query.where(delivery.c.status == status)
        return self._rows(query.order_by(delivery.c.id.desc()).limit(limit))

    def delivery_count(self, status: str) -> int:
        """How many deliveries have this status (the outbox depth, for metrics)."""
        query = select(func.count(delivery.c.id)).where(delivery.c.status == status)
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def requeue(self, delivery_id: int) -> bool:
        """Put a dead-lettered delivery back in the queue, due now."""
        with self._write() as conn:
            result = conn.execute(
                delivery.update()
                .where(delivery.c.id == delivery_id, delivery.c.status == "dead")
                .values(status="pending", attempts=0, next_attempt_at=now_iso())
            )
        return result.rowcount == 1

    # --- reading -------------------------------------------------------------------------

    def documents(self, watch_id: str) -> list[Row]:
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
        return self._rows(query)

    def document(self, watch_id: str, key: str) -> Row | None:
        return self._row(
            select(document).where(document.c.watch_id == watch_id, document.c.key == key)
        )

    def versions(self, document_id: int) -> list[Row]:
        return self._rows(
            select(version).where(version.c.document_id == document_id).order_by(version.c.seq)
        )

    def version(self, version_id: int) -> Row | None:
        """A version with its document's watch, key, title, URL and language."""
        return self._row(_version_with_document().where(version.c.id == version_id))

    def version_at(self, document_id: int, seq: int) -> Row | None:
        return self._row(
            _version_with_document().where(
                version.c.document_id == document_id, version.c.seq == seq
            )
        )

    def latest_change(self, watch_id: str) -> Row | None:
        """The newest edited, removed or restored version of a watch."""
        return self._row(
            _version_with_document()
            .where(
                document.c.watch_id == watch_id,
                version.c.kind.in_(("edited", "removed", "restored")),
            )
            .order_by(version.c.id.desc())
            .limit(1)
        )

    def response(self, response_id: int) -> Row | None:
        """A stored response, its JSON columns decoded."""
        row = self._row(select(response).where(response.c.id == response_id))
        if row is not None:
            for name in ("request_headers", "headers", "redirects"):
                row[name] = json.loads(row[name])
        return row

    def version_count(self, watch_id: str | None = None) -> int:
        query = select(func.count(version.c.id)).select_from(version)
        if watch_id is not None:
            query = query.join(document, document.c.id == version.c.document_id).where(
                document.c.watch_id == watch_id
            )
        with self._read() as conn:
            return int(conn.execute(query).scalar_one())

    def iter_versions(
        self, watch_id: str | Collection[str] | None = None, since: str | None = None
    ) -> Iterator[Row]:
        """Every version (oldest first) with its document, a page of rows at a time; of a
        watch, or of several."""
        after = 0
        watch_ids = [watch_id] if isinstance(watch_id, str) else watch_id
        while True:
            query = _version_with_document().where(version.c.id > after)
            if watch_ids is not None:
                query = query.where(document.c.watch_id.in_(list(watch_ids)))
            if since is not None:
                query = query.where(version.c.observed_at >= since)
            rows = self._rows(query.order_by(version.c.id).limit(_PAGE))
            yield from rows
            if len(rows) < _PAGE:
                return
            after = rows[-1]["id"]

    def checks(self, watch_id: str, limit: int = 20) -> list[Row]:
        return self._rows(
            select(check_run)
            .where(check_run.c.watch_id == watch_id)
            .order_by(check_run.c.id.desc())
            .limit(limit)
        )

    def alerts(self, watch_id: str | None = None) -> list[Row]:
        query = select(alert).order_by(alert.c.id)
        if watch_id:
            query = query.where(alert.c.watch_id == watch_id)
        return self._rows(query)

    # --- verification --------------------------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        """Re-hash every blob and check every reference.

        Damage (a missing or altered blob, a dangling reference, a version missing from a
        document's sequence) is reported, never "fixed"; `repair` only removes orphans —
        blob files no row refers to, left by a crash between writing a blob and committing
        its row."""
        report = VerifyReport()
        with self._read() as conn:
            sizes: dict[str, int] = dict(conn.execute(select(blob.c.sha256, blob.c.size)).all())
            if self._sqlite:
                for (line,) in conn.exec_driver_sql("PRAGMA quick_check"):
                    if line != "ok":
                        report.damage.append(f"database: {line}")
            _check_references(conn, report)
            _check_sequences(conn, report)
            _check_chains(conn, report)
        for sha256 in sorted(sizes):
            report.blobs += 1
            problem = self._blob_problem(sha256, sizes[sha256])
            if problem:
                report.damage.append(f"blob {sha256}: {problem}")
        with self._write() as conn:
            for name, label in list(self.blobs.names(conn)):
                if name in sizes and not name.startswith(".tmp-"):
                    continue
                report.orphans.append(label)
                if repair:
                    self.blobs.remove(conn, name)
                    report.repaired += 1
        return report

    def _blob_problem(self, sha256: str, size: int) -> str | None:
        with self._read() as conn:
            compressed = self.blobs.load(conn, sha256)
        if compressed is None:
            return "missing"
        try:
            data = self.blobs.decompress(compressed)
        except zstandard.ZstdError as err:
            return f"unreadable ({err})"
        if hashlib.sha256(data).hexdigest() != sha256:
            return "content does not match its SHA-256"
        if len(data) != size:
            return f"{len(data)} bytes, the blob table says {size}"
        return None


def _version_with_document() -> Any:
    return select(
        version,
        document.c.watch_id,
        document.c.key,
        document.c.title,
        document.c.url,
        document.c.language,
        document.c.published,
    ).join(document, document.c.id == version.c.document_id)


def _blob_mode(conn: Connection, configured: str | None, default: str, where: str) -> str:
    """Blobs stay where the store was created with them; a config that says otherwise is
    refused, because every existing blob would look missing."""
    recorded = get_meta(conn, "blobs")
    if recorded is None:
        recorded = configured or default
        set_meta(conn, "blobs", recorded)
    elif configured and configured != recorded:
        raise StoreError(f"{where} keeps blobs in {recorded!r}, but [store] blobs = {configured!r}")
    if recorded not in ("db", "path"):
        raise StoreError(f"{where}: unknown blob location {recorded!r}")
    return recorded


def _check_references(conn: Connection, report: VerifyReport) -> None:
    """Every foreign key of the schema, checked by hand: SQLite enforces them only on
    connections that ask, and a file edited by other tools may not have."""
    for table in metadata.sorted_tables:
        if table is blob_data:
            continue  # bytes no blob row names are orphans, reported as such
        for key in table.foreign_keys:
            column, target = key.parent, key.column
            report.references += conn.execute(
                select(func.count()).select_from(table).where(column.is_not(None))
            ).scalar_one()
            target_alias = target.table.alias("target")
            target_column = target_alias.c[target.name]
            first_column = next(iter(table.primary_key.columns))
            dangling = conn.execute(
                select(first_column, column)
                .select_from(table.outerjoin(target_alias, and_(target_column == column)))
                .where(column.is_not(None), target_column.is_(None))
                .order_by(first_column)
            )
            for row_key, value in dangling:
                report.damage.append(
                    f"{table.name} {row_key}: {column.name} {value} not in {target.table.name}"
                )


def _check_sequences(conn: Connection, report: VerifyReport) -> None:
    """Every document has versions (a gap in their numbering: see _check_chains)."""
    report.versions = conn.execute(select(func.count(version.c.id))).scalar_one()
    empty = (
        select(document.c.id)
        .where(~select(version.c.id).where(version.c.document_id == document.c.id).exists())
        .order_by(document.c.id)
    )
    for (document_id,) in conn.execute(empty):
        report.damage.append(f"document {document_id}: has no version")


def chain_rows(conn: Connection, watch_id: str | None = None) -> Iterator[Row]:
    """Every version's linked facts (store/chain.py) in recorded order."""
    query = chain_facts()
    if watch_id is not None:
        query = query.where(document.c.watch_id == watch_id)
    for row in conn.execute(query).mappings():
        yield dict(row)


def chain_heads(
    conn: Connection, watch_id: str | None = None
) -> tuple[dict[str, str | None], dict[str, str | None]]:
    """The statements' chain heads ({"watch key": chain}) and the watches' ({watch: chain})."""
    statements = select(document.c.watch_id, document.c.key, document.c.chain_head)
    watches = select(watch.c.id, watch.c.chain_head).where(watch.c.chain_head.is_not(None))
    if watch_id is not None:
        statements = statements.where(document.c.watch_id == watch_id)
        watches = watches.where(watch.c.id == watch_id)
    heads = {f"{w} {k}": head for w, k, head in conn.execute(statements)}
    return heads, dict(conn.execute(watches).all())


def _check_chains(conn: Connection, report: VerifyReport) -> None:
    """Each version against its hash chains (store/chain.py): an altered, removed (the
    newest too) or reordered version is damage, named by its statement and number."""
    chains = ChainReport()
    heads, watch_heads = chain_heads(conn)
    walk(chain_rows(conn), heads, watch_heads, chains)
    report.damage += chains.damage


def _watch_state(watch_id: str, values: Any) -> WatchState:
    """A WatchState from watch_state's columns, in _STATE_COLUMNS order."""
    state = WatchState(watch_id, *values)
    state.failure_alerted = bool(state.failure_alerted)
    state.pending = bool(state.pending)
    state.validators = json.loads(state.validators)  # type: ignore[arg-type]
    return state


def _state_values(state: WatchState) -> dict[str, Any]:
    return {
        "state_of": state.watch_id,
        "last_check_at": state.last_check_at,
        "last_ok_at": state.last_ok_at,
        "last_change_at": state.last_change_at,
        "failing_since": state.failing_since,
        "failure_reason": state.failure_reason,
        "failure_alerted": int(state.failure_alerted),
        "consecutive_failures": state.consecutive_failures,
        "validators": json.dumps(state.validators),
        "since_full": state.since_full,
        "next_run_at": state.next_run_at,
        "pending": int(state.pending),
    }


def _cannot_write(err: BaseException) -> bool:
    """Whether a failed write says the store cannot be written (rather than a bug): an
    operating system error (ENOSPC, EROFS, EIO on blob files) or the database's own
    (`OperationalError`, DB-API's name for "disk full", "read-only database", "I/O error",
    a lost connection, as sqlite3, psycopg and SQLAlchemy all call it)."""
    return isinstance(err, OSError) or any(
        cls.__name__ == "OperationalError" for cls in type(err).__mro__
    )


def _error_text(err: BaseException) -> str:
    cause = getattr(err, "orig", None) or err  # SQLAlchemy's wrapper: the driver's error
    text = " ".join(str(cause).split())[:300]
    return f"{type(cause).__name__}: {text}"
