"""Screenshots and visual changes in real headless Chromium, against a real local server
whose page changes only a picture: a PNG per version, the changed region found where it
is, `alert_visual` above its threshold once and never for noise, and failures that stay
the screenshots' problem while the text is archived."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import sqlite3
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from PIL import Image, ImageDraw
from warcio.archiveiterator import ArchiveIterator

from monitor.store import Store
from monitor.visualdiff import outlined, visual_diff
from monitor.web.visual import IMAGE_POLICY
from tests.conftest import REPO, generic_watch, local_config, monitor_cli, serve_on_loopback
from tests.webui import add_user, login, serving

pytestmark = pytest.mark.browser

# Where the picture sits on the page (CSS pixels, absolutely positioned) and its size.
IMG_LEFT, IMG_TOP, IMG_W, IMG_H = 100, 200, 400, 300
TEXT = (
    "The Ministry publishes the map of the week below. It shows the border crossings that "
    "are open to travellers, and is updated whenever their state changes."
)


def picture(patch: tuple[int, int, int, int] | None = None, noise: int = 0) -> bytes:
    """The map: a gradient with a grid, `patch` (a box of the picture) painted over, and
    every pixel moved by `noise` levels (what re-encoding or antialiasing does)."""
    image = Image.new("RGB", (IMG_W, IMG_H))
    draw = ImageDraw.Draw(image)
    for x in range(IMG_W):
        draw.line([(x, 0), (x, IMG_H)], fill=(40 + x // 4, 120, 200 - x // 4))
    for y in range(0, IMG_H, 25):
        draw.line([(0, y), (IMG_W, y)], fill=(255, 255, 255))
    if patch is not None:
        draw.rectangle((patch[0], patch[1], patch[2] - 1, patch[3] - 1), fill=(250, 200, 0))
    if noise:
        image = image.point(lambda v: min(255, v + noise))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


@dataclass
class MapSite:
    url: str = ""
    text: str = TEXT
    png: bytes = field(default_factory=picture)
    hang: bool = False  # the picture never finishes loading

    def page(self) -> bytes:
        return (
            "<!doctype html><html><head><title>Map of the week</title><style>"
            "body{margin:0;font:16px sans-serif} main{position:absolute;left:100px;top:40px;"
            f"width:900px}} img{{position:absolute;left:{IMG_LEFT}px;top:{IMG_TOP}px}}"
            "</style></head><body><main><h1>Map of the week</h1><article><p>"
            f"{self.text}</p></article></main>"
            f'<img src="/map.png" width="{IMG_W}" height="{IMG_H}" alt="map"></body></html>'
        ).encode()


@pytest.fixture
def site() -> Iterator[MapSite]:
    state = MapSite()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/map.png":
                if state.hang:
                    time.sleep(8)
                body, kind = state.png, "image/png"
            else:
                body, kind = state.page(), "text/html; charset=utf-8"
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            with contextlib.suppress(BrokenPipeError):  # the browser gave up on the picture
                self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    for base in serve_on_loopback(Handler):
        state.url = base + "/"
        yield state


def write_config(
    tmp_path: Path, site: MapSite, extra: str = "", fetch: str = "", timeout: str = "20s"
) -> Path:
    # Short only where a page hangs on purpose: a loaded CI machine's Chromium can take
    # more than 3 x 3 s to shoot a page that loads (a problem row where a picture was due).
    return local_config(
        tmp_path,
        generic_watch("map", site.url, f"screenshot = true\n{extra}"),
        fetch=f'timeout = "{timeout}"\n{fetch}',
        sections='[server]\npublic_url = "http://ui.test"',
    )


def check(config: Path) -> str:
    result = monitor_cli(config, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout + result.stderr


def rows(tmp_path: Path, query: str) -> list[sqlite3.Row]:
    db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    db.row_factory = sqlite3.Row
    try:
        return db.execute(query).fetchall()
    finally:
        db.close()


def test_each_version_gets_a_screenshot_and_a_changed_picture_alerts_once(
    tmp_path: Path, site: MapSite
) -> None:
    config = write_config(tmp_path, site, "alert_visual = true\nvisual_threshold = 0.02")
    check(config)
    [first] = rows(tmp_path, "SELECT * FROM screenshot")
    assert first["sha256"] and (first["width"], first["height"]) == (1280, 800)
    [link] = rows(tmp_path, "SELECT * FROM version_screenshot")
    assert link["screenshot_id"] == first["id"]
    with Store(tmp_path / "store") as store:
        png = store.read_blob(first["sha256"])
    assert png.startswith(b"\x89PNG")

    # Only the picture changes (the HTML is byte for byte the same): a box of 200x150 of
    # it, 2.9% of the 1280x800 page, over the 2% threshold.
    site.png = picture(patch=(100, 50, 300, 200))
    check(config)
    shots = rows(tmp_path, "SELECT * FROM screenshot ORDER BY id")
    assert len(shots) == 2 and shots[1]["previous_id"] == first["id"], dict(shots[1])
    assert json.loads(shots[1]["regions"]) == [
        [IMG_LEFT + 100, IMG_TOP + 50, IMG_LEFT + 300, IMG_TOP + 200]
    ]
    assert 0.028 < shots[1]["changed"] < 0.03
    assert rows(tmp_path, "SELECT count(*) FROM version")[0][0] == 1  # no text version
    [alert] = rows(tmp_path, "SELECT * FROM alert WHERE kind = 'visual'")
    payload = json.loads(alert["payload"])
    assert payload["summary"].startswith("the page looks different: 2.9% of it changed")
    assert payload["diff_url"] == f"http://ui.test/watch/map/visual?b={shots[1]['id']}"
    assert payload["visual"]["regions"] == [[200, 250, 400, 400]]

    # The same picture again: no new screenshot, no second alert.
    check(config)
    # Noise: every pixel a few levels brighter (re-encoding, antialiasing): nothing.
    site.png = picture(patch=(100, 50, 300, 200), noise=6)
    check(config)
    # A real change below the threshold (a 20x20 box: 0.04% of the page): nothing either.
    site.png = _with_box(picture(patch=(100, 50, 300, 200)), (10, 10, 30, 30))
    check(config)
    assert len(rows(tmp_path, "SELECT id FROM screenshot")) == 2
    assert len(rows(tmp_path, "SELECT id FROM alert WHERE kind = 'visual'")) == 1

    # A text edit: a new version with its own screenshot (the small box is on it too).
    site.text = TEXT.replace("border crossings", "mountain passes")
    check(config)
    versions = rows(tmp_path, "SELECT id, kind FROM version ORDER BY id")
    assert [v["kind"] for v in versions] == ["baseline", "edited"]
    links = rows(tmp_path, "SELECT * FROM version_screenshot ORDER BY version_id")
    assert [link["version_id"] for link in links] == [v["id"] for v in versions]
    third = rows(tmp_path, "SELECT * FROM screenshot ORDER BY id DESC LIMIT 1")[0]
    assert links[1]["screenshot_id"] == third["id"] and third["previous_id"] == shots[1]["id"]
    # The text alert tells of that check; no visual alert on top of it.
    assert len(rows(tmp_path, "SELECT id FROM alert WHERE kind = 'visual'")) == 1
    _the_ui_shows_them(config, second=shots[1]["id"], third=third["id"])
    _exports_carry_them(config, tmp_path)


def _exports_carry_them(config: Path, tmp_path: Path) -> None:
    warc, wacz = tmp_path / "map.warc.gz", tmp_path / "map.wacz"
    for flag, target in (("--warc", warc), ("--wacz", wacz)):
        result = monitor_cli(config, "export", flag, str(target), "--watch", "map")
        assert result.returncode == 0, result.stdout + result.stderr
        checked = monitor_cli(config, "verify", "--export", str(target))
        assert checked.returncode == 0, checked.stdout + checked.stderr
    stored = {row["sha256"]: row["id"] for row in rows(tmp_path, "SELECT * FROM screenshot")}
    pngs, facts = {}, {}
    with open(warc, "rb") as stream:
        for record in ArchiveIterator(stream):
            uri = record.rec_headers.get_header("WARC-Target-URI") or ""
            if not uri.startswith("urn:monitor:screenshot:map:"):
                continue
            if record.rec_type == "resource":
                assert record.rec_headers.get_header("Content-Type") == "image/png"
                pngs[uri] = record.content_stream().read()
            else:
                facts[uri] = json.loads(record.content_stream().read())
    assert {hashlib.sha256(png).hexdigest() for png in pngs.values()} == set(stored)
    assert [f["versions"] for f in facts.values()] == [
        ["urn:monitor:map:" + _only_key(config).replace("%2F", "/") + ":1"],
        [],
        ["urn:monitor:map:" + _only_key(config).replace("%2F", "/") + ":2"],
    ]
    assert list(facts.values())[1]["regions"] == [[200, 250, 400, 400]]
    with zipfile.ZipFile(wacz) as package:
        index = gzip.decompress(package.read("indexes/index.cdx.gz")).decode()
    assert index.count("urn:monitor:screenshot:map:") >= 3


def _the_ui_shows_them(config: Path, second: int, third: int) -> None:
    assert add_user(config, "vi", "viewer").returncode == 0
    with serving(config) as url:
        viewer = login(url, "vi")
        # The alert's link: the picture change, its region listed where it is.
        page = viewer.get(f"/watch/map/visual?b={second}")
        assert page.status_code == 200
        assert 'data-box="200,250,400,400"' in page.text and "2.93%" in page.text
        after = viewer.get(f"/watch/map/visual/{second - 1}-{second}/after.png")
        assert after.status_code == 200 and after.headers["content-type"] == "image/png"
        assert after.headers["content-security-policy"] == IMAGE_POLICY
        assert after.headers["x-content-type-options"] == "nosniff"
        framed = Image.open(io.BytesIO(after.content)).convert("RGB")
        assert framed.size == (1280, 800)
        assert framed.getpixel((198, 300)) == (220, 0, 0)  # the frame, just outside
        assert framed.getpixel((300, 300)) == (250, 200, 0)  # the new patch, intact
        before = Image.open(
            io.BytesIO(viewer.get(f"/watch/map/visual/{second - 1}-{second}/before.png").content)
        )
        assert before.convert("RGB").getpixel((198, 300)) == (220, 0, 0)
        plain = viewer.get(f"/watch/map/screenshots/{second}.png")
        assert plain.headers["x-content-sha256"] == hashlib.sha256(plain.content).hexdigest()
        # The text diff of the edit shows both versions' screenshots, outlined, and links
        # to their visual diff.
        diff = viewer.get("/watch/map/diff?key=" + _only_key(config) + "&b=2")
        assert diff.status_code == 200
        assert f'href="/watch/map/visual?b={third}&amp;a=1"' in diff.text
        assert f'src="/watch/map/visual/1-{third}/after.png"' in diff.text
        # The watch's page lists its screenshots, the visual change linked.
        listing = viewer.get("/watch/map").text
        assert f'href="/watch/map/visual?b={second}&amp;a={second - 1}">2.93%' in listing
        assert viewer.get("/watch/map/screenshots/999.png").status_code == 404
        assert viewer.get(f"/watch/other/screenshots/{second}.png").status_code == 404
        assert viewer.get(f"/watch/map/visual/1-{second}/inside.png").status_code == 404


def _only_key(config: Path) -> str:
    store = Path(config.read_text().split('path = "')[1].split('"')[0])
    db = sqlite3.connect(store / "index.sqlite")
    try:
        [(key,)] = db.execute("SELECT key FROM document").fetchall()
    finally:
        db.close()
    return str(key).replace("/", "%2F")


def _with_box(png: bytes, box: tuple[int, int, int, int]) -> bytes:
    image = Image.open(io.BytesIO(png)).convert("RGB")
    ImageDraw.Draw(image).rectangle((box[0], box[1], box[2] - 1, box[3] - 1), fill=(0, 0, 0))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def test_a_hanging_page_is_a_screenshot_problem_once_and_the_text_is_archived(
    tmp_path: Path, site: MapSite
) -> None:
    site.hang = True
    config = write_config(tmp_path, site, "alert_visual = true", timeout="3s")
    started = time.monotonic()
    output = check(config)
    assert "screenshot failed" in output
    assert rows(tmp_path, "SELECT kind FROM version")[0]["kind"] == "baseline"
    [problem] = rows(tmp_path, "SELECT * FROM screenshot")
    # Chromium's timeout or ours, whichever fires first on this machine: one kind of problem.
    assert problem["sha256"] is None and problem["problem"].startswith("screenshot timed out:")
    output = check(config)  # the same failure again: not a second report
    assert "screenshot failed" not in output
    assert len(rows(tmp_path, "SELECT id FROM screenshot")) == 1
    assert time.monotonic() - started < 40
    # The page settles again: a screenshot, and the next text version gets it.
    site.hang = False
    output = check(config)
    assert "screenshots work again" in output
    assert rows(tmp_path, "SELECT sha256 FROM screenshot ORDER BY id DESC")[0]["sha256"]


def test_a_crashing_browser_is_a_screenshot_problem_and_the_text_is_archived(
    tmp_path: Path, site: MapSite
) -> None:
    crash = tmp_path / "chromium"
    crash.write_text("#!/bin/sh\necho 'Segmentation fault' >&2\nkill -SEGV $$\n")
    crash.chmod(0o755)
    config = write_config(tmp_path, site, fetch=f'browser_path = "{crash}"')
    output = check(config)
    assert "screenshot failed" in output
    assert [row["kind"] for row in rows(tmp_path, "SELECT kind FROM version")] == ["baseline"]
    [problem] = rows(tmp_path, "SELECT problem FROM screenshot")
    assert problem["problem"].startswith("screenshot failed:")


def test_the_outlined_image_frames_the_changed_region() -> None:
    before, after = picture(), picture(patch=(100, 50, 300, 200))
    started = time.process_time()
    diff = visual_diff(before, after)
    assert diff.boxes == [(100, 50, 300, 200)]
    assert time.process_time() - started < 2
    framed = Image.open(io.BytesIO(outlined(after, diff.boxes))).convert("RGB")
    # The frame is drawn just outside the region, in red; inside, the picture is intact.
    assert framed.getpixel((98, 120)) == (220, 0, 0)
    assert framed.getpixel((150, 120)) == (250, 200, 0)


def test_a_problem_worded_by_another_layer_is_the_same_problem(tmp_path: Path) -> None:
    # A busy machine decides whether Chromium's timeout or ours fires first: one problem.
    from playwright.async_api import TimeoutError as BrowserTimeout

    from monitor.config import WatchConfig
    from monitor.isolate import InlineWork
    from monitor.screenshots import Screenshotter, _kind, _reason

    ours = _reason(TimeoutError())
    chromium = _reason(BrowserTimeout("Timeout 3000ms exceeded.\n=== logs ==="))
    assert chromium == "screenshot timed out: Timeout 3000ms exceeded."
    assert _kind(ours) == _kind(chromium) == "screenshot timed out"
    crashed, refused = _reason(RuntimeError("Target closed")), _reason(OSError("no such file"))
    assert _kind(crashed) == "screenshot failed: RuntimeError" != _kind(refused)
    # Told once per run of one kind, in the archive as in the log.
    with Store(tmp_path / "store") as store:
        store.sync_watch("w", "https://gov.example/news", "generic")
        shots = Screenshotter(store, None, InlineWork())
        watch = WatchConfig(id="w", url="https://gov.example/news")
        problems = [ours, chromium, crashed, _reason(RuntimeError("Browser closed")), ours]
        for minute, reason in enumerate(problems):
            shots._failed(watch, f"2026-11-25T10:0{minute}:00.000Z", reason)
        told = [row["problem"] for row in reversed(store.screenshots.of_watch("w"))]
    assert told == [ours, crashed, ours]


# A look a process fetched and was killed before committing (monitor/inflight.py), left as
# that process leaves it: its page's bytes in a slot of a directory whose lock is free.
_LEFT_IN_FLIGHT = """
import sys
from datetime import UTC, datetime
from pathlib import Path
from monitor.fetched import FetchRequest, FetchResult
from monitor.inflight import InFlight
from monitor.store.records import iso

