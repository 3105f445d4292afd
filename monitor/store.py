"""Store stage: the archive. A plain SQLite index plus content-addressed, compressed blobs.

Layout of a data directory (default `snapshots/`):

    index.sqlite          tables documented in SCHEMA below (open it with sqlite3 or Datasette)
    blobs/ab/cd/<sha256>  zstd-compressed bytes whose *uncompressed* SHA-256 is the file name

Why this shape: a version is never rewritten, only added; identical bytes are stored once;
a blob is written to a temporary file, fsynced and renamed before the database row that
names it is committed, so a `kill -9` at any moment leaves at worst an orphan blob, never a
row pointing at a missing or half-written file. An unchanged check adds one `check_run` row
and no blob.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import zstandard

SCHEMA_VERSION = 1

SCHEMA = """
-- One row per configured watch; id is chosen by the user and never derived from the URL.
CREATE TABLE IF NOT EXISTS watch (
    id          TEXT PRIMARY KEY,
    url         TEXT NOT NULL,
    profile     TEXT NOT NULL,
    first_seen  TEXT NOT NULL
);
-- Mutable per-watch state: failure tracking (for one alert per outage) and HTTP validators.
CREATE TABLE IF NOT EXISTS watch_state (
    watch_id             TEXT PRIMARY KEY REFERENCES watch(id),
    last_check_at        TEXT,
    last_ok_at           TEXT,
    last_change_at       TEXT,
    failing_since        TEXT,
    failure_reason       TEXT,
    failure_alerted      INTEGER NOT NULL DEFAULT 0,
    consecutive_failures INTEGER NOT NULL DEFAULT 0,
    validators           TEXT NOT NULL DEFAULT '{}',  -- JSON {url: [etag, last_modified]}
    since_full           INTEGER NOT NULL DEFAULT 0   -- conditional checks since a full fetch
);
-- Every stored blob: raw response bodies and canonical statement JSON.
CREATE TABLE IF NOT EXISTS blob (
    sha256       TEXT PRIMARY KEY,
    size         INTEGER NOT NULL,
    stored_size  INTEGER NOT NULL,
    media_type   TEXT
);
-- A response kept as evidence because it produced at least one new version.
CREATE TABLE IF NOT EXISTS response (
    id              INTEGER PRIMARY KEY,
    watch_id        TEXT NOT NULL REFERENCES watch(id),
    requested_at    TEXT NOT NULL,
    method          TEXT NOT NULL,
    url             TEXT NOT NULL,
    final_url       TEXT NOT NULL,
    status          INTEGER,
    http_version    TEXT,
    request_headers TEXT NOT NULL,  -- JSON object
    request_body    TEXT REFERENCES blob(sha256),
    headers         TEXT NOT NULL,  -- JSON list of [name, value] as received
    redirects       TEXT NOT NULL,  -- JSON list of [status, url]
    server_date     TEXT,
    body_sha256     TEXT NOT NULL REFERENCES blob(sha256),
    body_size       INTEGER NOT NULL
);
-- A statement (or page) found by a watch, keyed by the profile, e.g. 'en/12345'.
CREATE TABLE IF NOT EXISTS document (
    id          INTEGER PRIMARY KEY,
    watch_id    TEXT NOT NULL REFERENCES watch(id),
    key         TEXT NOT NULL,
    url         TEXT NOT NULL,
    language    TEXT,
    title       TEXT NOT NULL,
    published   TEXT,
    first_seen  TEXT NOT NULL,
    removed_at  TEXT,
    UNIQUE (watch_id, key)
);
-- Every version ever seen. kind: baseline (first sight when a watch starts), published,
-- edited, removed, restored. A removed version has no text.
CREATE TABLE IF NOT EXISTS version (
    id           INTEGER PRIMARY KEY,
    document_id  INTEGER NOT NULL REFERENCES document(id),
    seq          INTEGER NOT NULL,
    observed_at  TEXT NOT NULL,
    kind         TEXT NOT NULL
                 CHECK (kind IN ('baseline','published','edited','removed','restored')),
    response_id  INTEGER REFERENCES response(id),
    text_sha256  TEXT REFERENCES blob(sha256),
    score        REAL NOT NULL DEFAULT 0,
    summary      TEXT NOT NULL DEFAULT '',
    UNIQUE (document_id, seq)
);
-- One small row per check, changed or not.
CREATE TABLE IF NOT EXISTS check_run (
    id           INTEGER PRIMARY KEY,
    watch_id     TEXT NOT NULL REFERENCES watch(id),
    at           TEXT NOT NULL,
    ms           INTEGER NOT NULL,
    outcome      TEXT NOT NULL CHECK (outcome IN ('changed','unchanged','problem')),
    status       INTEGER,
    detail       TEXT
);
CREATE INDEX IF NOT EXISTS check_run_watch ON check_run (watch_id, id);
-- Alerts, written in the same transaction as the versions that caused them (the outbox).
CREATE TABLE IF NOT EXISTS alert (
    id          INTEGER PRIMARY KEY,
    watch_id    TEXT NOT NULL REFERENCES watch(id),
    version_id  INTEGER REFERENCES version(id),
    kind        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    payload     TEXT NOT NULL  -- JSON, the message as channels render it
);
-- One delivery per alert and channel; retried with backoff until sent or dead.
CREATE TABLE IF NOT EXISTS delivery (
    id              INTEGER PRIMARY KEY,
    alert_id        INTEGER NOT NULL REFERENCES alert(id),
    channel         TEXT NOT NULL,
    status          TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending','sent','dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TEXT NOT NULL,
    last_error      TEXT,
    sent_at         TEXT,
    UNIQUE (alert_id, channel)
);
CREATE INDEX IF NOT EXISTS delivery_due ON delivery (status, next_attempt_at);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


