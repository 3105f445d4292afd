"""Browser engine: headless Chromium (Playwright) behind the same `fetch()` seam as HTTP.

Two uses: pages that only render with JavaScript or answer plain clients with a JavaScript
challenge (per watch, `fetcher = "browser"`), and capturing the request headers a site's
own scripts compute (gov.kz's API demands `hash`/`token` headers issued that way).

Optional: `pip install 'monitor[browser]'` plus a Chromium (Debian: `apt install chromium`).
Every connection the page makes passes the same SSRF guard as the HTTP fetcher, through a
proxy of ours (monitor/browser_guard.py): redirect hops, subresources, WebSockets, workers'
requests. Service workers are blocked, downloads refused, WebRTC kept off UDP (which no
proxy sees); images, fonts and media are not loaded. Chromium starts on first use and is
shared, with its own concurrency limit, because each page costs tens of megabytes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from monitor.browser_guard import GuardProxy
from monitor.config import FetchConfig
from monitor.fetch import (
    FetchRequest,
    FetchResult,
    HeaderCapture,
    RefusedAddress,
    check_address,
    now_utc,
)
from monitor.tls import NO_TLS, browser_info

logger = logging.getLogger("monitor.browser")

_SKIPPED_RESOURCES = {"image", "font", "media"}
_CHROMIUM_CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "chrome")
_LAUNCH_ARGS = [
    "--no-sandbox",  # we run as an unprivileged daemon or root in containers
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-gpu",
    # WebRTC sends UDP (STUN) to any address a script names, past every proxy; QUIC would
    # too. Both are kept to what goes through the guard's proxy.
    "--force-webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--webrtc-ip-handling-policy=disable_non_proxied_udp",
    "--disable-quic",
]


# Screenshots: the window a page is laid out in, and the tallest page kept (taller pages are
# cut there: Chromium's own limit is near 16,384 pixels, and such a PNG is already large).
SCREENSHOT_VIEWPORT = {"width": 1280, "height": 800}
SCREENSHOT_MAX_HEIGHT = 16_000


@dataclass(frozen=True)
class PageShot:
    """A full-page screenshot: the PNG, and the URL the page ended on."""

    png: bytes
    url: str


class BrowserUnavailable(Exception):
    """Playwright or Chromium is not installed."""


class BrowserEngine:
    """Shared headless Chromium. Use as an async context manager; starts lazily."""

    def __init__(self, config: FetchConfig) -> None:
        self.config = config
        self._semaphore = asyncio.Semaphore(config.browser_concurrency)
        self._start_lock = asyncio.Lock()
        self._playwright: Any = None
        self._browser: Any = None

    async def __aenter__(self) -> BrowserEngine:
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._browser is not None:
            await self._browser.close()
        if self._playwright is not None:
            await self._playwright.stop()
        self._browser = self._playwright = None

    async def _ensure_started(self) -> Any:
        async with self._start_lock:
            if self._browser is not None:
                return self._browser
            try:
                from playwright.async_api import async_playwright
            except ImportError:
                raise BrowserUnavailable(
                    "the browser fetcher needs Playwright: pip install 'monitor[browser]'"
                ) from None
            executable = self.config.browser_path or _find_chromium()
            if executable is None:
                raise BrowserUnavailable(
                    "no Chromium found: install it (Debian: apt install chromium) "
                    "or set [fetch] browser_path"
                )
            self._playwright = await async_playwright().start()
            self._browser = await self._playwright.chromium.launch(
                executable_path=executable, args=_LAUNCH_ARGS, headless=True
            )
            logger.info("started headless Chromium (%s)", executable)
            return self._browser

    @contextlib.asynccontextmanager
    async def _context(self, as_seen: bool = False) -> AsyncIterator[tuple[Any, GuardProxy]]:
        """A fresh browser context whose every connection goes through a guard proxy of
        its own (whose refusals are this page's), closed with it. `as_seen`: the page as a
        reader sees it (images, fonts and media loaded, a fixed window), for screenshots."""
        browser = await self._ensure_started()
        proxy = GuardProxy(self.config)
        try:
            context = await browser.new_context(
                user_agent=self.config.user_agent,
                ignore_https_errors=False,  # TLS verification is never switched off
                java_script_enabled=True,
                proxy={"server": await proxy.start()},
                # A service worker's requests bypass routing, and it outlives the page.
                service_workers="block",
                accept_downloads=False,
                **({"viewport": SCREENSHOT_VIEWPORT} if as_seen else {}),
            )
            try:
                if not as_seen:
                    await context.route("**/*", _skip_heavy_resources)
                yield context, proxy
            finally:
                await context.close()
        finally:
            await proxy.close()

    async def fetch(self, request: FetchRequest) -> FetchResult:
        """Render the page and return its DOM as HTML, with the main response's metadata."""
        result = FetchResult(request=request, url=request.url, requested_at=now_utc())
        started = time.monotonic()
        try:
            await check_address(request.url, self.config.allow_private, self.config.allow_hosts)
            async with self._semaphore, self._context() as (context, proxy):
                page = await context.new_page()
                try:
                    response = await page.goto(
                        request.url,
                        wait_until="networkidle",
                        timeout=self.config.timeout * 1000,
                    )
                except Exception as err:
                    if proxy.refusals:  # the page, or a redirect hop, was not allowed
                        raise RefusedAddress(proxy.refusals[0]) from err
                    raise
                html = await page.content()
                result.url = page.url
                if response is not None:
                    result.status = response.status
                    result.headers = [
                        (h["name"], h["value"])
                        for h in await response.headers_array()
                        if h["name"].lower() != "content-type"
                    ] + [("content-type", "text/html; charset=utf-8")]
                    result.tls = (
                        browser_info(await response.security_details())
                        if result.url[:6].lower() == "https:"
                        else NO_TLS
                    )
                result.body = html.encode("utf-8")
                if len(result.body) > self.config.max_bytes:
                    result.body = result.body[: self.config.max_bytes]
                    result.truncated = True
                    result.problem = f"body larger than max_bytes ({self.config.max_bytes})"
        except BrowserUnavailable as err:
            result.problem = str(err)
        except RefusedAddress as err:
            result.problem = f"refused: {err}"
        except Exception as err:  # Playwright raises its own error types for timeouts etc.
            result.problem = f"browser: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
        result.elapsed = time.monotonic() - started
        return result

    async def screenshot(self, url: str) -> PageShot:
        """A full-page PNG of the page as a reader sees it (pictures loaded), once its
        network is idle; raises on any failure: a refused address (RefusedAddress), a page
        that never settles (Playwright's TimeoutError), a browser that cannot start."""
        await check_address(url, self.config.allow_private, self.config.allow_hosts)
        timeout = self.config.timeout * 1000
        async with self._semaphore, self._context(as_seen=True) as (context, proxy):
            page = await context.new_page()
            try:
                await page.goto(url, wait_until="networkidle", timeout=timeout)
            except Exception as err:
                if proxy.refusals:
                    raise RefusedAddress(proxy.refusals[0]) from err
                raise
            height = await page.evaluate(
                "() => Math.max(document.documentElement.scrollHeight,"
                " document.body ? document.body.scrollHeight : 0)"
            )
            clip = None
            if isinstance(height, int | float) and height > SCREENSHOT_MAX_HEIGHT:
                width = SCREENSHOT_VIEWPORT["width"]
                clip = {"x": 0, "y": 0, "width": width, "height": SCREENSHOT_MAX_HEIGHT}
            png = await page.screenshot(
                full_page=True,
                clip=clip,
                type="png",
                animations="disabled",
                caret="hide",
                timeout=timeout,
            )
            return PageShot(png, page.url)

    async def capture_headers(self, capture: HeaderCapture) -> dict[str, str]:
        """Load the page and return the named headers of its first matching request."""
        await check_address(capture.page_url, self.config.allow_private, self.config.allow_hosts)
        found: dict[str, str] = {}
        async with self._semaphore, self._context() as (context, _):
            page = await context.new_page()
            seen = asyncio.Event()

            def on_request(request: Any) -> None:
                if capture.request_contains not in request.url or seen.is_set():
                    return
                headers = request.headers
                values = {name: headers.get(name) for name in capture.names}
                if all(values.values()):
                    found.update({k: v for k, v in values.items() if v})
                    seen.set()

            page.on("request", on_request)
            await page.goto(
                capture.page_url,
                wait_until="domcontentloaded",
                timeout=self.config.timeout * 1000,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(seen.wait(), timeout=self.config.timeout)
        return found


async def _skip_heavy_resources(route: Any) -> None:
    """Images, fonts and media are not loaded: nothing of a statement's text is in them.
    (The SSRF guard is not here but in the context's proxy: routing misses redirect hops,
    WebSockets and workers' requests.)"""
    if route.request.resource_type in _SKIPPED_RESOURCES:
        await route.abort()
    else:
        await route.continue_()


def _find_chromium() -> str | None:
    for name in _CHROMIUM_CANDIDATES:
        path = shutil.which(name)
        if path:
            return path
    return None
