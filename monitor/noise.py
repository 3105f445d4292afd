"""Noise control: quiet hours, digest windows and rate limits, without losing an alert.

Nothing here drops anything. A held alert stays *pending* in the outbox, untouched (its
attempts are not spent), and the delivery worker asks again on its next round; so a held
alert survives a restart, and the rules are re-evaluated from the clock and the outbox alone.
Muting is the one rule that ends a delivery, and it does so visibly (see `alerts.MUTED`).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from monitor.clock import iso, parse_iso
from monitor.config import WatchConfig, parse_quiet_hours


def parse_time(value: str) -> datetime:
    """An ISO timestamp as stored ('2026-11-25T16:56:28.480Z') -> aware datetime."""
    return parse_iso(value).astimezone(UTC)


def quiet_until(watch: WatchConfig, now: datetime, default_zone: str) -> datetime | None:
    """End of the watch's quiet hours if `now` falls inside them, else None."""
    if not watch.quiet_hours:
        return None
    start, end = parse_quiet_hours(watch.quiet_hours)
    local = now.astimezone(ZoneInfo(watch.timezone or default_zone))
    at = local.time().replace(tzinfo=None)
    if start < end:
        inside = start <= at < end
        end_day = local.date()
    else:  # across midnight, e.g. 22:00-07:00
        inside = at >= start or at < end
        end_day = local.date() + timedelta(days=1 if at >= start else 0)
    if not inside:
        return None
    return datetime.combine(end_day, end, tzinfo=local.tzinfo).astimezone(UTC)


def digest_until(watch: WatchConfig, first_observed_at: str, now: datetime) -> datetime | None:
    """End of the digest window opened by the first waiting alert, if still open."""
    if not watch.digest:
        return None
    closes = parse_time(first_observed_at) + timedelta(seconds=watch.digest)
    return closes if now < closes else None


def hold_reason(
    watch: WatchConfig | None, payload: dict[str, Any], now: datetime, default_zone: str
) -> str | None:
    """Why a due alert of this watch waits now (None: it may go, rate limits permitting)."""
    if watch is None:  # the watch left the config; its alerts still go out
        return None
    until = quiet_until(watch, now, default_zone)
    if until is not None:
        zone = watch.timezone or default_zone
        local = until.astimezone(ZoneInfo(zone))
        return f"quiet hours until {local:%Y-%m-%d %H:%M} {zone}"
    until = digest_until(watch, payload.get("observed_at") or iso(now), now)
    if until is not None:
        return f"digest window until {iso(until)}"
    return None


class RateLimiter:
    """At most `count` messages in any `period` seconds; the excess waits, in order."""

    def __init__(self, count: int, period: float, sent: Iterable[datetime] = ()) -> None:
        self.count = count
        self.period = timedelta(seconds=period)
        self._sent: deque[datetime] = deque(sorted(sent)[-count:], maxlen=count)

    def free_at(self, now: datetime) -> datetime | None:
        """When the next message may go; None when it may go now."""
        if len(self._sent) < self.count:
            return None
        opens = self._sent[0] + self.period
        return opens if opens > now else None

    def record(self, now: datetime) -> None:
        self._sent.append(now)