url, body = sys.argv[2], sys.argv[3].encode()
now = datetime.now(UTC)
InFlight(Path(sys.argv[1])).begin(
    "map",
    iso(now),
    FetchResult(
        request=FetchRequest(url),
        url=url,
        requested_at=now,
        status=200,
        http_version="HTTP/1.1",
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=body,
    ),
)
"""


def test_a_replayed_look_gets_no_screenshot_of_the_page_as_it_is_later(
    tmp_path: Path, site: MapSite
) -> None:
    """A replayed look archives what its process fetched then; the browser never saw the
    page then, and a screenshot taken at the replay shows the page as it is now: the
    replayed version has none, the look that follows has the one of its own moment."""
    config = write_config(tmp_path, site)
    check(config)
    fetched = MapSite(url=site.url, text=TEXT + " The crossing at Dostyk is closed.")
    left = subprocess.run(
        [
            sys.executable,
            "-c",
            _LEFT_IN_FLIGHT,
            str(tmp_path / "store"),
            site.url,
            fetched.page().decode(),
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert left.returncode == 0, left.stderr
    site.text = TEXT + " The crossings at Dostyk and Khorgos are closed."
    site.png = picture(patch=(0, 0, 120, 90))
    assert "replaying the look" in check(config)
    shots = rows(
        tmp_path,
        "SELECT v.seq, v.kind, vs.screenshot_id FROM version v "
        "LEFT JOIN version_screenshot vs ON vs.version_id = v.id ORDER BY v.seq",
    )
    assert [(row["seq"], row["kind"]) for row in shots] == [
        (1, "baseline"),
        (2, "edited"),
        (3, "edited"),
    ]
    baseline, replayed, latest = (row["screenshot_id"] for row in shots)
    assert baseline is not None and latest is not None and latest != baseline
    assert replayed is None
