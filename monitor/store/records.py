"""What the store takes and gives back, free of any database type: dataclasses for what
callers build or the hot paths return (a watch's state, a statement's head, a check), and a
`TypedDict` per kind of row a read returns, so mypy checks every `row["field"]`.

Why `TypedDict`s for rows: a row stays the dict it always was (`row["seq"]`, `row.get(…)`,
`{**row, …}` and JSON encoding keep working, at no cost), and the field names and types are
checked where it is read. A read's row is its query's columns; tests/test_store_records.py
holds each declaration to the columns a real store returns. A column with a fixed set of
values (the schema's CHECK constraints) is a `Literal`. Timestamps are the archive's text
(monitor/clock.py: `iso`, `parse_iso`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, TypedDict

# The archive's timestamp format, kept importable from here for the store's users.
from monitor.clock import iso as iso
from monitor.clock import now_iso as now_iso

if TYPE_CHECKING:
    from monitor.tls import TlsInfo


class StoreError(Exception):
    pass


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
    next_run_at: str | None = None
    # Some statement's newest version awaits its confirming look (check.py).
    pending: bool = False


# The summary of a statement's first version (kind "baseline" without a predecessor).
FIRST_SEEN = "first seen"


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
    response_id: int | None = None  # the response this version was read from
    # The newest version's verdict: None (needed none), pending, held or transient.
    confirmation: Confirmation | None = None
    version_id: int | None = None


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
    # What the connection said about itself (monitor/tls.py); None: not recorded.
    tls: TlsInfo | None = None


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
    # "pending": it may alert once a later look finds it still there (see check.py).
    confirmation: str | None = None
    # Alert payloads caused by this version, with the channels to deliver them to.
    alerts: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)


@dataclass
class Settlement:
    """The verdict a check reached on versions that were pending confirmation ({version id:
    "held" | "transient"}) and the alerts each releases."""

    verdicts: dict[int, str] = field(default_factory=dict)
    alerts: dict[int, list[tuple[dict[str, Any], list[str]]]] = field(default_factory=dict)


@dataclass
class CheckRecord:
    watch_id: str
    at: str
    ms: int
    outcome: str
    status: int | None
    detail: str | None = None
    instance: str | None = None


@dataclass(frozen=True)
class Discovery:
    """A statement a listing found, to become its own watch."""

    watch_id: str
    parent_id: str
    key: str
    url: str
    title: str
    language: str | None
    profile: str | None
    published: str | None
    translation_group: str | None
    announce: bool
    listed_sha256: str


@dataclass
class AttachmentRecord:
    """An answer for a statement's attachment, to record (store/attachments.py)."""

    watch_id: str
    url: str
    fetched_at: str
    final_url: str
    status: int | None
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes | None = None  # None: nothing to keep (a problem before any bytes)
    body_size: int = 0
    media_type: str | None = None
    document: bytes | None = None  # the Document JSON read from `body`
    problem: str | None = None


@dataclass
class NewScreenshot:
    """A full-page screenshot to record (store/screenshots.py)."""

    watch_id: str
    taken_at: str
    url: str
    png: bytes
    width: int
    height: int
    previous_id: int | None = None
    changed: float | None = None
    regions: list[list[int]] = field(default_factory=list)


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
    versions: int = 0
    damage: list[str] = field(default_factory=list)
    orphans: list[str] = field(default_factory=list)
    repaired: int = 0


# --- what a column may hold (the schema's CHECK constraints) ------------------------------

# version.kind. decide.py names a change with it.
ChangeKind = Literal["baseline", "published", "edited", "removed", "restored"]
# What a check concluded about versions pending confirmation (decide.py).
Verdict = Literal["held", "transient"]
# version.confirmation (None: it needed none).
Confirmation = Literal["pending", "held", "transient"]
# check_run.outcome.
Outcome = Literal["changed", "unchanged", "problem"]
# delivery.status as stored (monitor/alerts.py's DeliveryStatus adds what the UI shows).
DeliveryState = Literal["pending", "sent", "dead"]
# app_user.role and api_token.role.
Role = Literal["viewer", "editor", "admin"]
# annotation.verdict (None: a note only).
Judgement = Literal["significant", "noise"]
# independent_copy.state.
CopyState = Literal["queued", "submitted", "captured", "failed"]
# furniture.scope and furniture.kind.
FurnitureScope = Literal["watch", "host"]
FurnitureKind = Literal["slot", "shape", "template"]