def now_iso() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass
class WatchState:
    watch_id: str
    last_check_at: str | None = None
    last_ok_at: str | None = None
    last_change_at: str | None = None
    failing_since: str | None = None
    failure_reason: str | None = None
    failure_alerted: bool = False
    consecutive_failures: int = 0
    validators: dict[str, dict[str, str | None]] = field(default_factory=dict)
    since_full: int = 0


@dataclass(frozen=True)
class DocumentHead:
    """The latest known state of a document."""

    id: int
    key: str
    url: str
    title: str
    published: str | None
    language: str | None
    text_sha256: str | None  # None once removed
    seq: int


@dataclass
class ResponseRecord:
    requested_at: str
    method: str
    url: str
    final_url: str
    status: int | None
    http_version: str | None
    request_headers: dict[str, str]
    request_body: bytes | None
    headers: list[tuple[str, str]]
    redirects: list[tuple[int, str]]
    body: bytes
    media_type: str | None = None


@dataclass
class NewVersion:
    key: str
    url: str
    title: str
    published: str | None
    language: str | None
    kind: str
    text: bytes | None  # canonical statement JSON; None for a removal
    score: float = 0.0
    summary: str = ""
    # Alert payloads caused by this version, with the channels to deliver them to.
    alerts: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)


@dataclass
class CheckRecord:
    watch_id: str
    at: str
    ms: int
    outcome: str
    status: int | None
    detail: str | None = None


@dataclass(frozen=True)
class Delivery:
    id: int
    alert_id: int
    channel: str
    attempts: int
    payload: dict[str, Any]


@dataclass
class VerifyReport:
    blobs: int = 0
    references: int = 0
    damage: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    repaired: int = 0


class StoreError(Exception):
    pass


