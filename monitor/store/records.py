"""What the store takes and gives back: plain dataclasses, free of any database type."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

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
    confirmation: str | None = None
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
