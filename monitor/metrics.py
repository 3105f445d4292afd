"""Prometheus metrics of the daemon: what `/metrics` shows operators.

Problem reasons are free text; they are folded into a few stable categories so that the
`reason` label stays low-cardinality.
"""

from __future__ import annotations

import re
from functools import lru_cache

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry()

CHECKS = Counter(
    "monitor_checks", "Checks by outcome", ["outcome"], registry=REGISTRY
)  # exposed as monitor_checks_total
FAILURES = Counter(
    "monitor_check_failures", "Failed checks by reason", ["reason"], registry=REGISTRY
)
CHANGES = Counter("monitor_changes", "New versions by kind", ["kind"], registry=REGISTRY)
DELIVERIES = Counter(
    "monitor_alert_deliveries", "Alert delivery attempts by result", ["result"], registry=REGISTRY
)
OUTBOX = Gauge("monitor_outbox_depth", "Alert deliveries waiting to be sent", registry=REGISTRY)
LATENCY = Histogram(
    "monitor_check_seconds",
    "Duration of a check (fetch to commit)",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
    registry=REGISTRY,
)
WATCHES = Gauge("monitor_watches", "Watches scheduled", registry=REGISTRY)
STALLS = Counter(
    "monitor_watchdog_events", "Watchdog findings by kind", ["kind"], registry=REGISTRY
)

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


def reason_category(reason: str) -> str:
    for name, pattern in _REASONS:
        if pattern.search(reason):
            return name
    return "other"


# A label's child, looked up once: `labels()` checks and hashes its arguments on every call,
# and every check counts itself.
_checks_with = lru_cache(maxsize=None)(CHECKS.labels)


def observe_check(outcome: str, seconds: float, reason: str | None = None) -> None:
    _checks_with(outcome).inc()
    LATENCY.observe(seconds)
    if reason:
        FAILURES.labels(reason_category(reason)).inc()