class Store:
    def __init__(self, path: str | Path) -> None:
        self.root = Path(path)
        self.blob_root = self.root / "blobs"
        self.root.mkdir(parents=True, exist_ok=True)
        self.blob_root.mkdir(exist_ok=True)
        self.db_path = self.root / "index.sqlite"
        self.db = sqlite3.connect(self.db_path, isolation_level=None, timeout=30)
        self.db.row_factory = sqlite3.Row
        # WAL: readers (history, web UI) never block the daemon's writes. synchronous=NORMAL
        # keeps every committed transaction across a process kill; only a power cut may drop
        # the last few commits, never corrupt the file.
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self._migrate()
        self._compressor = zstandard.ZstdCompressor(level=9)
        self._decompressor = zstandard.ZstdDecompressor()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _migrate(self) -> None:
        # executescript commits on its own; each statement is idempotent (IF NOT EXISTS).
        self.db.executescript(SCHEMA)
        row = self.db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None:
            self.db.execute(
                "INSERT INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )
        elif int(row["value"]) > SCHEMA_VERSION:
            raise StoreError(
                f"{self.db_path} was written by a newer monitor (schema {row['value']})"
            )

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        else:
            self.db.execute("COMMIT")

    # --- blobs -------------------------------------------------------------------------

    def blob_path(self, sha256: str) -> Path:
        return self.blob_root / sha256[:2] / sha256[2:4] / sha256

    def put_blob(self, data: bytes) -> str:
        """Write bytes durably under their SHA-256; a no-op when already stored."""
        sha256 = hashlib.sha256(data).hexdigest()
        path = self.blob_path(sha256)
        if path.exists():
            return sha256
        path.parent.mkdir(parents=True, exist_ok=True)
        compressed = self._compressor.compress(data)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(compressed)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        _fsync_dir(path.parent)
        return sha256

    def read_blob(self, sha256: str) -> bytes:
        try:
            compressed = self.blob_path(sha256).read_bytes()
        except FileNotFoundError:
            raise StoreError(f"blob {sha256} is missing from {self.blob_root}") from None
        return self._decompressor.decompress(compressed)

    def _register_blob(self, sha256: str, size: int, media_type: str | None) -> None:
        stored = self.blob_path(sha256).stat().st_size
        self.db.execute(
            "INSERT OR IGNORE INTO blob (sha256, size, stored_size, media_type) VALUES (?,?,?,?)",
            (sha256, size, stored, media_type),
        )

    # --- watches and state ---------------------------------------------------------------

    def sync_watch(self, watch_id: str, url: str, profile: str) -> None:
        with self.transaction():
            self.db.execute(
                "INSERT INTO watch (id, url, profile, first_seen) VALUES (?,?,?,?) "
                "ON CONFLICT(id) DO UPDATE SET url=excluded.url, profile=excluded.profile",
                (watch_id, url, profile, now_iso()),
            )
            self.db.execute("INSERT OR IGNORE INTO watch_state (watch_id) VALUES (?)", (watch_id,))

    def state(self, watch_id: str) -> WatchState:
        row = self.db.execute("SELECT * FROM watch_state WHERE watch_id=?", (watch_id,)).fetchone()
        if row is None:
            return WatchState(watch_id)
        data = dict(row)
        data["failure_alerted"] = bool(data["failure_alerted"])
        data["validators"] = json.loads(data["validators"])
        return WatchState(**data)

    def heads(self, watch_id: str) -> dict[str, DocumentHead]:
        rows = self.db.execute(
            """SELECT d.id, d.key, d.url, d.title, d.published, d.language,
                      v.text_sha256, v.seq
               FROM document d JOIN version v ON v.document_id = d.id
               WHERE d.watch_id = ?
                 AND v.seq = (SELECT MAX(seq) FROM version WHERE document_id = d.id)""",
            (watch_id,),
        ).fetchall()
        return {row["key"]: DocumentHead(**dict(row)) for row in rows}

    def has_versions(self, watch_id: str) -> bool:
        row = self.db.execute("SELECT 1 FROM document WHERE watch_id=? LIMIT 1", (watch_id,))
        return row.fetchone() is not None

    # --- the one write per check ---------------------------------------------------------

    def commit_check(
        self,
        check: CheckRecord,
        state: WatchState,
        response: ResponseRecord | None = None,
        versions: list[NewVersion] | None = None,
        alerts: list[tuple[dict[str, Any], list[str]]] | None = None,
    ) -> list[int]:
        """Record a check, its new versions and their alerts atomically. Returns version ids."""
        versions = versions or []
        # Blobs first, durably; the rows that name them come after, in one transaction.
        body_sha = request_sha = None
        if response is not None and versions:
            body_sha = self.put_blob(response.body)
            if response.request_body:
                request_sha = self.put_blob(response.request_body)
        text_shas = [self.put_blob(v.text) if v.text is not None else None for v in versions]
        version_ids: list[int] = []
        with self.transaction():
            response_id = None
            if response is not None and body_sha is not None:
                response_id = self._insert_response(check.watch_id, response, body_sha, request_sha)
            for version, text_sha in zip(versions, text_shas, strict=True):
                if text_sha is not None:
                    self._register_blob(text_sha, len(version.text or b""), "application/json")
                version_id = self._insert_version(check, version, response_id, text_sha)
                version_ids.append(version_id)
                for payload, channels in version.alerts:
                    self._insert_alert(check.watch_id, version_id, payload, channels, check.at)
            for payload, channels in alerts or []:
                self._insert_alert(check.watch_id, None, payload, channels, check.at)
            self.db.execute(
                "INSERT INTO check_run (watch_id, at, ms, outcome, status, detail) "
                "VALUES (?,?,?,?,?,?)",
                (check.watch_id, check.at, check.ms, check.outcome, check.status, check.detail),
            )
            self._update_state(state)
        return version_ids

    def _insert_response(
        self, watch_id: str, response: ResponseRecord, body_sha: str, request_sha: str | None
    ) -> int:
        self._register_blob(body_sha, len(response.body), response.media_type)
        if request_sha and response.request_body is not None:
            self._register_blob(request_sha, len(response.request_body), None)
        server_date = next((v for k, v in response.headers if k.lower() == "date"), None)
        cursor = self.db.execute(
            """INSERT INTO response (watch_id, requested_at, method, url, final_url, status,
                   http_version, request_headers, request_body, headers, redirects,
                   server_date, body_sha256, body_size)
               VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)""",
            (
                watch_id,
                response.requested_at,
                response.method,
                response.url,
                response.final_url,
                response.status,
                response.http_version,
                json.dumps(response.request_headers, ensure_ascii=False),
                request_sha,
                json.dumps(response.headers, ensure_ascii=False),
                json.dumps(response.redirects),
                server_date,
                body_sha,
                len(response.body),
            ),
        )
        return int(cursor.lastrowid or 0)

    def _insert_version(
        self, check: CheckRecord, version: NewVersion, response_id: int | None, text_sha: str | None
    ) -> int:
        row = self.db.execute(
            "SELECT id FROM document WHERE watch_id=? AND key=?", (check.watch_id, version.key)
        ).fetchone()
        removed_at = check.at if version.kind == "removed" else None
        if row is None:
            cursor = self.db.execute(
                """INSERT INTO document (watch_id, key, url, language, title, published,
                       first_seen, removed_at) VALUES (?,?,?,?,?,?,?,?)""",
                (
                    check.watch_id,
                    version.key,
                    version.url,
                    version.language,
                    version.title,
                    version.published,
                    check.at,
                    removed_at,
                ),
            )
            document_id = int(cursor.lastrowid or 0)
        else:
            document_id = int(row["id"])
            self.db.execute(
                "UPDATE document SET url=?, title=?, published=?, language=?, removed_at=? "
                "WHERE id=?",
                (
                    version.url,
                    version.title,
                    version.published,
                    version.language,
                    removed_at,
                    document_id,
                ),
            )
        cursor = self.db.execute(
            """INSERT INTO version (document_id, seq, observed_at, kind, response_id, text_sha256,
                   score, summary)
               VALUES (?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM version WHERE document_id=?),
                       ?,?,?,?,?,?)""",
            (
                document_id,
                document_id,
                check.at,
                version.kind,
                response_id,
                text_sha,
                version.score,
                version.summary,
            ),
        )
        return int(cursor.lastrowid or 0)

    def _insert_alert(
        self,
        watch_id: str,
        version_id: int | None,
        payload: dict[str, Any],
        channels: list[str],
        at: str,
    ) -> None:
        cursor = self.db.execute(
            "INSERT INTO alert (watch_id, version_id, kind, created_at, payload) "
            "VALUES (?,?,?,?,?)",
            (watch_id, version_id, payload["kind"], at, json.dumps(payload, ensure_ascii=False)),
        )
        alert_id = cursor.lastrowid
        for channel in channels:
            self.db.execute(
                "INSERT INTO delivery (alert_id, channel, next_attempt_at) VALUES (?,?,?)",
                (alert_id, channel, at),
            )

    def _update_state(self, state: WatchState) -> None:
        self.db.execute(
            """UPDATE watch_state SET last_check_at=?, last_ok_at=?, last_change_at=?,
                   failing_since=?, failure_reason=?, failure_alerted=?, consecutive_failures=?,
                   validators=?, since_full=?
               WHERE watch_id=?""",
            (
                state.last_check_at,
                state.last_ok_at,
                state.last_change_at,
                state.failing_since,
                state.failure_reason,
                int(state.failure_alerted),
                state.consecutive_failures,
                json.dumps(state.validators),
                state.since_full,
                state.watch_id,
            ),
        )

    # --- outbox --------------------------------------------------------------------------

    def due_deliveries(self, now: str, limit: int = 100) -> list[Delivery]:
        rows = self.db.execute(
            """SELECT d.id, d.alert_id, d.channel, d.attempts, a.payload
               FROM delivery d JOIN alert a ON a.id = d.alert_id
               WHERE d.status = 'pending' AND d.next_attempt_at <= ?
               ORDER BY d.id LIMIT ?""",
            (now, limit),
        ).fetchall()
        return [
            Delivery(r["id"], r["alert_id"], r["channel"], r["attempts"], json.loads(r["payload"]))
            for r in rows
        ]

    def mark_sent(self, delivery_id: int) -> None:
        with self.transaction():
            self.db.execute(
                "UPDATE delivery SET status='sent', attempts=attempts+1, sent_at=?, "
                "last_error=NULL WHERE id=?",
                (now_iso(), delivery_id),
            )

    def mark_failed(self, delivery_id: int, error: str, retry_at: str | None) -> None:
        """Record a failed attempt; `retry_at=None` dead-letters the delivery."""
        with self.transaction():
            self.db.execute(
                "UPDATE delivery SET status=?, attempts=attempts+1, last_error=?, "
                "next_attempt_at=COALESCE(?, next_attempt_at) WHERE id=?",
                ("pending" if retry_at else "dead", error[:500], retry_at, delivery_id),
            )

    def deliveries(self, status: str | None = None, limit: int = 200) -> list[sqlite3.Row]:
        """Deliveries with their alert, newest first (status: pending, sent, dead)."""
        where = "WHERE d.status = ?" if status else ""
        return self.db.execute(
            f"""SELECT d.*, a.watch_id, a.kind, a.created_at, a.payload
                FROM delivery d JOIN alert a ON a.id = d.alert_id {where}
                ORDER BY d.id DESC LIMIT ?""",
            (status, limit) if status else (limit,),
        ).fetchall()

    def requeue(self, delivery_id: int) -> bool:
        """Put a dead-lettered delivery back in the queue, due now."""
        with self.transaction():
            cursor = self.db.execute(
                "UPDATE delivery SET status='pending', attempts=0, next_attempt_at=? "
                "WHERE id=? AND status='dead'",
                (now_iso(), delivery_id),
            )
        return cursor.rowcount == 1

    # --- reading -------------------------------------------------------------------------

    def documents(self, watch_id: str) -> list[sqlite3.Row]:
        return self.db.execute(
            """SELECT d.*, COUNT(v.id) AS versions, MAX(v.observed_at) AS last_version_at
               FROM document d JOIN version v ON v.document_id = d.id
               WHERE d.watch_id=? GROUP BY d.id ORDER BY d.published DESC, d.key""",
            (watch_id,),
        ).fetchall()

    def document(self, watch_id: str, key: str) -> sqlite3.Row | None:
        return self.db.execute(
            "SELECT * FROM document WHERE watch_id=? AND key=?", (watch_id, key)
        ).fetchone()

    def versions(self, document_id: int) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM version WHERE document_id=? ORDER BY seq", (document_id,)
        ).fetchall()

    def checks(self, watch_id: str, limit: int = 20) -> list[sqlite3.Row]:
        return self.db.execute(
            "SELECT * FROM check_run WHERE watch_id=? ORDER BY id DESC LIMIT ?", (watch_id, limit)
        ).fetchall()

    def alerts(self, watch_id: str | None = None) -> list[sqlite3.Row]:
        query = "SELECT * FROM alert" + (" WHERE watch_id=?" if watch_id else "") + " ORDER BY id"
        return self.db.execute(query, (watch_id,) if watch_id else ()).fetchall()

    # --- verification --------------------------------------------------------------------

    def verify(self, repair: bool = False) -> VerifyReport:
        """Re-hash every blob and check every reference.

        Damage (a missing or altered blob, a dangling reference) is reported, never "fixed";
        `repair` only removes orphans — files no row refers to, left by a crash between
        writing a blob and committing its row.
        """
        report = VerifyReport()
        known = {row["sha256"] for row in self.db.execute("SELECT sha256 FROM blob")}
        for sha256 in sorted(known):
            report.blobs += 1
            try:
                data = self.read_blob(sha256)
            except (StoreError, zstandard.ZstdError) as err:
                report.damage.append(f"blob {sha256}: unreadable ({err})")
                continue
            if hashlib.sha256(data).hexdigest() != sha256:
                report.damage.append(f"blob {sha256}: content does not match its SHA-256")
        for table, column in (
            ("response", "body_sha256"),
            ("response", "request_body"),
            ("version", "text_sha256"),
        ):
            query = f"SELECT id, {column} AS sha FROM {table} WHERE {column} IS NOT NULL"
            for row in self.db.execute(query):
                report.references += 1
                if row["sha"] not in known:
                    report.damage.append(
                        f"{table} {row['id']}: {column} {row['sha']} not in blob table"
                    )
        for path in sorted(self.blob_root.glob("*/*/*")):
            if path.name.startswith(".tmp-") or path.name not in known:
                report.orphans.append(str(path.relative_to(self.root)))
                if repair:
                    path.unlink()
                    report.repaired += 1
        return report


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
