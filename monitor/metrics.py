"""Prometheus metrics of the daemon: what `/metrics` shows operators.

Problem reasons are free text; they are folded into a few stable categories so that the
`reason` label stays low-cardinality.

The metrics are made (and prometheus_client imported) when something first asks for one of
them: the web application's `/metrics`, the daemon's start (it sets `WATCHES`). Until then
a process that exports nothing — `monitor check` — keeps what `observe_check`,
`count_change` and `set_copies_waiting` are told in a few plain counters (prometheus_client's
import was 2 % of that command's start-up over unchanged pages, 63 M instructions by
callgrind, and its locked counters 2 % of an unchanged check's instructions; a first sweep,
every page a new version, made them at its first page), and the metrics, once made, start
from them: what they show is the same either way.
"""

from __future__ import annotations

import re
import threading
from collections import Counter as Tally
from functools import lru_cache
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    REGISTRY: CollectorRegistry
    CHECKS: Counter  # exposed as monitor_checks_total
    FAILURES: Counter
    CHANGES: Counter
    DELIVERIES: Counter
    OUTBOX: Gauge
    LATENCY: Histogram
    WATCHES: Gauge
    STALLS: Counter
    COPIES_WAITING: Gauge

_REASONS = (
    ("robots", re.compile(r"robots\.txt")),
    ("refused", re.compile(r"^refused|non-public address")),
    ("timeout", re.compile(r"timeout")),
    ("connection", re.compile(r"connection failed|no response")),
    ("challenge", re.compile(r"captcha|challenge")),
    ("maintenance", re.compile(r"maintenance")),
    ("too_large", re.compile(r"max_bytes")),
    ("redirect", re.compile(r"redirect")),
    ("http_5xx", re.compile(r"HTTP 5\d\d")),
    ("http_4xx", re.compile(r"HTTP 4\d\d")),
    ("not_json", re.compile(r"not JSON|JSON")),
    ("empty", re.compile(r"empty")),
)

# What was observed before the metrics were made: checks by outcome, failures by reason
# category, each check's seconds (the histogram's buckets and sum come from them), and the
# copies waiting. Past this many checks' seconds the metrics are made, so a long run that
# exports nothing holds no more than this.
_checks: Tally[str] = Tally()
_failures: Tally[str] = Tally()
_changes: Tally[str] = Tally()
_seconds: list[float] = []
_copies_waiting: list[float] = []
_copies_wanted = False
_KEPT = 20_000

_made: dict[str, Any] = {}
_making = threading.Lock()


def _make() -> dict[str, Any]:
    """The metrics, made once, with what was observed before. Under a lock: the daemon's web
    thread and its event loop may both ask first, and a second registry would leave one of
    them counting into metrics nobody exports."""
    if _made:
        return _made
    with _making:
        return _made or _make_now()


def _make_now() -> dict[str, Any]:
    from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

    registry = CollectorRegistry()
    made: dict[str, Any] = {
        "REGISTRY": registry,
        "CHECKS": Counter("monitor_checks", "Checks by outcome", ["outcome"], registry=registry),
        "FAILURES": Counter(
            "monitor_check_failures", "Failed checks by reason", ["reason"], registry=registry
        ),
        "CHANGES": Counter("monitor_changes", "New versions by kind", ["kind"], registry=registry),
        "DELIVERIES": Counter(
            "monitor_alert_deliveries",
            "Alert delivery attempts by result",
            ["result"],
            registry=registry,
        ),
        "OUTBOX": Gauge(
            "monitor_outbox_depth", "Alert deliveries waiting to be sent", registry=registry
        ),
        "LATENCY": Histogram(
            "monitor_check_seconds",
            "Duration of a check (fetch to commit)",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
            registry=registry,
        ),
        "WATCHES": Gauge("monitor_watches", "Watches scheduled", registry=registry),
        "STALLS": Counter(
            "monitor_watchdog_events", "Watchdog findings by kind", ["kind"], registry=registry
        ),
    }
    if _copies_wanted:
        made["COPIES_WAITING"] = _copies_gauge(registry)
    for outcome, count in _checks.items():
        made["CHECKS"].labels(outcome).inc(count)
    for category, count in _failures.items():
        made["FAILURES"].labels(category).inc(count)
    for kind, count in _changes.items():
        made["CHANGES"].labels(kind).inc(count)
    for seconds in _seconds:
        made["LATENCY"].observe(seconds)
    if _copies_waiting:
        made["COPIES_WAITING"].set(_copies_waiting[-1])
    _checks.clear()
    _failures.clear()
    _changes.clear()
    _seconds.clear()
    _copies_waiting.clear()
    # A label's child, looked up once: `labels()` checks and hashes its arguments on every
    # call, and every check counts itself.
    made["checks_with"] = lru_cache(maxsize=None)(made["CHECKS"].labels)
    made["changes_with"] = lru_cache(maxsize=None)(made["CHANGES"].labels)
    _made.update(made)
    globals().update((name, value) for name, value in made.items() if name.isupper())
    return _made


def __getattr__(name: str) -> Any:
    """`REGISTRY`, `CHECKS`, … (PEP 562): made on first use."""
    if not name.isupper():
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    made = _make()
    if name not in made:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return made[name]


def reason_category(reason: str) -> str:
    for name, pattern in _REASONS:
        if pattern.search(reason):
            return name
    return "other"


def observe_check(outcome: str, seconds: float, reason: str | None = None) -> None:
    if not _made:
        if len(_seconds) < _KEPT:
            _checks[outcome] += 1
            _seconds.append(seconds)
            if reason:
                _failures[reason_category(reason)] += 1
            return
        _make()
    _made["checks_with"](outcome).inc()
    _made["LATENCY"].observe(seconds)
    if reason:
        _made["FAILURES"].labels(reason_category(reason)).inc()


def count_change(kind: str) -> None:
    """A new version of this kind (`CHANGES`), counted in a plain tally until the metrics
    are made (a kind is one of a few words: the tally stays small)."""
    if _made:
        _made["changes_with"](kind).inc()
    else:
        _changes[kind] += 1


def want_copies_waiting() -> None:
    """The gauge of versions waiting for their Save Page Now capture is shown from now on
    (wayback.py, when imported: a process that never submits shows none)."""
    global _copies_wanted
    if not _copies_wanted:
        _copies_wanted = True
        if _made:
            _made["COPIES_WAITING"] = _copies_gauge(_made["REGISTRY"])
            globals()["COPIES_WAITING"] = _made["COPIES_WAITING"]


def set_copies_waiting(count: int) -> None:
    """Versions waiting for their Save Page Now capture (wayback.py)."""
    if _made:
        _made["COPIES_WAITING"].set(count)
    else:
        _copies_waiting[:] = [count]


def _copies_gauge(registry: Any) -> Any:
    from prometheus_client import Gauge

    return Gauge(
        "monitor_independent_copies_waiting",
        "Versions waiting for their Save Page Now capture (queued or submitted)",
        registry=registry,
    )
