"""Independent copies: each new version of a watch with `save_to = ["wayback"]` is
submitted to the Internet Archive's Save Page Now (SPN2) API, and the capture it makes is
recorded beside the version as provenance a third party already trusts.

The API (as web.archive.org speaks it, and tests/test_wayback.py's stand-in):
`POST {endpoint}/save` with `Authorization: LOW access:secret`, `Accept: application/json`
and the form `url=…` answers `{"url", "job_id"}` (or 429 / "You have already reached the
limit of active sessions" when busy); `GET {endpoint}/save/status/{job_id}` answers
`{"status": "pending" | "success" | "error", "timestamp": "YYYYMMDDhhmmss",
"original_url", "status_ext", "message"}`. The copy is `{endpoint}/web/{timestamp}/{url}`.

Nothing here holds up a check: the queue (store/wayback.py) is filled from committed
versions by the daemon's own background loop, submissions are retried with backoff until
`[archive] wayback_attempts`, and a restart (or `kill -9`) resumes where the queue says.
`monitor check` runs one bounded round at its end; what is still running then is asked
about by the next run or the daemon.

What is accepted as a version's copy: SPN captures the page as it is when it gets there,
and may answer with a capture it already had. A capture older than the second in which
we first saw the version is a stale answer, not its copy: refused, and the URL
resubmitted with `if_not_archived_within` no longer than the version's age (any capture
SPN may then hand back is younger than the version) up to `wayback_stale_retries` times.
A capture made after the statement's next version was seen shows that one, not this:
refused too, and a version superseded before it was submitted is not submitted at all.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monitor import metrics
from monitor.clock import parse_iso
from monitor.config import ArchiveConfig, MonitorConfig
from monitor.redact import has_userinfo
from monitor.rounds import in_rounds
from monitor.store import Store, iso
from monitor.store.records import DueCopyRow

if TYPE_CHECKING:  # imported where a round runs: `monitor check` starts without it
    import httpx

logger = logging.getLogger(__name__)

TARGET = "wayback"
ACCESS_ENV = "MONITOR_WAYBACK_ACCESS_KEY"
SECRET_ENV = "MONITOR_WAYBACK_SECRET_KEY"
# Rows worked on per round; the rest wait for the next.
_ROUND_LIMIT = 100
# A job still pending after this long is given up and the URL submitted again.
_JOB_LIMIT = timedelta(minutes=10)
# The longest wait between two tries of a row.
_MAX_BACKOFF = 6 * 3600.0
# SPN2 errors that another try will not mend (status_ext of a failed job).
_PERMANENT = frozenset(
    {
        "error:bad-request",
        "error:blocked",
        "error:blocked-client-ip",
        "error:blocked-url",
        "error:filesize-limit",
        "error:ftp-access-denied",
        "error:invalid-url-syntax",
        "error:method-not-allowed",
        "error:no-access",
        "error:not-implemented",
        "error:user-session-limit",
    }
)
_BUSY = "limit of active sessions"

# The gauge of versions waiting (metrics.py makes it when metrics are first asked for).
metrics.want_copies_waiting()


@dataclass(frozen=True)
class Keys:
    access: str
    secret: str

    def header(self) -> str:
        return f"LOW {self.access}:{self.secret}"

    def hide(self, text: str) -> str:
        # Whatever an answer or an exception says, the keys never reach the log or the queue.
        for secret in (self.secret, self.access):
            if secret:
                text = text.replace(secret, "***")
        return text

    def __repr__(self) -> str:
        return "Keys(***)"


def keys_from(config: ArchiveConfig) -> Keys | None:
    """The SPN2 keys: the environment's, else `wayback_keys_file` ("access:secret")."""
    access, secret = os.environ.get(ACCESS_ENV), os.environ.get(SECRET_ENV)
    if access and secret:
        return Keys(access.strip(), secret.strip())
    if config.wayback_keys_file:
        text = config.wayback_keys_file.read_text(encoding="utf-8").strip()
        access, _, secret = text.partition(":")
        if access and secret:
            return Keys(access.strip(), secret.strip())
    return None


