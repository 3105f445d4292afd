"""The archive's tables and their versioned migrations, for SQLite and PostgreSQL alike.

Plain tables with foreign keys, so a person can open `index.sqlite` in Datasette or the
sqlite3 shell (or `\\d+` in psql, where these comments are stored) and follow a version to
its response and blobs. Timestamps are text in one fixed format (`records.iso`), JSON is
text, ids are integers: the same rows mean the same thing on both databases.

    watch ─┬─ watch_state                  one row each
           ├─ check_run                    one small row per check (pruned by keep_checks)
           ├─ response ── blob             the raw evidence: what was asked, what came back
           │     └─ tls_chain                the certificate chain its server presented
           ├─ document ── version ── blob  a statement, and every version of it ever seen
           │                 ├─ version_timestamp ── timestamp_batch   RFC 3161 tokens
           │                 └─ independent_copy        Save Page Now queue and captures
           ├─ attachment ── blob           each new answer for a statement's attachment
           ├─ alert ── delivery            the outbox
           ├─ screenshot ── blob           full-page PNGs (version_screenshot: of versions)
           ├─ ui_watch                     watches added or edited in the web UI
           └─ discovered                   statements a listing found, each its own watch
    document/version ── annotation         people's verdicts: significant or noise, notes
    furniture                              blocks learned to be furniture, per watch or host
    learning_pair, learning_text           what learning found in two texts, and in one
    learning_window                        what it found in a statement's window, to go on from
    version ── version_text                full-text search index (FTS5 / tsvector)
    app_user                               who may log in to the web UI, and their role
    web_session                            their sessions (store/accounts.py)
    user_visit                             when each user last opened the front page
    blob ── blob_data                      blob bytes, when kept in the database
    meta                                   schema_version, blobs ('path' or 'db')
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Select,
    Table,
    Text,
    UniqueConstraint,
    event,
    inspect,
    select,
)

from monitor.store.chain import link, watch_link
from monitor.store.dialect import dialect_of
from monitor.store.records import StoreError

# SQLite makes a column the rowid (compact, auto-assigned) only when it is declared exactly
# INTEGER PRIMARY KEY; PostgreSQL gets 64-bit ids, because check_run never stops growing.
Id = BigInteger().with_variant(Integer(), "sqlite")

metadata = MetaData()

watch = Table(
    "watch",
    metadata,
    Column("id", Text, primary_key=True, comment="chosen by the user; never derived from the URL"),
    Column("url", Text, nullable=False),
    Column("profile", Text, nullable=False, comment="site profile: govkz, generic, ..."),
    Column("first_seen", Text, nullable=False),
    Column("chain_head", Text, comment="watch_chain of its newest version (store/chain.py)"),
    comment="One row per configured watch.",
)

watch_state = Table(
    "watch_state",
    metadata,
    Column("watch_id", Text, ForeignKey("watch.id"), primary_key=True),
    Column("last_check_at", Text),
    Column("last_ok_at", Text),
    Column("last_change_at", Text),
    Column("failing_since", Text),
    Column("failure_reason", Text),
    Column("failure_alerted", Integer, nullable=False, server_default="0"),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column(
        "validators",
        Text,
        nullable=False,
        server_default="{}",
        comment="JSON {url: {etag, last_modified, body}}: what the last full answer was",
    ),
    Column(
        "since_full",
        Integer,
        nullable=False,
        server_default="0",
        comment="conditional checks since the last full fetch",
    ),
    Column("next_run_at", Text, comment="when the next check is due (kept across restarts)"),
    Column("lease_owner", Text, comment="the daemon instance running a check of this watch"),
    Column("lease_until", Text, comment="when that claim lapses unless renewed"),
    Column(
        "pending",
        Integer,
        nullable=False,
        server_default="0",
        comment="1: a version awaits its confirming look",
    ),
    comment="Mutable per-watch state: failure tracking (one alert per outage), HTTP validators.",
)

blob = Table(
    "blob",
    metadata,
    Column("sha256", Text, primary_key=True, comment="SHA-256 of the uncompressed bytes, hex"),
    Column("size", BigInteger, nullable=False, comment="uncompressed bytes"),
    Column("stored_size", BigInteger, nullable=False, comment="zstd-compressed bytes"),
    Column("media_type", Text),
    comment="Every stored blob: raw response bodies, request bodies, statement JSON. The bytes "
    "are in blobs/ab/<sha256> (older: blobs/ab/cd/<sha256>; zstd) or in blob_data.",
)

blob_data = Table(
    "blob_data",
    metadata,
    Column("sha256", Text, ForeignKey("blob.sha256"), primary_key=True),
    Column("data", LargeBinary, nullable=False, comment="zstd-compressed"),
    comment="Blob bytes, when the store keeps them in the database ([store] blobs = 'db').",
)

response = Table(
    "response",
    metadata,
    Column("id", Id, primary_key=True),
    Column("watch_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("requested_at", Text, nullable=False),
    Column("method", Text, nullable=False),
    Column("url", Text, nullable=False, comment="as requested"),
    Column("final_url", Text, nullable=False, comment="after redirects"),
    Column("status", Integer),
    Column("http_version", Text),
    Column("request_headers", Text, nullable=False, comment="JSON object"),
    Column("request_body", Text, ForeignKey("blob.sha256")),
    Column("headers", Text, nullable=False, comment="JSON list of [name, value] as received"),
    Column("redirects", Text, nullable=False, comment="JSON list of [status, url]"),
    Column("server_date", Text, comment="the server's Date header"),
    Column("body_sha256", Text, ForeignKey("blob.sha256"), nullable=False),
    Column("body_size", BigInteger, nullable=False),
    Column(
        "tls",
        Text,
        comment="JSON: encrypted, protocol, cipher, chain_complete, how (monitor/tls.py); "
        "NULL: not recorded (stored before schema 9)",
    ),
    Column("tls_chain", Text, ForeignKey("tls_chain.sha256"), comment="NULL: no chain known"),
    comment="A response kept as evidence because it produced at least one new version.",
)

tls_chain = Table(
    "tls_chain",
    metadata,
    Column(
        "sha256",
        Text,
        primary_key=True,
        comment="SHA-256 of the DER certificates concatenated in the order presented, hex",
    ),
    Column("pem", Text, nullable=False, comment="the certificates in PEM, leaf first"),
    Column(
        "certificates",
        Text,
        nullable=False,
        comment="JSON list, leaf first: subject, issuer, serial, not_before, not_after, sha256",
    ),
    Column("first_seen", Text, nullable=False),
    comment="Each distinct TLS certificate chain a server presented, stored once and named "
    "by its hash from every response it served (store/provenance.py).",
)

document = Table(
    "document",
    metadata,
    Column("id", Id, primary_key=True),
    Column("watch_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("key", Text, nullable=False, comment="from the profile, e.g. 'en/1048252'"),
    Column("url", Text, nullable=False),
    Column("language", Text),
    Column("title", Text, nullable=False),
    Column("published", Text),
    Column("first_seen", Text, nullable=False),
    Column("removed_at", Text),
    Column("chain_head", Text, comment="chain of its newest version (store/chain.py)"),
    UniqueConstraint("watch_id", "key"),
    comment="A statement (or page) found by a watch.",
)

version = Table(
    "version",
    metadata,
    Column("id", Id, primary_key=True),
    Column("document_id", Id, ForeignKey("document.id"), nullable=False),
    Column("seq", Integer, nullable=False, comment="1, 2, 3, ... per document, without gaps"),
    Column("observed_at", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("response_id", Id, ForeignKey("response.id")),
    Column("text_sha256", Text, ForeignKey("blob.sha256"), comment="statement JSON; NULL: removed"),
    Column("score", Double, nullable=False, server_default="0"),
    Column("summary", Text, nullable=False, server_default=""),
    Column(
        "confirmation",
        Text,
        comment="NULL: needed none; pending: may alert once it holds; held: it did (and "
        "alerted); transient: it did not hold (gone by the next look)",
    ),
    Column("prev_chain", Text, comment="chain of the statement's previous version"),
    Column("chain", Text, comment="SHA-256 over this version's facts and prev_chain"),
    Column("watch_chain", Text, comment="the watch's chain: every version in recorded order"),
    CheckConstraint(
        "kind IN ('baseline','published','edited','removed','restored')", name="version_kind"
    ),
    UniqueConstraint("document_id", "seq"),
    comment="Every version ever seen, stored at first sight; never deleted, and never "
    "updated but for the verdict `confirmation`. kind: baseline (first sight when a watch "
    "starts), published, edited, removed, restored.",
)

timestamp_batch = Table(
    "timestamp_batch",
    metadata,
    Column("id", Id, primary_key=True),
    Column("created_at", Text, nullable=False),
    Column(
        "manifest",
        Text,
        nullable=False,
        comment="canonical JSON: the chain heads of the statements and watches it covers",
    ),
    Column("digest", Text, nullable=False, comment="SHA-256 of manifest: the message imprint"),
    Column("tsa_url", Text, nullable=False),
    Column("token", LargeBinary, nullable=False, comment="RFC 3161 TimeStampToken (DER)"),
    Column("gen_time", Text, nullable=False, comment="the time the TSA vouches for"),
    Column("serial", Text, nullable=False, comment="the token's serial number at its TSA"),
    comment="Trusted timestamps (RFC 3161), one per batch of new versions (stamper.py).",
)

version_timestamp = Table(
    "version_timestamp",
    metadata,
    Column("version_id", Id, ForeignKey("version.id"), primary_key=True),
    Column("batch_id", Id, ForeignKey("timestamp_batch.id"), nullable=False),
    Column(
        "head",
        Text,
        nullable=False,
        comment="its statement's chain head in the batch: its own chain, or that of a "
        "later version its chain leads to",
    ),
    Index("version_timestamp_batch", "batch_id"),
    comment="Which trusted timestamp covers a version, and through which chain head.",
)

independent_copy = Table(
    "independent_copy",
    metadata,
    Column("id", Id, primary_key=True),
    Column("version_id", Id, ForeignKey("version.id"), nullable=False),
    Column("target", Text, nullable=False, comment="where the copy is made: wayback"),
    Column("url", Text, nullable=False, comment="the URL submitted (the statement's)"),
    Column(
        "state",
        Text,
        nullable=False,
        comment="queued: to submit; submitted: a job runs; captured: done; failed: given up",
    ),
    Column("attempts", Integer, nullable=False, server_default="0", comment="submissions"),
    Column("stale", Integer, nullable=False, server_default="0", comment="stale answers refused"),
    Column("next_attempt_at", Text, nullable=False, comment="when to submit or ask again"),
    Column("job_id", Text, comment="the target's job, while one runs"),
    Column("submitted_at", Text),
    Column("capture_url", Text, comment="the copy, e.g. https://web.archive.org/web/<ts>/<url>"),
    Column("captured_at", Text, comment="the capture's own time, as the target gives it"),
    Column("last_error", Text),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    CheckConstraint(
        "state IN ('queued','submitted','captured','failed')", name="independent_copy_state"
    ),
    UniqueConstraint("version_id", "target"),
    Index("independent_copy_due", "state", "next_attempt_at"),
    comment="Copies of versions made elsewhere (the Internet Archive's Save Page Now): a "
    "durable queue, retried with backoff like deliveries; a capture older than its version "
    "is refused (monitor/wayback.py).",
)

screenshot = Table(
    "screenshot",
    metadata,
    Column("id", Id, primary_key=True),
    Column("watch_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("taken_at", Text, nullable=False),
    Column("url", Text, nullable=False, comment="the page as the browser ended on it"),
    Column("sha256", Text, ForeignKey("blob.sha256"), comment="the PNG; NULL: a problem row"),
    Column("width", Integer),
    Column("height", Integer),
    Column(
        "previous_id",
        Id,
        ForeignKey("screenshot.id"),
        comment="the screenshot of the watch it was compared with",
    ),
    Column("changed", Double, comment="share of the page that differs from previous_id, 0-1"),
    Column("regions", Text, comment="JSON: the changed rectangles [left, top, right, bottom]"),
    Column("problem", Text, comment="why no screenshot could be taken (once per run of them)"),
    Index("screenshot_watch", "watch_id", "id"),
    comment="Full-page screenshots of watches with screenshot = true (monitor/screenshots.py): "
    "one per check that made versions, and one per visual change of alert_visual watches.",
)

version_screenshot = Table(
    "version_screenshot",
    metadata,
    Column("version_id", Id, ForeignKey("version.id"), primary_key=True),
    Column("screenshot_id", Id, ForeignKey("screenshot.id"), nullable=False),
    comment="What the page looked like when a version was archived.",
)

check_run = Table(
    "check_run",
    metadata,
    Column("id", Id, primary_key=True),
    Column("watch_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("at", Text, nullable=False),
    Column("ms", Integer, nullable=False),
    Column("outcome", Text, nullable=False),
    Column("status", Integer),
    Column("detail", Text),
    Column("instance", Text, comment="which daemon ran the check, when several share a store"),
    CheckConstraint("outcome IN ('changed','unchanged','problem')", name="check_run_outcome"),
    Index("check_run_watch", "watch_id", "id"),
    comment="One small row per check, changed or not; older rows go after [store] keep_checks.",
)

alert = Table(
    "alert",
    metadata,
    Column("id", Id, primary_key=True),
    Column("watch_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("version_id", Id, ForeignKey("version.id")),
    Column("kind", Text, nullable=False),
    Column("created_at", Text, nullable=False),
    Column("payload", Text, nullable=False, comment="JSON, the message as channels render it"),
    comment="Alerts, written in the same transaction as the versions that caused them.",
)

delivery = Table(
    "delivery",
    metadata,
    Column("id", Id, primary_key=True),
    Column("alert_id", Id, ForeignKey("alert.id"), nullable=False),
    Column("channel", Text, nullable=False),
    Column("status", Text, nullable=False, server_default="pending"),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", Text, nullable=False),
    Column("last_error", Text),
    Column("sent_at", Text),
    CheckConstraint("status IN ('pending','sent','dead')", name="delivery_status"),
    UniqueConstraint("alert_id", "channel"),
    Index("delivery_due", "status", "next_attempt_at"),
    comment="One delivery per alert and channel; retried with backoff until sent or dead.",
)

meta = Table(
    "meta",
    metadata,
    Column("key", Text, primary_key=True),
    Column("value", Text, nullable=False),
    comment="schema_version; blobs: where blob bytes live ('path' or 'db').",
)

annotation = Table(
    "annotation",
    metadata,
    Column("id", Id, primary_key=True),
    Column("document_id", Id, ForeignKey("document.id"), nullable=False),
    Column("version_id", Id, ForeignKey("version.id"), comment="NULL: the statement as a whole"),
    Column("username", Text, nullable=False, comment="kept when the user is deleted"),
    Column("verdict", Text, comment="significant | noise; NULL: a note only"),
    Column("note", Text, nullable=False, server_default=""),
    Column("created_at", Text, nullable=False),
    CheckConstraint(
        "verdict IS NULL OR verdict IN ('significant','noise')", name="annotation_verdict"
    ),
    Index("annotation_document", "document_id", "id"),
    Index("annotation_version", "version_id", "id"),
    comment="People's judgement of a change, from the web UI. Never updated: a person's "
    "newest row for a version is their verdict, the older ones its history.",
)

app_user = Table(
    "app_user",
    metadata,
    Column("username", Text, primary_key=True),
    Column("password_hash", Text, nullable=False, comment="argon2id, PHC string"),
    Column("role", Text, nullable=False, comment="viewer | editor | admin"),
    Column("created_at", Text, nullable=False),
    Column("updated_at", Text, nullable=False),
    CheckConstraint("role IN ('viewer','editor','admin')", name="app_user_role"),
    comment="People who may log in to the web UI (`monitor user add`).",
)

web_session = Table(
    "web_session",
    metadata,
    Column("id", Text, primary_key=True, comment="SHA-256 (hex) of the cookie's token"),
    Column("username", Text, nullable=False),
    Column("fingerprint", Text, nullable=False, comment="of the password hash at login"),
    Column("created_at", Text, nullable=False),
    Column("expires_at", Text, nullable=False),
    Column("client", Text, comment="address the login came from"),
    Index("web_session_user", "username"),
    comment="Web UI sessions: deleted at logout and when the user's password changes.",
)

api_token = Table(
    "api_token",
    metadata,
    Column(
        "name", Text, primary_key=True, comment="chosen by whoever made it, e.g. 'newsroom-bot'"
    ),
    Column("token_sha256", Text, nullable=False, unique=True, comment="SHA-256 (hex) of the token"),
    Column("role", Text, nullable=False, comment="viewer | editor | admin"),
    Column("created_at", Text, nullable=False),
    Column("created_by", Text, nullable=False),
    Column("last_used_at", Text),
    Column("revoked_at", Text, comment="NULL: in force"),
    comment="API tokens (their SHA-256 only); revoked ones are kept, marked.",
)

user_visit = Table(
    "user_visit",
    metadata,
    Column("username", Text, primary_key=True),
    Column("seen_at", Text, nullable=False, comment="the newest front page view"),
    Column(
        "previous_at",
        Text,
        comment="when the visit before the current one ended; NULL: none yet",
    ),
    comment="The front page's since-my-last-visit: a visit is views less than "
    "store/accounts.VISIT_GAP apart.",
)


ui_watch = Table(
    "ui_watch",
    metadata,
    Column("id", Text, primary_key=True, comment="replaces the file's [[watch]] of this id"),
    Column("config", Text, nullable=False, comment="JSON: the watch's keys, as in the TOML"),
    Column("updated_at", Text, nullable=False),
    Column("updated_by", Text, nullable=False),
    comment="Watches added or edited in the web UI, merged over the config file's at start "
    "and on SIGHUP (the file itself is never rewritten).",
)

discovered = Table(
    "discovered",
    metadata,
    Column("watch_id", Text, ForeignKey("watch.id"), primary_key=True),
    Column("parent_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("key", Text, nullable=False, comment="the statement's key in the listing"),
    Column("url", Text, nullable=False),
    Column("title", Text, nullable=False),
    Column("language", Text),
    Column("profile", Text, comment="site profile of the statement's page; NULL: by its URL"),
    Column("published", Text, comment="as the listing gave it; drives the adaptive schedule"),
    Column("translation_group", Text, comment="same value = translations of one statement"),
    Column("discovered_at", Text, nullable=False),
    Column("announce", Integer, nullable=False, comment="1: first version alerts 'published'"),
    Column("listed_sha256", Text, comment="the statement as the listing last showed it"),
    Column("last_listed_at", Text),
    UniqueConstraint("parent_id", "key"),
    Index("discovered_group", "translation_group"),
    comment="Statements found by a listing watch with discover = true; each is a watch.",
)

furniture = Table(
    "furniture",
    metadata,
    Column("id", Id, primary_key=True),
    Column("scope", Text, nullable=False, comment="watch | host"),
    Column("scope_id", Text, nullable=False, comment="the watch's id, or the host (host:port)"),
    Column("kind", Text, nullable=False, comment="slot | shape | template (monitor/learned.py)"),
    Column("fingerprint", Text, nullable=False, comment="SHA-256 of kind and pattern, hex"),
    Column("pattern", Text, nullable=False, comment="JSON: what is masked before comparing"),
    Column("example", Text, nullable=False, comment="the text there, as last seen"),
    Column("reason", Text, nullable=False, comment="the evidence, in words"),
    Column("learned_at", Text, nullable=False),
    Column("seen_at", Text, nullable=False, comment="the last learning that found the evidence"),
    Column("forgotten_at", Text, comment="set: a user said it is not furniture; never relearned"),
    Column("forgotten_by", Text),
    CheckConstraint("scope IN ('watch','host')", name="furniture_scope"),
    CheckConstraint("kind IN ('slot','shape','template')", name="furniture_kind"),
    UniqueConstraint("scope", "scope_id", "kind", "fingerprint"),
    comment="Blocks learned from the archive to be furniture (a slot that changes on most "
    "checks, a number that always moves, a host's template paragraph): masked before "
    "deciding whether a change alerts; never changes what is archived.",
)


# What learning furniture found, kept so that a statement's next edit compares only its own
# pair of texts, not its whole window again (monitor/learned.py). Pairs and texts are keyed
# by texts' hashes (blob.sha256), a window by its statement's id, none as foreign keys:
# written with the batch of unchanged checks, they must never fail it. Each is made again
# from the texts when missing: a store from before version 16 (17 for windows), or a process
# stopped before the batch was written (a window then goes on from the one before).


def _learnt(name: str, comment: str, *columns: Column[Any], small: bool = True) -> Table:
    # Small rows keyed by a text's hash: WITHOUT ROWID on SQLite. A window (a few KB) is
    # kept in a table of its own rowid, its statement's id.
    rules = Column("rules", Integer, nullable=False, comment="learned.RULES that made it")
    return Table(name, metadata, *columns, rules, comment=comment, sqlite_with_rowid=not small)


learning_pair = _learnt(
    "learning_pair",
    "What changed from one text to the next as learning counts it (monitor/learned.py): "
    "the slots and shapes, their neighbours and shapes hashed as in learning_text.",
    Column("old_sha256", Text, primary_key=True, comment="the older text (a blob's SHA-256)"),
    Column("new_sha256", Text, primary_key=True, comment="the text that followed it"),
    Column("changes", Text, nullable=False, comment="JSON: [kind, where, run, span] each"),
)
learning_text = _learnt(
    "learning_text",
    "What counting where a learned item stood needs of a text: 64-bit hashes (BLAKE2b, "
    "little-endian) of its paragraphs' normal forms, in order, and of its shapes.",
    Column("text_sha256", Text, primary_key=True, comment="the text (a blob's SHA-256)"),
    Column("normals", LargeBinary, nullable=False),
    Column("shapes", LargeBinary, nullable=False, comment="those that hold a '#', sorted"),
)

learning_window = _learnt(
    "learning_window",
    "What learning found in a statement's newest versions, carried from one edit to the next "
    "(monitor/learned.py `_Window`): its pairs, and for each slot or shape that changed in "
    "them, where it changed and, once it may be learned, where it stood.",
    Column("document_id", Id, primary_key=True, autoincrement=False, comment="the statement's id"),
    Column("state", Text, nullable=False, comment="JSON: [WINDOW_FORMAT, pairs, found]"),
    small=False,
)

attachment = Table(
    "attachment",
    metadata,
    Column("id", Id, primary_key=True),
    Column("watch_id", Text, ForeignKey("watch.id"), nullable=False),
    Column("url", Text, nullable=False, comment="as the statement links it (or the watch's URL)"),
    Column("fetched_at", Text, nullable=False),
    Column("final_url", Text, nullable=False, comment="after redirects"),
    Column("status", Integer),
    Column("headers", Text, nullable=False, comment="JSON list of [name, value] as received"),
    Column("etag", Text),
    Column("last_modified", Text),
    Column("body_sha256", Text, ForeignKey("blob.sha256"), comment="NULL: nothing kept"),
    Column("body_size", BigInteger, nullable=False, comment="bytes received"),
    Column("media_type", Text, comment="the server's Content-Type"),
    Column(
        "document_sha256",
        Text,
        ForeignKey("blob.sha256"),
        comment="the text read from the body (Document JSON, monitor/statement.py)",
    ),
    Column("problem", Text, comment="why the file could not be used (too large, encrypted…)"),
    Index("attachment_latest", "watch_id", "url", "id"),
    comment="Each new answer for a statement's attachment (a PDF, a Word file): a new body or "
    "a new problem; an unchanged one (304, the same bytes) adds nothing. The statement's "
    "version names the body's SHA-256 in its documents (monitor/attachments.py).",
)


@event.listens_for(metadata, "after_create")
def _after_create(_target: MetaData, connection: Connection, **_kw: object) -> None:
    # A new database is made by create_all; the search index is not a Table of metadata:
    # its spelling is the dialect's (FTS5, tsvector).
    dialect_of(connection).create_search_index(connection)


# New in schema version 11: the changes feed (store/changes.py) reads versions and alerts
# newest first by these.
version_observed = Index("version_observed", version.c.observed_at, version.c.id)
alert_created = Index("alert_created", alert.c.created_at, alert.c.id)

# New in schema version 15: a check that decides whether an edit flips back to a text seen
# before finds that statement's versions with the text directly, not by reading them all
# (36 ms at 5,000 versions, on every edit).
version_text_seen = Index(
    "version_text_seen", version.c.document_id, version.c.text_sha256, version.c.seq
)


# --- migrations ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Migration:
    version: int
    summary: str
    apply: Callable[[Connection], None]


def _add_blob_data(conn: Connection) -> None:
    # The live definition is fine while blob_data is unchanged since version 2; a later
    # migration that alters it must freeze this step's DDL.
    blob_data.create(conn, checkfirst=True)


def _add_review(conn: Connection) -> None:
    # Same caveat as above: these tables are new in version 3.
    for table in (annotation, app_user, ui_watch):
        table.create(conn, checkfirst=True)
    dialect_of(conn).create_search_index(conn)


def _add_schedule(conn: Connection) -> None:
    # The new columns as plain DDL; `discovered` is new in version 4 (caveat as above).
    for name in ("next_run_at", "lease_owner", "lease_until"):
        conn.exec_driver_sql(f"ALTER TABLE watch_state ADD COLUMN {name} TEXT")
    conn.exec_driver_sql("ALTER TABLE check_run ADD COLUMN instance TEXT")
    discovered.create(conn, checkfirst=True)


def chain_facts() -> Select[Any]:
    """Every version's linked facts (store/chain.py) with its chain columns, in recorded
    order: for the migration that first links them and for `verify`."""
    return (
        select(
            version.c.id,
            version.c.document_id,
            version.c.seq,
            version.c.observed_at,
            version.c.kind,
            version.c.text_sha256,
            version.c.score,
            version.c.summary,
            version.c.prev_chain,
            version.c.chain,
            version.c.watch_chain,
            document.c.watch_id.label("watch"),
            document.c.key,
            response.c.body_sha256,
        )
        .join(document, document.c.id == version.c.document_id)
        .outerjoin(response, response.c.id == version.c.response_id)
        .order_by(version.c.id)
    )


def _add_chains(conn: Connection) -> None:
    # Plain DDL (as above), then every existing version linked into its chains, oldest
    # first: an archive made before chains were kept is vouched for from the upgrade on.
    for name in ("confirmation", "prev_chain", "chain", "watch_chain"):
        conn.exec_driver_sql(f"ALTER TABLE version ADD COLUMN {name} TEXT")
    conn.exec_driver_sql("ALTER TABLE document ADD COLUMN chain_head TEXT")
    conn.exec_driver_sql("ALTER TABLE watch_state ADD COLUMN pending INTEGER NOT NULL DEFAULT 0")
    conn.exec_driver_sql("ALTER TABLE watch ADD COLUMN chain_head TEXT")
    rows = [dict(row) for row in conn.execute(chain_facts()).mappings()]
    heads: dict[int, str] = {}
    watch_heads: dict[str, str] = {}
    for row in rows:
        prev = heads.get(row["document_id"])
        chain = link(prev, row)
        watch_chain = watch_link(watch_heads.get(row["watch"]), chain)
        conn.execute(
            version.update()
            .where(version.c.id == row["id"])
            .values(prev_chain=prev, chain=chain, watch_chain=watch_chain)
        )
        heads[row["document_id"]] = chain
        watch_heads[row["watch"]] = watch_chain
    for document_id, chain in heads.items():
        conn.execute(document.update().where(document.c.id == document_id).values(chain_head=chain))
    for watch_id, chain in watch_heads.items():
        conn.execute(watch.update().where(watch.c.id == watch_id).values(chain_head=chain))


def _add_sessions(conn: Connection) -> None:
    # New in version 6 (caveat as above).
    web_session.create(conn, checkfirst=True)


def _add_furniture(conn: Connection) -> None:
    # New in version 7 (caveat as above).
    furniture.create(conn, checkfirst=True)


def _add_timestamps(conn: Connection) -> None:
    # New tables in version 8 (caveat as above).
    for table in (timestamp_batch, version_timestamp):
        table.create(conn, checkfirst=True)


def _add_tls(conn: Connection) -> None:
    # A new table and two plain columns in version 9 (caveat as above).
    tls_chain.create(conn, checkfirst=True)
    conn.exec_driver_sql("ALTER TABLE response ADD COLUMN tls TEXT")
    conn.exec_driver_sql(
        "ALTER TABLE response ADD COLUMN tls_chain TEXT REFERENCES tls_chain(sha256)"
    )


def _add_api(conn: Connection) -> None:
    # New in version 11 (caveat as above).
    api_token.create(conn, checkfirst=True)
    for index in (version_observed, alert_created):
        index.create(conn, checkfirst=True)


def _add_attachments(conn: Connection) -> None:
    # New in version 12 (caveat as above).
    attachment.create(conn, checkfirst=True)


def _add_version_text_index(conn: Connection) -> None:
    # New in version 15 (14 is another branch's number).
    version_text_seen.create(conn, checkfirst=True)


def _add_learning_evidence(conn: Connection) -> None:
    # New in version 16 (caveat as above); empty: learning fills them as it goes.
    for table in (learning_pair, learning_text):
        table.create(conn, checkfirst=True)


def _add_learning_window(conn: Connection) -> None:
    # New in version 17 (caveat as above); empty: learning fills it as it goes.
    learning_window.create(conn, checkfirst=True)


def _add_independent_copies(conn: Connection) -> None:
    # New in version 10 (caveat as above; 9 is TLS provenance).
    independent_copy.create(conn, checkfirst=True)


def _add_screenshots(conn: Connection) -> None:
    # New tables in version 13 (caveat as above; 12 is attachments).
    for table in (screenshot, version_screenshot):
        table.create(conn, checkfirst=True)


def _add_user_visit(conn: Connection) -> None:
    # New in version 14 (caveat as above; 13 is screenshots).
    user_visit.create(conn, checkfirst=True)


# Version 1 is the schema monitor 0.1 created with plain sqlite3. A new database is created
# from `metadata` directly and stamped with the latest version; an older one runs every
# later step, in order, in the same transaction as the version bump.
MIGRATIONS: tuple[Migration, ...] = (
    Migration(2, "blob_data: blob bytes kept in the database", _add_blob_data),
    Migration(3, "web UI: annotation, app_user, ui_watch, version_text (search)", _add_review),
    Migration(4, "discovery and shared scheduling: discovered, next_run_at, leases", _add_schedule),
    Migration(5, "archive at first sight and hash chains: confirmation, chains", _add_chains),
    Migration(6, "web UI: server-side sessions (web_session)", _add_sessions),
    Migration(7, "learned furniture: furniture", _add_furniture),
    Migration(8, "trusted timestamps: timestamp_batch, version_timestamp", _add_timestamps),
    Migration(9, "TLS provenance: tls_chain, response.tls and response.tls_chain", _add_tls),
    Migration(10, "independent copies (Save Page Now): independent_copy", _add_independent_copies),
    Migration(11, "API and changes feed: api_token, version_observed, alert_created", _add_api),
    Migration(12, "attachments watched with their statement: attachment", _add_attachments),
    Migration(13, "screenshots: screenshot, version_screenshot", _add_screenshots),
    Migration(14, "front page: user_visit (since my last visit)", _add_user_visit),
    Migration(15, "fast edits: version_text_seen", _add_version_text_index),
    Migration(16, "learning kept: learning_pair, learning_text", _add_learning_evidence),
    Migration(17, "learning carried from edit to edit: learning_window", _add_learning_window),
)
LATEST = MIGRATIONS[-1].version


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(meta.c.value).where(meta.c.key == key)).scalar_one_or_none()


def set_meta(conn: Connection, key: str, value: str) -> None:
    if get_meta(conn, key) is None:
        conn.execute(meta.insert().values(key=key, value=value))
    else:
        conn.execute(meta.update().where(meta.c.key == key).values(value=value))


def migrate(conn: Connection, where: str) -> list[Migration]:
    """Bring the schema to LATEST inside the caller's write transaction; returns the steps
    applied (none for a new or current database)."""
    dialect_of(conn).lock_migrations(conn)
    tables = set(inspect(conn).get_table_names())
    if "meta" not in tables:
        if "version" in tables:
            raise StoreError(f"{where} has monitor tables but no schema version; refusing")
        metadata.create_all(conn)
        set_meta(conn, "schema_version", str(LATEST))
        return []
    found = int(get_meta(conn, "schema_version") or 1)
    if found > LATEST:
        raise StoreError(
            f"{where} was written by a newer monitor (schema {found}, this one knows {LATEST})"
        )
    steps = [step for step in MIGRATIONS if step.version > found]
    for step in steps:
        step.apply(conn)
        set_meta(conn, "schema_version", str(step.version))
    return steps
