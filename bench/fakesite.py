"""A local ministry-like site for the benchmark: N statement pages of ~30 KB on 127.0.0.1.

Run by `bench/run.py` as its own process (so the site's CPU never counts as monitor's):

    python bench/fakesite.py --pages 1000      # prints "PORT <n>" once it is listening

Pages live at `/statement/{i}` (0 <= i < N). Each answer carries an ETag and a
Last-Modified; If-None-Match (preferred, as RFC 9110 says) or If-Modified-Since get a 304
when the page has not changed. Control endpoints, all under `/__`:

    POST /__change?fraction=0.1&edits=5   edit that fraction of pages (5 scattered words each)
    POST /__change?pages=3,17&edits=1     edit exactly these pages
    POST /__fault?pages=3,17&mode=500&seconds=180
                                          for that long, these pages answer 500, hang
                                          (mode=hang: the answer waits until the fault ends)
                                          or show a captcha page (mode=captcha, HTTP 200)
    POST /__validators?honour=0           answer 200 to every request (honour=1 restores 304s)
    GET  /__stats                         request counters since the last reset, as JSON
    POST /__reset                         zero the counters
    GET  /__etags                         the current ETag of every page, as a JSON list

The page generator is importable without aiohttp, because the in-process micro benchmarks
build their statements with it too.
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import random
import socket
import sys
import time
from dataclasses import dataclass, field
from email.utils import formatdate, parsedate_to_datetime

# Words a foreign-ministry statement is made of; sentences are drawn from them at random.
_WORDS = (
    "the ministry of foreign affairs republic government delegation minister deputy "
    "ambassador embassy consulate bilateral multilateral cooperation partnership agreement "
    "memorandum understanding negotiations talks meeting visit official working framework "
    "economic trade investment energy security regional international community united "
    "nations council assembly session summit forum dialogue sides parties discussed "
    "reaffirmed expressed support commitment mutual interest development sustainable "
    "transport logistics corridor transit digital innovation climate water resources "
    "humanitarian assistance citizens consular services visa regime strategic agenda "
    "priorities implementation roadmap joint commission intergovernmental declaration "
    "signed adopted welcomed noted emphasized highlighted importance strengthening "
    "expanding deepening relations friendship neighbourly stability peace prosperity "
    "region central asia europe partners initiative proposal program results outcomes "
    "during within between following further current next year months spokesperson "
    "briefing press statement regarding concerning situation developments position "
    "principles sovereignty territorial integrity law charter obligations"
)
VOCABULARY = _WORDS.split()
CLOSINGS = ("", "", "", " in 2024", " in Astana", " at the highest level", " this week")
BASE_TIME = 1_700_000_000  # Last-Modified of version 0; each edit moves it on by one hour


class Corpus:
    """A fixed pool of sentences, so pages are cheap to build yet differ from each other."""

    def __init__(self, seed: int = 0, size: int = 3000) -> None:
        rng = random.Random(seed)
        self.sentences = [self._sentence(rng) for _ in range(size)]

    @staticmethod
    def _sentence(rng: random.Random) -> str:
        words = rng.choices(VOCABULARY, k=rng.randint(12, 30))
        if rng.random() < 0.3:
            # Numbers and dates appear in real statements and exercise the sentence splitter.
            words.insert(rng.randrange(len(words)), str(rng.randint(2, 2025)))
        text = " ".join(words) + rng.choice(CLOSINGS)
        return text[0].upper() + text[1:] + "."

    def paragraphs(self, rng: random.Random, body_bytes: int) -> list[str]:
        """10-20 paragraphs of about `body_bytes` characters in all."""
        count = rng.randint(10, 20)
        per_paragraph = body_bytes // count
        result = []
        for _ in range(count):
            sentences: list[str] = []
            size = 0
            while size < per_paragraph:
                sentence = rng.choice(self.sentences)
                sentences.append(sentence)
                size += len(sentence) + 1
            result.append(" ".join(sentences))
        return result


def edit_words(paragraphs: list[str], rng: random.Random, edits: int) -> list[str]:
    """A copy with `edits` words replaced, each in a randomly chosen paragraph (scattered)."""
    result = list(paragraphs)
    for _ in range(edits):
        index = rng.randrange(len(result))
        words = result[index].split(" ")
        position = rng.randrange(len(words))
        old = words[position]
        # Keep trailing punctuation so sentence boundaries stay where they were.
        stem = old.rstrip(".,")
        replacement = rng.choice([w for w in VOCABULARY if w != stem.lower()])
        words[position] = replacement + old[len(stem) :]
        result[index] = " ".join(words)
    return result


def _furniture() -> tuple[str, str]:
    """Header/nav/sidebar and footer shared by every page (~10 KB, like a real ministry)."""
    # Menu entries are word pairs; an odd last word is simply left out (strict=False).
    pairs = zip(VOCABULARY[::2], VOCABULARY[1::2], strict=False)
    sections = [f"{w.title()} {v.title()}" for w, v in pairs]
    nav = "".join(
        f'<li class="menu-item"><a href="/section/{k}">{html.escape(name)}</a></li>'
        for k, name in enumerate(sections[:60])
    )
    related = "".join(
        f'<li><a href="/statement/related-{k}">{html.escape(name)} news</a></li>'
        for k, name in enumerate(sections[::3])
    )
    footer_links = "".join(
        f'<a href="/about/{k}">{html.escape(name)}</a> ' for k, name in enumerate(sections[:30])
    )
    analytics = json.dumps({"site": "mfa", "sections": sections[:40], "build": "2024.11.3"})
    top = (
        '<header class="site-header"><a class="logo" href="/">Ministry of Foreign Affairs</a>'
        '<form class="search" action="/search"><input name="q"></form></header>'
        f'<nav class="navbar"><ul class="menu">{nav}</ul></nav>'
        '<div class="breadcrumb"><a href="/">Home</a> / <a href="/press">Press</a></div>'
        f'<aside class="sidebar related"><h3>Related</h3><ul>{related}</ul></aside>'
    )
    bottom = (
        '<div class="share social"><a href="#">Share</a><a href="#">Print</a></div>'
        f'<footer class="site-footer"><p>{footer_links}</p>'
        "<p>Address: 8 Kunayev Street, Astana, 010000. Press office: +7 7172 72 05 18.</p>"
        "<p>© Ministry of Foreign Affairs. All rights reserved.</p></footer>"
        f"<script>window.__SITE__ = {analytics};</script>"
    )
    return top, bottom


_TOP, _BOTTOM = _furniture()


@dataclass
class Page:
    index: int
    title: str
    published: str
    paragraphs: list[str]
    version: int = 0
    body: bytes = b""
    etag: str = ""
    last_modified: int = 0  # seconds since the epoch

    def render(self) -> None:
        """Rebuild the bytes and validators; called once per version, never per request."""
        title = html.escape(self.title)
        text = "".join(f"<p>{html.escape(p)}</p>" for p in self.paragraphs)
        self.body = (
            f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{title} | MFA'
            f'</title><meta property="og:title" content="{title}">'
            f'<meta property="article:published_time" content="{self.published}"></head><body>'
            f'{_TOP}<main><article><h1>{title}</h1><time datetime="{self.published}">'
            f"{self.published[:10]}</time>{text}</article></main>{_BOTTOM}</body></html>"
        ).encode()
        self.etag = f'"{self.index}-{self.version}"'
        self.last_modified = BASE_TIME + 3600 * self.version


def make_page(index: int, corpus: Corpus, body_bytes: int = 20_000) -> Page:
    rng = random.Random(index)
    topic = " ".join(rng.choices(VOCABULARY, k=rng.randint(4, 8)))
    day = 1 + index % 28
    page = Page(
        index=index,
        title=f"Statement of the Ministry on {topic} No. {index}",
        published=f"2024-{1 + index % 12:02d}-{day:02d}T10:{index % 60:02d}:00+05:00",
        paragraphs=corpus.paragraphs(rng, body_bytes),
    )
    page.render()
    return page


@dataclass
class Stats:
    requests: int = 0
    conditional: int = 0  # requests carrying If-None-Match or If-Modified-Since
    by_status: dict[str, int] = field(default_factory=dict)
    bytes_sent: int = 0
    faults: dict[str, int] = field(default_factory=dict)  # faulty answers by mode


FAULT_MODES = ("500", "hang", "captcha")
# A thin page with a reCAPTCHA widget: what a bot wall serves instead of the statement.
CAPTCHA_PAGE = (
    b'<!DOCTYPE html><html><head><meta charset="utf-8"><title>Security check</title></head>'
    b'<body><form action="/verify" method="post"><p>Please confirm you are not a robot.</p>'
    b'<div class="g-recaptcha" data-sitekey="bench"></div></form></body></html>'
)


class Site:
    """State of the site, touched only from the event loop thread (no locking needed)."""

    def __init__(self, pages: int, seed: int = 1) -> None:
        corpus = Corpus()
        self.pages = [make_page(i, corpus) for i in range(pages)]
        self.honour_validators = True
        self.stats = Stats()
        # Page index -> (mode, time.monotonic() when the fault ends).
        self.faults: dict[int, tuple[str, float]] = {}
        # Separate from page seeds so the choice of edited pages varies between calls.
        self._rng = random.Random(seed)

    def answer(
        self, index: int, if_none_match: str | None, if_modified_since: str | None
    ) -> tuple[int, Page]:
        """(status, page) for a GET; counts it."""
        page = self.pages[index]
        self.stats.requests += 1
        if if_none_match or if_modified_since:
            self.stats.conditional += 1
        status = 200
        if self.honour_validators and _not_modified(page, if_none_match, if_modified_since):
            status = 304
        key = str(status)
        self.stats.by_status[key] = self.stats.by_status.get(key, 0) + 1
        if status == 200:
            self.stats.bytes_sent += len(page.body)
        return status, page

    def fault(self, index: int) -> tuple[str, float] | None:
        """(mode, seconds left) while a fault set on this page lasts; counts it."""
        mode, until = self.faults.get(index, ("", 0.0))
        left = until - time.monotonic()
        if left <= 0:
            self.faults.pop(index, None)
            return None
        self.stats.faults[mode] = self.stats.faults.get(mode, 0) + 1
        return mode, left

    def change(self, fraction: float, edits: int, pages: list[int] | None = None) -> list[int]:
        if pages is None:
            count = round(len(self.pages) * fraction)
            pages = self._rng.sample(range(len(self.pages)), count)
        chosen = sorted(pages)
        for index in chosen:
            page = self.pages[index]
            page.paragraphs = edit_words(page.paragraphs, self._rng, edits)
            page.version += 1
            page.render()
        return chosen


def _not_modified(page: Page, if_none_match: str | None, if_modified_since: str | None) -> bool:
    # If-None-Match wins when both are sent (RFC 9110 section 13.2.2).
    if if_none_match is not None:
        tags = [tag.strip().removeprefix("W/") for tag in if_none_match.split(",")]
        return "*" in tags or page.etag in tags
    if if_modified_since:
        try:
            since = parsedate_to_datetime(if_modified_since).timestamp()
        except (TypeError, ValueError):
            return False
        return page.last_modified <= since
    return False


def serve(pages: int, port: int) -> None:
    # Imported here so the generator above is usable without aiohttp installed.
    from aiohttp import web

    site = Site(pages)

    async def statement(request: web.Request) -> web.Response:
        try:
            index = int(request.match_info["index"])
        except ValueError:
            raise web.HTTPNotFound() from None
        if not 0 <= index < len(site.pages):
            raise web.HTTPNotFound()
        fault = site.fault(index)
        if fault is not None:
            mode, left = fault
            if mode == "500":
                return web.Response(status=500, text="Internal Server Error")
            if mode == "captcha":
                return web.Response(body=CAPTCHA_PAGE, content_type="text/html", charset="utf-8")
            # A hung backend: nothing until the fault is over (clients time out before).
            await asyncio.sleep(left)
        status, page = site.answer(
            index,
            request.headers.get("If-None-Match"),
            request.headers.get("If-Modified-Since"),
        )
        headers = {
            "ETag": page.etag,
            "Last-Modified": formatdate(page.last_modified, usegmt=True),
            "Cache-Control": "no-cache",
        }
        if status == 304:
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=page.body, headers=headers, content_type="text/html", charset="utf-8"
        )

    def pages(request: web.Request) -> list[int] | None:
        if "pages" not in request.query:
            return None
        chosen = [int(part) for part in request.query["pages"].split(",") if part]
        if not all(0 <= index < len(site.pages) for index in chosen):
            raise web.HTTPBadRequest(text="page index out of range")
        return chosen

    async def change(request: web.Request) -> web.Response:
        fraction = float(request.query.get("fraction", "0.1"))
        edits = int(request.query.get("edits", "5"))
        return web.json_response({"changed": site.change(fraction, edits, pages(request))})

    async def fault(request: web.Request) -> web.Response:
        mode = request.query.get("mode", "500")
        chosen = pages(request)
        if mode not in FAULT_MODES or chosen is None:
            raise web.HTTPBadRequest(text=f"need pages=… and mode in {FAULT_MODES}")
        until = time.monotonic() + float(request.query.get("seconds", "60"))
        site.faults.update((index, (mode, until)) for index in chosen)
        return web.json_response({"faulted": chosen, "mode": mode})

    async def validators(request: web.Request) -> web.Response:
        site.honour_validators = request.query.get("honour", "1") not in ("0", "false", "no")
        return web.json_response({"honour_validators": site.honour_validators})

    async def stats(_: web.Request) -> web.Response:
        return web.json_response(site.stats.__dict__)

    async def reset(_: web.Request) -> web.Response:
        site.stats = Stats()
        return web.json_response({})

    async def etags(_: web.Request) -> web.Response:
        return web.json_response([page.etag for page in site.pages])

    app = web.Application()
    app.add_routes(
        [
            web.get("/statement/{index}", statement),
            web.post("/__change", change),
            web.post("/__fault", fault),
            web.post("/__validators", validators),
            web.get("/__stats", stats),
            web.post("/__reset", reset),
            web.get("/__etags", etags),
        ]
    )
    # Bind before announcing the port, so the parent never races the listener.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1024)
    print(f"PORT {sock.getsockname()[1]}", flush=True)
    # No access log: formatting a log line per request would make the site the bottleneck.
    web.run_app(app, sock=sock, access_log=None, print=None, backlog=1024)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    parser.add_argument("--port", type=int, default=0, help="0 = any free port")
    args = parser.parse_args()
    try:
        serve(args.pages, args.port)
    except ImportError:
        sys.exit("fakesite: aiohttp is missing: pip install -r bench/requirements.txt")


if __name__ == "__main__":
    main()
