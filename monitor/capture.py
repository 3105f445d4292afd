"""API headers taken from a real browser, for sites whose API wants browser-issued headers
(a token its own scripts add to each call). Kept per site origin; a browser is asked at most
every few minutes per site."""

from __future__ import annotations

import logging
import time
from urllib.parse import urlsplit

from monitor.browser import BrowserEngine, BrowserUnavailable
from monitor.extract import Profile, Target

logger = logging.getLogger("monitor.check")

# A site whose API wants browser-issued headers gets a browser at most this often (seconds).
CAPTURE_INTERVAL = 300.0


class CapturedHeaders:
    def __init__(self, browser: BrowserEngine | None) -> None:
        self.browser = browser
        self._captured: dict[str, dict[str, str]] = {}
        self._capture_after: dict[str, float] = {}

    def for_url(self, url: str) -> dict[str, str] | None:
        """The headers captured for the origin of `url`, if any."""
        # Most daemons never capture headers: no URL to split for them.
        return self._captured.get(origin(url)) if self._captured else None

    async def refresh(self, profile: Profile, target: Target) -> bool:
        """Take fresh API headers from a real browser; at most every few minutes per site.
        Whether there are new ones to send."""
        capture = profile.header_capture(target)
        if capture is None or self.browser is None:
            return False
        site = origin(target.url)
        if self._capture_after.get(site, 0.0) > time.monotonic():
            return False
        self._capture_after[site] = time.monotonic() + CAPTURE_INTERVAL
        try:
            headers = await self.browser.capture_headers(capture)
        except BrowserUnavailable as err:
            logger.warning("%s: cannot capture API headers: %s", site, err)
            return False
        except Exception as err:  # a browser crash must not take the check down
            logger.warning("%s: header capture failed: %s: %s", site, type(err).__name__, err)
            return False
        if not headers:
            logger.warning("%s: the page made no API request carrying %s", site, capture.names)
            return False
        logger.info("%s: captured API headers %s from a browser", site, sorted(headers))
        self._captured[site] = headers
        return True


def origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"
