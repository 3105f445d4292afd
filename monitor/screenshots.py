"""Screenshots and visual changes of watches with `screenshot = true`.

After a check has committed its versions (the text archive never waits on a browser), the
watch's page is shot full-page in headless Chromium (monitor/browser.py: pictures loaded,
every connection through the SSRF guard's proxy) and the PNG is stored content-addressed,
linked to the versions just archived. A watch with `alert_visual = true` is shot at every
check: the PNG is compared with the watch's last stored one (monitor/visualdiff.py, in a
worker like every diff of what a site sent) and, when the changed regions cover at least
`visual_threshold` of the page, stored and alerted once — its alert says how much changed
and links to the visual diff. Smaller differences (a clock, antialiasing) are neither
stored nor alerted: the next look is compared with the same stored screenshot, so a change
that creeps in by small steps still alerts once it adds up.

A screenshot that cannot be taken (a page that never settles, a browser that crashes or is
missing) is a problem of the watch's screenshots, recorded and logged once per run of the
same kind of failure (`_kind`, `store.screenshots.record_problem`); the check and its text
versions stand.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from typing import Any
from urllib.parse import quote

from monitor.alerts import watch_alert
from monitor.browser import BrowserEngine
from monitor.config import WatchConfig
from monitor.isolate import Work, WorkFailed
from monitor.store import NewVersion, Store
from monitor.store.records import NewScreenshot, ScreenshotRow

logger = logging.getLogger("monitor.screenshots")

# A screenshot gets this many fetch timeouts in all (loading the page, then shooting it).
_TIMEOUTS_PER_SHOT = 3


class Screenshotter:
    def __init__(self, store: Store, browser: BrowserEngine | None, work: Work) -> None:
        self.store = store
        self.browser = browser
        self.work = work

    @staticmethod
    def wanted(watch: WatchConfig, version_ids: list[int]) -> bool:
        """Whether this check takes a screenshot: new versions of a watch that keeps
        screenshots, or any check of one that alerts on visual change."""
        return watch.screenshot and (bool(version_ids) or watch.alert_visual)

    async def after_check(
        self,
        watch: WatchConfig,
        at: str,
        versions: list[NewVersion],
        version_ids: list[int],
        public_url: str | None,
    ) -> int:
        """Shoot the watch's page after a committed check; returns the alerts raised.
        Never raises (but for cancellation): a failure is the watch's screenshot problem."""
        if not self.wanted(watch, version_ids):
            return 0
        try:
            return await self._shoot(watch, at, versions, version_ids, public_url)
        except asyncio.CancelledError:
            raise
        except Exception as err:
            self._failed(watch, at, _reason(err))
            return 0

    async def _shoot(
        self,
        watch: WatchConfig,
        at: str,
        versions: list[NewVersion],
        version_ids: list[int],
        public_url: str | None,
    ) -> int:
        from monitor.visualdiff import size_of

        if self.browser is None:
            raise RuntimeError("no browser engine in this process")
        limit = self.browser.config.timeout * _TIMEOUTS_PER_SHOT
        shot = await asyncio.wait_for(self.browser.screenshot(watch.url), limit)
        width, height = size_of(shot.png)
        screenshots = self.store.screenshots
        last = screenshots.last_row(watch.id)
        # Its problem was told, so is its end; and this screenshot is kept, closing the run
        # of problem rows.
        recovering = last is not None and last["sha256"] is None
        if recovering:
            logger.info("%s: screenshots work again", watch.id)
        previous = screenshots.last(watch.id)
        same = previous is not None and previous["sha256"] == hashlib.sha256(shot.png).hexdigest()
        if previous is not None and same and not recovering:
            screenshots.link(previous["id"], version_ids)  # the page looks exactly the same
            return 0
        new = NewScreenshot(watch.id, at, shot.url, shot.png, width, height)
        alerting = False
        if previous is not None:
            compared = await self._compared(watch, previous, new, versions, version_ids)
            if compared is None and not recovering:
                return 0  # below the threshold: nothing worth keeping
            alerting = bool(compared)
        alert = None
        if alerting:
            changed, regions = new.changed or 0.0, len(new.regions)

            def alert(shot_id: int) -> tuple[dict[str, Any], list[str]]:
                return _visual_alert(watch, at, shot_id, new, changed, regions, public_url)

        screenshots.record(new, version_ids, alert)
        if alerting:
            logger.info("%s visual change: %.1f%% of the page", watch.id, 100 * (new.changed or 0))
        return 1 if alerting else 0

    async def _compared(
        self,
        watch: WatchConfig,
        previous: ScreenshotRow,
        new: NewScreenshot,
        versions: list[NewVersion],
        version_ids: list[int],
    ) -> bool | None:
        """`new` measured against the previous screenshot (what changed, where): whether it
        alerts, or None when it is neither over the threshold nor a text version's look."""
        from monitor.visualdiff import visual_diff

        png = previous["sha256"]
        assert png is not None  # `Screenshots.last` reads screenshots with a PNG only
        before = self.store.read_blob(png)
        diff = await self.work.run(visual_diff, before, new.png)
        new.previous_id, new.changed = previous["id"], diff.changed
        new.regions = [list(box) for box in diff.boxes]
        over = watch.alert_visual and diff.changed >= watch.visual_threshold
        if not version_ids and not over:
            return None
        # Text versions that alert already tell of this check; the visual alert is for what
        # the text does not show.
        return over and not any(v.alerts for v in versions)

    def _failed(self, watch: WatchConfig, at: str, reason: str) -> None:
        try:
            # The same kind of problem again is no news: a timeout worded by another layer,
            # say (see `_kind`).
            news = self.store.screenshots.record_problem(
                watch.id, at, watch.url, reason, lambda told, now: _kind(told) == _kind(now)
            )
        except Exception as err:  # e.g. the database is locked or gone: say so, go on
            logger.error("%s: screenshot problem not recorded: %s (%s)", watch.id, err, reason)
            return
        if news:
            logger.warning("%s: screenshot failed: %s", watch.id, reason)