# --- rows: the archive (store.archive, store.overview) ------------------------------------


class DocumentRow(TypedDict):
    """A statement (table `document`)."""

    id: int
    watch_id: str
    key: str
    url: str
    language: str | None
    title: str
    published: str | None
    first_seen: str
    removed_at: str | None
    chain_head: str | None


class DocumentSummaryRow(DocumentRow):
    """`Archive.documents`: a statement with its number of versions and the newest's time."""

    versions: int
    last_version_at: str


class VersionRow(TypedDict):
    """A version (table `version`)."""

    id: int
    document_id: int
    seq: int
    observed_at: str
    kind: ChangeKind
    response_id: int | None
    text_sha256: str | None  # None: removed
    score: float
    summary: str
    confirmation: Confirmation | None
    # Set on every version (schema 5 linked the versions before it): store/chain.py.
    prev_chain: str | None  # None: the first version
    chain: str
    watch_chain: str


class VersionWithDocumentRow(VersionRow):
    """A version with its statement's watch, key, title, URL, language and date."""

    watch_id: str
    key: str
    title: str
    url: str
    language: str | None
    published: str | None


class MementoRow(TypedDict):
    """`Archive.mementos`: a version read from a stored response."""

    watch_id: str
    key: str
    seq: int
    observed_at: str
    response_id: int
    requested_at: str


class ResponseRow(TypedDict):
    """A stored response (table `response`), its JSON columns decoded."""

    id: int
    watch_id: str
    requested_at: str
    method: str
    url: str
    final_url: str
    status: int | None
    http_version: str | None
    request_headers: dict[str, str]
    request_body: str | None  # the body's blob
    headers: list[list[str]]  # [name, value] as received
    redirects: list[list[Any]]  # [status, url]
    server_date: str | None
    body_sha256: str
    body_size: int
    tls: str | None  # JSON (monitor/tls.py); None: not recorded
    tls_chain: str | None


class CheckRow(TypedDict):
    """A check (table `check_run`)."""

    id: int
    watch_id: str
    at: str
    ms: int
    outcome: Outcome
    status: int | None
    detail: str | None
    instance: str | None


class StatementRow(TypedDict):
    """`Overview.statements`: a statement, its newest version, its watch's state, its
    listing."""

    id: int
    watch_id: str
    key: str
    url: str
    language: str | None
    title: str
    first_seen: str
    removed_at: str | None
    last_seq: int
    last_kind: ChangeKind
    last_at: str
    failing_since: str | None
    failure_reason: str | None
    last_check_at: str | None
    listing: str
    translation_group: str | None


class WatchStatusRow(TypedDict):
    """`Overview.watch_states`: a watch, whether it fails, the listing that found it."""

    id: str
    url: str
    last_check_at: str | None
    failing_since: str | None
    failure_reason: str | None
    parent: str | None


# --- rows: watches and their schedule (store.schedule) ------------------------------------


class WatchStateRow(TypedDict):
    """`Schedule.watch_rows`: a watch (table `watch`) with its state (`watch_state`; read
    through an outer join, so None where a watch has no state row yet)."""

    id: str
    url: str
    profile: str
    first_seen: str
    chain_head: str | None
    last_check_at: str | None
    last_ok_at: str | None
    last_change_at: str | None
    failing_since: str | None
    failure_reason: str | None
    failure_alerted: int | None
    consecutive_failures: int | None
    validators: str | None  # JSON
    since_full: int | None
    next_run_at: str | None
    lease_owner: str | None
    lease_until: str | None
    pending: int | None


