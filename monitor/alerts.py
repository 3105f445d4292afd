"""Alert stage: what an alert says, and delivering it from the outbox.

Alerts are written to the store in the same transaction as the version that caused them
(see `Store.commit_check`); `Deliverer` then sends each pending delivery, retrying with
exponential backoff, and dead-letters it after `max_attempts` so that a receiver that is
down for an hour, or a daemon restart, loses nothing. Dead letters stay in the outbox, are
listed by `monitor alerts --failed` and can be sent again (`monitor alerts resend ID`).

Noise control (`monitor.noise`) decides *when* a pending delivery goes: quiet hours and
digest windows hold it, a channel's rate limit queues it, a muted watch records it unsent.
A delivery crashed between sending and recording the send is sent again on restart (at
least once); receivers get a stable delivery id to drop such a repeat.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote

from monitor.channels import Channel, ChannelError
from monitor.channels.message import WHOLE_STATEMENT
from monitor.config import AlertsConfig, ChannelConfig, MonitorConfig, WatchConfig
from monitor.diff import Change, DiffResult, summarize
from monitor.languages import LanguageState, divergence
from monitor.noise import RateLimiter, hold_reason, iso, parse_time
from monitor.permalinks import absolute, statement_path, version_path
from monitor.redact import redact_deep, redact_url
from monitor.store import Delivery, Store
from monitor.wayback import add_copies

logger = logging.getLogger("monitor.alerts")

_BACKOFF_MAX = 6 * 3600.0
# The reason recorded on the deliveries of a muted watch (status dead, never attempted).
MUTED = "muted: recorded, not sent"
# Held deliveries stay due, so each round reads them again; read enough that a night of
# held alerts cannot hide the ones that may go now.
_SCAN_LIMIT = 10_000
# Sent deliveries read at start to restore each channel's rate-limit window.
_RATE_HISTORY = 5_000
# A claimed delivery stays with its sender for twice the channel's timeout plus this.
_CLAIM_SLACK = 60.0


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
    since: int | None = None,
    paragraphs: Sequence[str] = (),
    archived: int | None = None,
) -> dict[str, Any]:
    """The alert as every channel receives it (also the webhook's JSON schema). `version`
    is the statement's version number, `since` the one it is compared with when that is
    not the one just before (versions that did not hold lie between). A new or removed
    statement carries its text (`paragraphs`: the new text, or the last archived one) and
    `archived`, the number of the version that holds it, so the alert stands alone."""
    changes = diff.changes if diff else []
    diff_url = None
    if public_url and key and version:
        diff_url = (
            f"{public_url.rstrip('/')}/watch/{quote(watch.id)}/diff"
            f"?key={quote(key, safe='')}&b={version}"
        )
        if since:
            diff_url += f"&a={since}"
    return {
        "watch": watch.id,
        "watch_name": watch.display_name,
        "kind": kind,
        "key": key,
        "title": title,
        "language": language,
        # The statement's URL as people may see it: without credentials (kept for fetching).
        "url": redact_url(url),
        "summary": summary if summary is not None else (diff.summary if diff else ""),
        "score": diff.score if diff else 1.0,
        "changes": [c.as_json() for c in changes],
        "removed": diff.removed if diff else [],
        "added": diff.added if diff else [],
        "diff_url": diff_url,
        "version": version,
        "observed_at": observed_at,
        **_text_fields(watch.id, key, paragraphs, archived, public_url),
    }


# Characters of a statement's text an alert carries (the outbox keeps a copy per channel);
# each channel shows what fits its own limit, and the archived copy has the rest.
TEXT_BUDGET = 8000


def watch_alert(
    kind: str, watch: WatchConfig, at: str, summary: str
) -> tuple[dict[str, Any], list[str]]:
    """An alert about the watch itself (failing, recovered, a visual change), not about one
    of its statements; with the channels it goes to."""
    payload = build_alert(
        kind,
        watch,
        key=None,
        title=None,
        url=watch.url,
        language=watch.language,
        observed_at=at,
        summary=summary,
    )
    return payload, watch.channels


def _text_fields(
    watch_id: str,
    key: str | None,
    paragraphs: Sequence[str],
    archived: int | None,
    public_url: str | None,
) -> dict[str, Any]:
    carried: list[str] = []
    left = TEXT_BUDGET
    for paragraph in paragraphs:
        if left <= 0:
            break
        carried.append(paragraph if len(paragraph) <= left else paragraph[: left - 1] + "…")
        left -= len(paragraph)
    path = version_path(watch_id, key, archived) if key and archived else None
    return {
        "paragraphs": carried,
        "paragraph_count": len(paragraphs),
        "archived_version": archived if path else None,
        "archived_url": absolute(public_url, path) if path else None,
    }


def language_fields(
    store: Store,
    watch_id: str,
    kind: str,
    *,
    key: str,
    language: str | None,
    url: str,
    observed_at: str,
    public_url: str | None,
    zone: str = "UTC",
    held: Mapping[str, bytes] | None = None,
) -> dict[str, Any]:
    """The statement's other language versions as an alert names them (`translations`:
    each one's watch, key, language, URL, latest kind and since when, and its page in our
    UI) and how they stand against this change (`divergence`: "edited in Russian; English
    and Kazakh unchanged since 3 Dec"); empty for a statement in one language. `held`:
    response bodies the caller holds, by SHA-256 (not read again from the archive)."""
    # Here: an alert reads the archive through SQLAlchemy, a run that makes none need not.
    from monitor.store.translations import language_versions_of

    versions = language_versions_of(store, watch_id, key, language, url, held)
    others = [v for v in versions if (v.watch_id, v.key) != (watch_id, key)]
    translations: list[dict[str, Any]] = [
        {
            "watch": v.watch_id,
            "key": v.key,
            "language": v.language,
            "url": redact_url(v.url),
            "status": v.last_kind,
            "since": v.last_observed_at,
            "statement_url": absolute(public_url, statement_path(v.watch_id, v.key)),
        }
        for v in others
    ]
    # Translations a listing found whose watches have not been checked yet (they are
    # named, with no state to compare).
    watches, languages = {v.watch_id for v in versions}, {v.language for v in versions}
    for row in store.translations(watch_id):
        if row["watch_id"] not in watches and row["language"] not in languages:
            translations.append(
                {"watch": row["watch_id"], "language": row["language"], "url": row["url"]}
            )
    if not translations:
        return {}
    states = [LanguageState(language, kind, observed_at)]
    states += [LanguageState(v.language, v.last_kind, v.last_observed_at) for v in others]
    return {"translations": translations, "divergence": divergence(states, observed_at, zone=zone)}


def build_digest(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Several alerts of one watch as one message (kind "digest", each alert in `alerts`).

    Changes are listed together, each named with its statement, so the text and HTML
    templates and the length limit work as for a single alert.
    """
    first, last = payloads[0], payloads[-1]
    kinds = Counter(p["kind"] for p in payloads)
    languages = {p.get("language") for p in payloads}
    changes = []
    for payload in payloads:
        label = payload.get("title") or payload.get("key") or payload["kind"]
        if payload["kind"] in WHOLE_STATEMENT and payload.get("title"):
            continue  # its one "change" is its title, which its entry shows
        for change in payload.get("changes", []):
            changes.append({**change, "where": f"“{label}” — {change.get('where', '')}"})
    return {
        "watch": first["watch"],
        "watch_name": first.get("watch_name"),
        "kind": "digest",
        "key": None,
        "title": None,
        "language": languages.pop() if len(languages) == 1 else None,
        "url": None,
        "summary": f"{len(payloads)} alerts: "
        + ", ".join(f"{count} {kind}" for kind, count in kinds.most_common()),
        "score": max(float(p.get("score") or 0) for p in payloads),
        "changes": changes,
        "removed": [fragment for p in payloads for fragment in p.get("removed", [])],
        "added": [fragment for p in payloads for fragment in p.get("added", [])],
        "diff_url": None,
        "version": None,
        "observed_at": last.get("observed_at"),
        "alerts": payloads,
    }


class Deliverer:
    """Sends due deliveries from the outbox through the configured channels."""

    def __init__(
        self,
        store: Store,
        channels: dict[str, ChannelConfig],
        config: AlertsConfig,
        watches: Iterable[WatchConfig] = (),
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.channels = {name: Channel.create(name, cfg) for name, cfg in channels.items()}
        # Noise rules are per watch; alerts of a watch no longer configured go out plainly.
        self.watches = {watch.id: watch for watch in watches}
        self.clock = clock or (lambda: datetime.now(UTC))
        self.limiters = self._rate_limiters(channels)
        # The scheduler and finished checks both trigger delivery; never send one twice.
        self._lock = asyncio.Lock()

    def _rate_limiters(self, channels: dict[str, ChannelConfig]) -> dict[str, RateLimiter]:
        rates = {name: rate for name, cfg in channels.items() if (rate := cfg.rate())}
        if not rates:
            return {}
        # Restart must not reset the window: count what the outbox says was sent lately.
        history: dict[str, list[datetime]] = {name: [] for name in rates}
        for row in self.store.deliveries(status="sent", limit=_RATE_HISTORY):
            if row["channel"] in history and row["sent_at"]:
                history[row["channel"]].append(parse_time(row["sent_at"]))
        return {
            name: RateLimiter(count, period, history[name])
            for name, (count, period) in rates.items()
        }

    @classmethod
    def from_config(cls, store: Store, config: MonitorConfig) -> Deliverer:
        return cls(store, config.channels, config.alerts, config.watch)

    async def deliver_due(self) -> int:
        """Attempt every delivery whose time has come. Returns how many were sent."""
        async with self._lock:
            return await self._deliver_due()

    async def _deliver_due(self) -> int:
        now = self.clock()
        sent = 0
        for channel, batch in self._batches(self.store.due_deliveries(iso(now), _SCAN_LIMIT), now):
            limiter = self.limiters.get(channel.name)
            if limiter is not None and limiter.free_at(now) is not None:
                continue  # over the channel's rate: stays queued, in order, for a later round
            # Claim before sending: another daemon (or `monitor check`) on the same outbox
            # may have picked these up; what it holds is skipped, not sent twice.
            batch = self._claim(batch, channel, now)
            if not batch:
                continue
            add_copies(self.store, [d.payload for d in batch])  # those made by now
            payload = (
                batch[0].payload if len(batch) == 1 else build_digest([d.payload for d in batch])
            )
            error = await _attempt(channel, payload, ",".join(str(d.id) for d in batch))
            for delivery in batch:
                if error is None:
                    self.store.mark_sent(delivery.id)
                else:
                    self._failed(delivery.id, delivery.attempts, error)
            if error is None:
                sent += len(batch)
                if limiter is not None:
                    limiter.record(now)
        return sent

    def _claim(self, batch: list[Delivery], channel: Channel, now: datetime) -> list[Delivery]:
        # Held for as long as a send may take; a sender that dies leaves it due again then.
        until = now + timedelta(seconds=channel.config.timeout * 2 + _CLAIM_SLACK)
        claimed = self.store.claim_deliveries([d.id for d in batch], iso(now), iso(until))
        return [d for d in batch if d.id in claimed]

    def _batches(self, due: list[Delivery], now: datetime) -> list[tuple[Channel, list[Delivery]]]:
        """The messages that may go now: one per delivery, or one per digest of a watch."""
        groups: dict[tuple[str, str | int], list[Delivery]] = {}
        for delivery in due:
            if delivery.channel not in self.channels:
                error = f"channel {delivery.channel!r} is no longer configured"
                self.store.mark_failed(delivery.id, error, None)
                continue
            watch = self.watches.get(delivery.payload.get("watch", ""))
            if watch is not None and watch.muted:
                self.store.mark_failed(delivery.id, MUTED, None)
                continue
            digest = watch is not None and watch.digest > 0
            key = (delivery.channel, watch.id if watch is not None and digest else delivery.id)
            groups.setdefault(key, []).append(delivery)
        batches = []
        for (name, _), group in groups.items():
            # Oldest first (the outbox's order), so a digest's window opens with its first alert.
            watch = self.watches.get(group[0].payload.get("watch", ""))
            if hold_reason(watch, group[0].payload, now, self.config.timezone) is None:
                batches.append((self.channels[name], group))
        return batches

    def _failed(self, delivery_id: int, attempts: int, error: str) -> None:
        attempts += 1
        if attempts >= self.config.max_attempts:
            logger.error("delivery %s dead after %s attempts: %s", delivery_id, attempts, error)
            self.store.mark_failed(delivery_id, error, None)
            return
        delay = min(self.config.retry_base * 2 ** (attempts - 1), _BACKOFF_MAX)
        logger.warning(
            "delivery %s failed (attempt %s), retry in %.0fs: %s",
            delivery_id,
            attempts,
            delay,
            error,
        )
        self.store.mark_failed(delivery_id, error, iso(self.clock() + timedelta(seconds=delay)))

    async def resend(self, delivery_id: int) -> None:
        """Send a dead-lettered delivery now, past any hold: a person asked for it.

        Sent directly rather than re-queued, so a running daemon cannot send it a second
        time. Raises LookupError if there is no such dead letter, ChannelError if it fails
        again (it then stays dead, with the new error).
        """
        rows = self.store.deliveries(status="dead", limit=_SCAN_LIMIT)
        row = next((r for r in rows if r["id"] == delivery_id), None)
        if row is None:
            raise LookupError(f"no dead-lettered delivery {delivery_id} (see `monitor alerts`)")
        channel = self.channels.get(row["channel"])
        if channel is None:
            raise LookupError(
                f"delivery {delivery_id}: channel {row['channel']!r} is not configured"
            )
        payload = json.loads(row["payload"])
        add_copies(self.store, [payload])
        error = await _attempt(channel, payload, str(delivery_id))
        if error is not None:
            self.store.mark_failed(delivery_id, error, None)
            raise ChannelError(error)
        self.store.mark_sent(delivery_id)

    def outbox(self, failed: bool = False, limit: int = 50) -> list[OutboxEntry]:
        """Recent deliveries, newest first, each with what became of it and why."""
        rows = self.store.deliveries(status="dead" if failed else None, limit=limit)
        entries = [self._entry(row, self.clock()) for row in rows]
        return [e for e in entries if e.status == "dead"] if failed else entries

    def _entry(self, row: Any, now: datetime) -> OutboxEntry:
        payload = json.loads(row["payload"])
        status, detail = row["status"], row["last_error"] or ""
        if status == "sent":
            detail = f"sent {row['sent_at']}"
        elif status == "dead" and detail == MUTED:
            status = "muted"
        elif status == "pending":
            watch = self.watches.get(row["watch_id"])
            limiter = self.limiters.get(row["channel"])
            reason = hold_reason(watch, payload, now, self.config.timezone)
            if reason is None and limiter is not None and (free := limiter.free_at(now)):
                rate = self.channels[row["channel"]].config.rate_limit
                reason = f"rate limit {rate} until {iso(free)}"
            if reason is not None:
                status, detail = "held", reason
            elif row["attempts"]:
                status, detail = "retrying", f"next at {row['next_attempt_at']}: {detail}"
        return OutboxEntry(
            id=row["id"],
            channel=row["channel"],
            watch=row["watch_id"],
            kind=row["kind"],
            created_at=row["created_at"],
            title=payload.get("title") or payload.get("summary") or "",
            status=status,
            attempts=row["attempts"],
            detail=detail,
        )


# A delivery's state in the outbox.
DeliveryStatus = Literal["pending", "held", "retrying", "sent", "dead", "muted"]


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    channel: str
    watch: str
    kind: str
    created_at: str
    title: str
    status: DeliveryStatus
    attempts: int
    detail: str


async def _attempt(
    channel: Channel, payload: dict[str, Any], delivery_id: str | None
) -> str | None:
    """Send one message; the error as text, or None when it went out."""
    # Alerts recorded before URLs were redacted at build time, and failure reasons that
    # quote a URL, are redacted on the way out.
    shown = redact_deep(payload)
    try:
        await channel.render_ahead(shown)  # off the event loop
        await channel.send(shown, delivery_id=delivery_id)
    except ChannelError as err:
        return str(err)
    except Exception as err:  # a channel bug must not kill the worker
        return f"{type(err).__name__}: {err}"
    finally:
        channel.forget(shown)
    return None


def sample_alert(public_url: str | None = None) -> dict[str, Any]:
    """A realistic alert for `monitor alerts test`, marked `"test": true`."""
    watch = WatchConfig(
        id="sample",
        name="monitor alerts test (sample alert)",
        url="https://www.gov.kz/memleket/entities/mfa/press/news?lang=en",
        language="en",
    )
    before = (
        "Kazakhstan expresses its solidarity with the fraternal Tajik people and stands ready "
        "to provide further assistance if necessary."
    )
    after = before.replace(
        "stands ready to provide further assistance if necessary",
        "will consider further assistance upon a formal request",
    )
    change = Change(
        "body",
        "paragraph 4",
        before,
        after,
        ("stands ready to provide further assistance if necessary",),
        ("will consider further assistance upon a formal request",),
    )
    diff = DiffResult([change], 0.63, summarize(DiffResult([change])))
    payload = build_alert(
        "edited",
        watch,
        key="en/1048252",
        title="Kazakhstan sends humanitarian aid to the Republic of Tajikistan",
        url="https://www.gov.kz/memleket/entities/mfa/press/news/details/1048252?lang=en",
        language="en",
        observed_at=iso(datetime.now(UTC)),
        diff=diff,
        public_url=public_url,
        version=2,
    )
    return {**payload, "test": True}


async def send_test(name: str, config: ChannelConfig, public_url: str | None = None) -> list[str]:
    """Send the sample alert through one channel, as the daemon would.

    Returns what is wrong with the channel's own templates (the sample then went out with the
    default one, as a real alert would); raises ChannelError when sending failed.
    """
    channel = Channel.create(name, config)
    payload = sample_alert(public_url)
    problems = channel.template_problems(payload)
    error = await _attempt(channel, payload, None)
    if error is not None:
        raise ChannelError(error)
    return problems