def _visual_alert(
    watch: WatchConfig,
    at: str,
    shot_id: int,
    new: NewScreenshot,
    changed: float,
    regions: int,
    public_url: str | None,
) -> tuple[dict[str, Any], list[str]]:
    """The alert of a visual change: how much of the page, where, and the link to see it."""
    summary = (
        f"the page looks different: {_percent(changed)} of it changed "
        f"({regions} region{'s' if regions != 1 else ''}; "
        f"alert_visual threshold {_percent(watch.visual_threshold)})"
    )
    payload, channels = watch_alert("visual", watch, at, summary)
    if public_url:
        payload["diff_url"] = (
            f"{public_url.rstrip('/')}/watch/{quote(watch.id, safe='')}/visual?b={shot_id}"
        )
    payload["score"] = round(changed, 6)
    payload["transient"] = False
    payload["visual"] = {
        "changed": round(changed, 6),
        "regions": new.regions,
        "screenshot": shot_id,
        "previous": new.previous_id,
        "width": new.width,
        "height": new.height,
    }
    return payload, channels


def _percent(share: float) -> str:
    return f"{100 * share:.1f}%" if share >= 0.001 else f"{100 * share:.2f}%"


def _kind(reason: str) -> str:
    """What kind of problem a `_reason` names, without its detail: "screenshot timed out"
    (whether the browser's own timeout or ours fired first, which a busy machine decides),
    "screenshots could not be compared", "screenshot failed: <error type>"."""
    head, _, rest = reason.partition(": ")
    return f"{head}: {rest.partition(':')[0]}" if head == "screenshot failed" else head


def _browser_timeout(err: BaseException) -> bool:
    """Playwright's own timeout (a page that never settles): its TimeoutError, not Python's.
    Screenshots are taken only where Playwright is installed (the `browser` extra)."""
    try:
        from playwright.async_api import TimeoutError as BrowserTimeout
    except ImportError:
        return False
    return isinstance(err, BrowserTimeout)


def _reason(err: BaseException) -> str:
    if isinstance(err, TimeoutError) or _browser_timeout(err):
        detail = str(err).splitlines()[0] if str(err) else "the page did not settle in time"
        return f"screenshot timed out: {detail[:200]}"
    if isinstance(err, WorkFailed):
        return f"screenshots could not be compared: {err.reason}"
    first = str(err).splitlines()[0] if str(err) else ""
    return f"screenshot failed: {type(err).__name__}: {first[:200]}"