class DiscoveredRow(TypedDict):
    """A statement watch a listing discovered (table `discovered`)."""

    watch_id: str
    parent_id: str
    key: str
    url: str
    title: str
    language: str | None
    profile: str | None
    published: str | None
    translation_group: str | None
    discovered_at: str
    announce: int
    listed_sha256: str | None
    last_listed_at: str | None


class TranslationRow(TypedDict):
    """`Schedule.translations`: another language's watch of the same statement."""

    watch_id: str
    language: str | None
    url: str


# --- rows: the outbox and the changes feed (store.outbox, store.feed) ---------------------


class AlertRow(TypedDict):
    """An alert (table `alert`); `payload` is its JSON."""

    id: int
    watch_id: str
    version_id: int | None
    kind: str
    created_at: str
    payload: str


class DeliveryRow(TypedDict):
    """A delivery of an alert to one channel (table `delivery`)."""

    id: int
    alert_id: int
    channel: str
    status: DeliveryState
    attempts: int
    next_attempt_at: str
    last_error: str | None
    sent_at: str | None


class DeliveryWithAlertRow(DeliveryRow):
    """`Outbox.deliveries`: a delivery with its alert's watch, kind, time and payload."""

    watch_id: str
    kind: str
    created_at: str
    payload: str


class _Event(TypedDict):
    id: int
    at: str
    summary: str
    watch_id: str
    title: str
    language: str | None
    listing: str  # the discovering listing, else the watch itself


class VersionEvent(_Event):
    """A version of a statement in the changes feed."""

    source: Literal["version"]
    kind: ChangeKind
    seq: int
    key: str
    url: str
    score: float
    confirmation: Confirmation | None


class WatchEvent(_Event):
    """What happened to a watch (an alert: failing, recovered) in the changes feed."""

    source: Literal["watch"]
    kind: str
    seq: None
    key: None
    url: str | None
    score: None
    confirmation: None


# `ChangesFeed.changes`: `row["source"]` tells which (and mypy narrows on it).
ChangeEvent = VersionEvent | WatchEvent


# --- rows: accounts (store.accounts) ------------------------------------------------------


class UserRow(TypedDict):
    username: str
    password_hash: str
    role: Role
    created_at: str
    updated_at: str


class SessionRow(TypedDict):
    id: str
    username: str
    fingerprint: str
    created_at: str
    expires_at: str
    client: str | None


class TokenRow(TypedDict):
    name: str
    token_sha256: str
    role: Role
    created_at: str
    created_by: str
    last_used_at: str | None
    revoked_at: str | None  # None: in force


# --- rows: review (store.review, store/notes.py) ------------------------------------------


class TimelineRow(VersionRow):
    """`Review.timeline`: a version with its text's and response's sizes and its newest
    annotation."""

    text_size: int | None
    body_size: int | None
    verdict: Judgement | None
    note: str | None
    annotated_by: str | None


class AnnotationRow(TypedDict):
    """An annotation (table `annotation`)."""

    id: int
    document_id: int
    version_id: int | None  # None: the statement as a whole
    username: str
    verdict: Judgement | None
    note: str
    created_at: str


class NumberedAnnotationRow(AnnotationRow):
    """An annotation with its version's number (None: of the statement as a whole)."""

    seq: int | None


class NotedRow(NumberedAnnotationRow):
    """`notes.noted`: an annotation with its statement's watch, key and title."""

    watch_id: str
    key: str
    title: str


class VerdictRow(TypedDict):
    """`Review.verdicts`: a version and the newest verdict people gave it."""

    version_id: int
    verdict: Judgement
    seq: int
    text_sha256: str | None
    document_id: int


class UiWatchRow(TypedDict):
    """A watch saved in the UI (table `ui_watch`), its `config` decoded."""

    id: str
    config: dict[str, Any]
    updated_at: str
    updated_by: str


# --- rows: search and furniture (store.fulltext, store.furniture) -------------------------