class Busy(Exception):
    """The API asks us to slow down (429, or too many sessions of ours at once)."""

    def __init__(self, message: str, retry_after: float | None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass
class RoundResult:
    queued: int = 0  # versions newly queued
    submitted: int = 0
    captured: int = 0
    retried: int = 0  # tries that failed and wait for the next
    failed: int = 0  # given up, with the reason
    errors: list[str] = field(default_factory=list)


def _from_wayback_time(stamp: str) -> datetime:
    return datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=UTC)


def _parse_iso(text: str) -> datetime:
    return parse_iso(text)


class Submitter:
    """Fills the queue from new versions and works it: submit, ask, accept or retry."""

    def __init__(
        self,
        store: Store,
        config: MonitorConfig | Callable[[], MonitorConfig],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.store = store
        # The daemon passes a getter: watches and settings change on reload.
        self._config = config if callable(config) else (lambda: config)
        self.clock = clock
        self._told_no_keys = False

    @property
    def archive(self) -> ArchiveConfig:
        return self._config().archive

    def _endpoint(self) -> str:
        return self.archive.wayback_endpoint.rstrip("/")

    def enqueue(self) -> int:
        watches = [w.id for w in self._config().watch if TARGET in w.save_to]
        if not watches:
            return 0
        since = iso(self.clock() - timedelta(seconds=self.archive.wayback_max_age))
        return self.store.copies.queue_new(watches, TARGET, since)

    async def round(self) -> RoundResult:
        """Queue what is new, then work on every due row (up to a limit)."""
        result = RoundResult(queued=self.enqueue())
        try:
            await self._work_due(result)
        finally:
            metrics.set_copies_waiting(self.store.due.copies_waiting())
        return result

    async def _work_due(self, result: RoundResult) -> None:
        rows = self.store.due.copies(iso(self.clock()), _ROUND_LIMIT)
        if not rows:
            return
        keys = keys_from(self.archive)
        if keys is None and not self._told_no_keys:
            logger.warning(
                "Save Page Now: %d versions wait for keys (%s and %s)",
                len(rows),
                ACCESS_ENV,
                SECRET_ENV,
            )
            self._told_no_keys = True
        import httpx  # here: a daemon that submits nothing never imports it (its start)

        async with httpx.AsyncClient(
            timeout=self.archive.wayback_timeout, follow_redirects=False
        ) as client:
            for row in rows:
                # Claimed for as long as a request may take, with room to spare.
                until = self.clock() + timedelta(seconds=2 * self.archive.wayback_timeout + 60)
                if not self.store.copies.claim(row, iso(until)):
                    continue
                try:
                    await self._work(client, keys, row, result)
                except Busy as busy:
                    if row["state"] == "submitted":  # its job runs on: ask again later
                        self._ask_later(row, str(busy), busy.retry_after)
                    else:
                        self._retry(row, str(busy), result, busy.retry_after, count=False)
                    break  # the rest wait with it; they are due again as they were

    async def _work(
        self, client: httpx.AsyncClient, keys: Keys | None, row: DueCopyRow, result: RoundResult
    ) -> None:
        if keys is None:
            self._retry(row, f"no keys: set {ACCESS_ENV} and {SECRET_ENV}", result, count=False)
            return
        if row["state"] == "queued":
            later = self.store.copies.next_version_seen(row["document_id"], row["seq"])
            if later is not None:
                self._fail(
                    row,
                    f"superseded: version {row['seq'] + 1} was seen at {later}, before this "
                    "one could be submitted",
                    result,
                )
                return
            if has_userinfo(row["url"]):  # the Archive would publish them
                self._fail(row, "not submitted: the URL carries credentials", result)
                return
            await self._submit(client, keys, row, result)
        else:
            await self._ask(client, keys, row, result)

    async def _submit(
        self, client: httpx.AsyncClient, keys: Keys, row: DueCopyRow, result: RoundResult
    ) -> None:
        import httpx

        form = {"url": row["url"], "skip_first_archive": "1"}
        if row["kind"] == "removed":  # the page's error answer is the evidence
            form["capture_all"] = "1"
        if row["stale"]:
            # Any capture SPN may hand back instead of making one is then younger than the
            # version (whole minutes, rounded down, as the API takes them; at least one, and
            # what that lets through is refused again by the check below).
            age = self.clock() - _parse_iso(row["observed_at"])
            form["if_not_archived_within"] = f"{max(1, int(age.total_seconds() // 60))}m"

        try:
            answer = await client.post(
                f"{self._endpoint()}/save",
                data=form,
                headers={"Authorization": keys.header(), "Accept": "application/json"},
            )
        except httpx.HTTPError as err:
            self._retry(row, keys.hide(f"submit: {type(err).__name__}: {err}"), result)
            return
        body = _json(answer)
        message = str(body.get("message") or "")
        if answer.status_code == 429 or _BUSY in message or _BUSY in answer.text[:2000]:
            raise Busy(
                keys.hide(f"busy: HTTP {answer.status_code} {message}".strip()),
                _retry_after(answer),
            )
        job_id = body.get("job_id")
        if answer.status_code != 200 or not job_id:
            ext = body.get("status_ext") or ""
            detail = keys.hide(f"submit: HTTP {answer.status_code} {ext} {message}".strip())
            if ext in _PERMANENT:
                self._fail(row, detail, result)
            else:
                self._retry(row, detail, result)
            return
        now = self.clock()
        self.store.copies.update(
            row["id"],
            state="submitted",
            job_id=str(job_id),
            submitted_at=iso(now),
            attempts=row["attempts"] + 1,
            next_attempt_at=iso(now + timedelta(seconds=self.archive.wayback_interval)),
            last_error=None,
        )
        result.submitted += 1

    async def _ask(
        self, client: httpx.AsyncClient, keys: Keys, row: DueCopyRow, result: RoundResult
    ) -> None:
        import httpx

        try:
            answer = await client.get(
                f"{self._endpoint()}/save/status/{row['job_id']}",
                headers={"Authorization": keys.header(), "Accept": "application/json"},
            )
        except httpx.HTTPError as err:
            # The job runs on at the Archive: ask again later, without a new submission.
            self._ask_later(row, keys.hide(f"status: {type(err).__name__}: {err}"))
            return
        if answer.status_code == 429:
            raise Busy(f"busy: HTTP 429 on status of job {row['job_id']}", _retry_after(answer))
        body = _json(answer)
        status = body.get("status")
        if answer.status_code != 200 or status not in ("pending", "success", "error"):
            self._resubmit(row, f"status: HTTP {answer.status_code} {status or ''}".strip(), result)
        elif status == "pending":
            started = _parse_iso(row["submitted_at"] or row["updated_at"])
            if self.clock() - started > _JOB_LIMIT:
                self._resubmit(row, f"job {row['job_id']} still pending after {_JOB_LIMIT}", result)
            else:
                self._ask_later(row, None)
        elif status == "error":
            ext = str(body.get("status_ext") or "error")
            detail = keys.hide(f"{ext}: {body.get('message') or ''}".strip(": "))
            if ext in _PERMANENT:
                self._fail(row, detail, result)
            else:
                self._resubmit(row, detail, result)
        else:
            self._success(row, body, result)

    def _success(self, row: DueCopyRow, body: dict[str, Any], result: RoundResult) -> None:
        stamp = str(body.get("timestamp") or "")
        try:
            captured = _from_wayback_time(stamp)
        except ValueError:
            self._resubmit(row, f"success without a usable timestamp ({stamp!r})", result)
            return
        original = str(body.get("original_url") or row["url"])
        capture_url = f"{self._endpoint()}/web/{stamp}/{original}"
        # Wayback times are whole seconds: one in the second we saw the version counts.
        seen = _parse_iso(row["observed_at"]).replace(microsecond=0)
        if captured < seen:
            reason = (
                f"stale answer: capture {capture_url} is older than the version "
                f"(first seen {row['observed_at']})"
            )
            if row["stale"] >= self.archive.wayback_stale_retries:
                self._fail(row, reason, result, stale=row["stale"] + 1)
            else:
                logger.info("Save Page Now: %s; submitting again", reason)
                self._retry(row, reason, result, stale=row["stale"] + 1, count=False)
            return
        later = self.store.copies.next_version_seen(row["document_id"], row["seq"])
        if later is not None and captured >= _parse_iso(later).replace(microsecond=0):
            self._fail(
                row,
                f"superseded: capture {capture_url} was made after version {row['seq'] + 1} "
                f"was seen ({later})",
                result,
            )
            return
        self.store.copies.update(
            row["id"],
            state="captured",
            capture_url=capture_url,
            captured_at=iso(captured),
            job_id=None,
            last_error=None,
        )
        result.captured += 1
        logger.info(
            "independent copy of %s %s #%d: %s",
            row["watch_id"],
            row["key"],
            row["seq"],
            capture_url,
        )

    # --- what happens to a row that did not succeed ---------------------------------------

    def _backoff(self, attempts: int) -> float:
        return min(_MAX_BACKOFF, self.archive.wayback_retry * 2 ** max(0, attempts - 1))

    def _retry(
        self,
        row: DueCopyRow,
        error: str,
        result: RoundResult,
        delay: float | None = None,
        count: bool = True,
        stale: int | None = None,
    ) -> None:
        """Back to the queue, to be submitted again after a pause; given up once
        `wayback_attempts` submissions have failed."""
        attempts = row["attempts"] + (1 if count and row["state"] == "queued" else 0)
        if count and attempts >= self.archive.wayback_attempts:
            self._fail(row, f"{error} (after {attempts} attempts)", result, attempts=attempts)
            return
        wait = delay if delay is not None else self._backoff(max(1, attempts))
        self.store.copies.update(
            row["id"],
            state="queued",
            job_id=None,
            attempts=attempts,
            stale=row["stale"] if stale is None else stale,
            next_attempt_at=iso(self.clock() + timedelta(seconds=wait)),
            last_error=error,
        )
        result.retried += 1
        result.errors.append(error)

    def _resubmit(self, row: DueCopyRow, error: str, result: RoundResult) -> None:
        # The submission that made the job was counted when it was made.
        if row["attempts"] >= self.archive.wayback_attempts:
            self._fail(row, f"{error} (after {row['attempts']} attempts)", result)
            return
        self._retry({**row, "state": "submitted"}, error, result, count=False)

    def _ask_later(self, row: DueCopyRow, error: str | None, delay: float | None = None) -> None:
        wait = delay or (self.archive.wayback_interval if error is None else self._backoff(1))
        self.store.copies.update(
            row["id"],
            next_attempt_at=iso(self.clock() + timedelta(seconds=wait)),
            last_error=error,
        )

    def _fail(
        self,
        row: DueCopyRow,
        reason: str,
        result: RoundResult,
        stale: int | None = None,
        attempts: int | None = None,
    ) -> None:
        self.store.copies.update(
            row["id"],
            state="failed",
            job_id=None,
            stale=row["stale"] if stale is None else stale,
            attempts=row["attempts"] if attempts is None else attempts,
            last_error=reason,
        )
        result.failed += 1
        result.errors.append(reason)
        logger.warning(
            "no independent copy of %s %s #%d: %s", row["watch_id"], row["key"], row["seq"], reason
        )

    async def run(self) -> None:
        """The daemon's loop: a round every `wayback_interval` until cancelled."""
        await in_rounds(
            self.round, lambda: self.archive.wayback_interval, logger, "Save Page Now submission"
        )


def _json(answer: httpx.Response) -> dict[str, Any]:
    try:
        body = answer.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _retry_after(answer: httpx.Response) -> float | None:
    value = answer.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


async def submit_once(store: Store, config: MonitorConfig) -> RoundResult | None:
    """`monitor check`'s round at its end, bounded by twice `wayback_timeout` (a request,
    and the round's own work); never raises (the checks are committed, and what is left
    waits in the queue)."""
    try:
        return await asyncio.wait_for(
            Submitter(store, config).round(), 2 * config.archive.wayback_timeout
        )
    except Exception as err:
        logger.warning("Save Page Now: left queued for later (%s)", type(err).__name__)
        return None


def add_copies(store: Store, payloads: list[dict[str, Any]]) -> None:
    """Give alerts the copies already made of their versions (an alert never waits for
    one: what is not captured by the time it goes is not named)."""
    for payload in payloads:
        key, seq = payload.get("key"), payload.get("version")
        if not key or not isinstance(seq, int) or payload.get("independent_copies"):
            continue
        try:
            copies = store.copies.captured_for(str(payload.get("watch")), str(key), seq)
        except Exception:  # the alert goes without them
            logger.exception("independent copies of an alert not read")
            continue
        if copies:
            payload["independent_copies"] = copies
