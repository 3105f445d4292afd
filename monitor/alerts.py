"""Alert stage: what an alert says, and delivering it from the outbox.

Alerts are written to the store in the same transaction as the version that caused them
(see `Store.commit_check`); `Deliverer` then sends each pending delivery, retrying with
exponential backoff, and dead-letters it after `max_attempts` so that a receiver that is
down for an hour, or a daemon restart, loses nothing.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from monitor.channels import Channel, ChannelError
from monitor.config import AlertsConfig, ChannelConfig, WatchConfig
from monitor.diff import DiffResult
from monitor.store import Store, now_iso

logger = logging.getLogger("monitor.alerts")

_BACKOFF_MAX = 6 * 3600.0


def build_alert(
    kind: str,
    watch: WatchConfig,
    *,
    key: str | None,
    title: str | None,
    url: str | None,
    language: str | None,
    observed_at: str,
    diff: DiffResult | None = None,
    summary: str | None = None,
    public_url: str | None = None,
    version: int | None = None,
) -> dict[str, Any]:
    """The alert as every channel receives it (also the webhook's JSON schema)."""
    changes = diff.changes if diff else []
    diff_url = None
    if public_url and key and version:
        diff_url = (
            f"{public_url.rstrip('/')}/watch/{quote(watch.id)}/diff"
            f"?key={quote(key, safe='')}&b={version}"
        )
    return {
        "watch": watch.id,
        "watch_name": watch.display_name,
        "kind": kind,
        "key": key,
        "title": title,
        "language": language,
        "url": url,
        "summary": summary if summary is not None else (diff.summary if diff else ""),
        "score": diff.score if diff else 1.0,
        "changes": [
            {
                "field": c.field,
                "where": c.where,
                "before": c.before,
                "after": c.after,
                "removed": list(c.removed),
                "added": list(c.added),
            }
            for c in changes
        ],
        "removed": diff.removed if diff else [],
        "added": diff.added if diff else [],
        "diff_url": diff_url,
        "version": version,
        "observed_at": observed_at,
    }


class Deliverer:
    """Sends due deliveries from the outbox through the configured channels."""

    def __init__(
        self, store: Store, channels: dict[str, ChannelConfig], config: AlertsConfig
    ) -> None:
        self.store = store
        self.config = config
        self.channels = {name: Channel.create(name, cfg) for name, cfg in channels.items()}
        # The scheduler and finished checks both trigger delivery; never send one twice.
        self._lock = asyncio.Lock()

    async def deliver_due(self) -> int:
        """Attempt every delivery whose time has come. Returns how many were sent."""
        async with self._lock:
            return await self._deliver_due()

    async def _deliver_due(self) -> int:
        sent = 0
        for delivery in self.store.due_deliveries(now_iso()):
            channel = self.channels.get(delivery.channel)
            if channel is None:
                self.store.mark_failed(
                    delivery.id, f"channel {delivery.channel!r} is no longer configured", None
                )
                continue
            try:
                await channel.send(delivery.payload)
            except ChannelError as err:
                self._failed(delivery.id, delivery.attempts, str(err))
            except Exception as err:  # a channel bug must not kill the worker
                self._failed(delivery.id, delivery.attempts, f"{type(err).__name__}: {err}")
            else:
                self.store.mark_sent(delivery.id)
                sent += 1
        return sent

    def _failed(self, delivery_id: int, attempts: int, error: str) -> None:
        attempts += 1
        if attempts >= self.config.max_attempts:
            logger.error("delivery %s dead after %s attempts: %s", delivery_id, attempts, error)
            self.store.mark_failed(delivery_id, error, None)
            return
        delay = min(self.config.retry_base * 2 ** (attempts - 1), _BACKOFF_MAX)
        retry_at = datetime.now(UTC) + timedelta(seconds=delay)
        logger.warning(
            "delivery %s failed (attempt %s), retry in %.0fs: %s",
            delivery_id,
            attempts,
            delay,
            error,
        )
        self.store.mark_failed(
            delivery_id, error, retry_at.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
        )