class SearchHit(TypedDict):
    """`FullText.search`: a version that matches, with its statement and a snippet."""

    id: int
    seq: int
    kind: ChangeKind
    observed_at: str
    document_id: int
    watch_id: str
    key: str
    title: str
    removed_at: str | None
    last_seq: int
    snippet: str


class RecentVersionRow(TypedDict):
    """`Furniture.recent_versions`: a version with the newest verdict people gave it."""

    id: int
    document_id: int
    seq: int
    kind: ChangeKind
    text_sha256: str | None
    verdict: Judgement | None
    key: str


class HostTextRow(TypedDict):
    """`Furniture.newest_texts`: a statement's newest version with text."""

    watch_id: str
    key: str
    url: str
    version_id: int
    text_sha256: str


class FurnitureRow(TypedDict):
    """A learned piece of furniture (table `furniture`), its `pattern` decoded."""

    id: int
    scope: FurnitureScope
    scope_id: str
    kind: FurnitureKind
    fingerprint: str
    pattern: dict[str, Any]
    example: str
    reason: str
    learned_at: str
    seen_at: str
    forgotten_at: str | None
    forgotten_by: str | None


# --- rows: screenshots and attachments ----------------------------------------------------


class ScreenshotRow(TypedDict):
    """A screenshot, or a problem taking one (table `screenshot`)."""

    id: int
    watch_id: str
    taken_at: str
    url: str
    sha256: str | None  # None: a problem row
    width: int | None
    height: int | None
    previous_id: int | None
    changed: float | None
    regions: str | None  # JSON
    problem: str | None


class VersionScreenshotRow(ScreenshotRow):
    version_id: int


class AttachmentRow(TypedDict):
    """An answer for a statement's attachment (table `attachment`)."""

    id: int
    watch_id: str
    url: str
    fetched_at: str
    final_url: str
    status: int | None
    headers: str  # JSON
    etag: str | None
    last_modified: str | None
    body_sha256: str | None
    body_size: int
    media_type: str | None
    document_sha256: str | None
    problem: str | None


# --- rows: trusted timestamps and independent copies --------------------------------------


class PendingStampRow(TypedDict):
    """`Timestamps.pending_versions`: a version no timestamp covers yet, with its chains."""

    id: int
    document_id: int
    seq: int
    chain: str
    watch_chain: str
    watch: str
    key: str


class BatchRow(TypedDict):
    """A batch of trusted timestamps (table `timestamp_batch`)."""

    id: int
    created_at: str
    manifest: str
    digest: str
    tsa_url: str
    token: bytes
    gen_time: str
    serial: str


class VersionStampRow(BatchRow):
    """`Timestamps.version_stamp`: the batch covering a version, and the version's head."""

    head: str


class StampRef(TypedDict):
    """`Timestamps.stamps_of`: which batch covers a version, under which head."""

    batch: int
    head: str


class CoverageRow(TypedDict):
    """`Timestamps.coverage`: a covered version with its statement, chains and head."""

    id: int
    document_id: int
    seq: int
    chain: str
    prev_chain: str | None
    watch: str
    key: str
    batch_id: int
    head: str


class ChainLink(TypedDict):
    """`Timestamps.chains_of`: a version's place in its statement's chain."""

    document_id: int
    seq: int
    chain: str
    prev_chain: str | None


class CopyRow(TypedDict):
    """An independent copy of a version (table `independent_copy`)."""

    id: int
    version_id: int
    target: str
    url: str
    state: CopyState
    attempts: int
    stale: int
    next_attempt_at: str
    job_id: str | None
    submitted_at: str | None
    capture_url: str | None
    captured_at: str | None
    last_error: str | None
    created_at: str
    updated_at: str


class DueCopyRow(CopyRow):
    """`IndependentCopies.due`: a copy to work on, with its version's facts."""

    document_id: int
    seq: int
    kind: ChangeKind
    observed_at: str
    watch_id: str
    key: str


class Capture(TypedDict):
    """A copy made, as exports and alerts carry it."""

    target: str
    url: str | None
    captured_at: str | None
