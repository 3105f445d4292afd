"""The web UI in real headless Chromium: a journalist's path through it (log in, open a
watch, compare two versions, annotate, search), and an archived page's script that must
never run with the UI's privileges. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from datetime import datetime
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import POLL, monitor_cli, write_config
from tests.webui import (
    NEWEST,
    NEWEST_KEY,
    PASSWORD,
    SENTENCE_NEW,
    SENTENCE_OLD,
    Archive,
    add_user,
    archive_fixture,  # noqa: F401 (the fixture `archive`)
    screenshot,
    serving,
)

ZONE = "Asia/Tokyo"  # UTC+9 all year: the local time shown is easy to predict


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path="/usr/bin/chromium",
            args=["--no-sandbox", "--disable-background-networking", "--disable-gpu"],
        )
        yield browser
        browser.close()


def open_page(browser: Browser) -> Page:
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, timezone_id=ZONE, locale="en-US"
    )
    return context.new_page()


def log_in(page: Page, url: str, name: str) -> None:
    page.goto(url + "/")
    expect(page).to_have_url(url + "/login?next=%2F")
    page.get_by_label("Username").fill(name)
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()
    expect(page.locator("h1")).to_have_text("Latest changes")


@pytest.mark.browser
def test_log_in_open_a_watch_compare_annotate_and_search(
    browser: Browser, archive: Archive
) -> None:
    page = open_page(browser)
    log_in(page, archive.url, "ed")
    page.goto(archive.url + "/watches/all")
    screenshot(page, "web-1-watches")
    # Times are shown in the reader's zone; UTC stays in the title.
    first = page.locator("#watches time").first
    utc = first.get_attribute("datetime") or ""
    local = datetime.fromisoformat(utc.replace("Z", "+00:00")).astimezone(ZoneInfo(ZONE))
    expect(first).to_contain_text(f"{local:%-I:%M}")
    assert "UTC" in (first.get_attribute("title") or "")

    page.get_by_role("link", name="mfa-en").click()
    expect(page.locator("h1")).to_have_text("mfa-en")
    title = NEWEST["texts"]["en"]["title"] + " (updated)"
    page.get_by_role("link", name=title).click()
    expect(page.locator("#timeline tbody tr")).to_have_count(3)
    screenshot(page, "web-2-timeline")

    page.get_by_label("A 1").check()
    page.get_by_label("B 2").check()
    page.get_by_role("button", name="Compare selected versions").click()
    expect(page).to_have_url(
        f"{archive.url}/watch/mfa-en/diff?key={NEWEST_KEY.replace('/', '%2F')}&a=1&b=2"
    )
    expect(page.locator("del")).to_have_text(SENTENCE_OLD)
    expect(page.locator("ins")).to_have_text(SENTENCE_NEW)
    expect(page.locator("details.fold").first).not_to_have_attribute("open", "")
    page.keyboard.press("j")  # next change
    expect(page.locator(".chg.current")).to_contain_text(SENTENCE_NEW)
    expect(page.locator(".stepper .position")).to_have_text("1 / 1")
    screenshot(page, "web-3-diff-inline")
    page.get_by_role("link", name="Side by side").click()
    expect(page.locator(".row.changed .left del")).to_have_text(SENTENCE_OLD)
    expect(page.locator(".row.changed .right ins")).to_have_text(SENTENCE_NEW)
    screenshot(page, "web-4-diff-side")

    page.get_by_label("Noise").check()
    page.get_by_label("Note").fill("a reworded offer, checked with the ministry")
    page.get_by_role("button", name="Save").click()
    expect(page).to_have_url(
        f"{archive.url}/watch/mfa-en/diff?key={NEWEST_KEY.replace('/', '%2F')}&a=1&b=2&view=side"
    )
    page.get_by_role("link", name=title).first.click()
    row = page.locator("#v2")
    expect(row.locator(".badge.noise")).to_have_text("noise")
    expect(row).to_contain_text("a reworded offer, checked with the ministry")
    screenshot(page, "web-5-annotated")

    search = page.get_by_role("searchbox", name="Search")
    search.fill("stands ready")
    search.press("Enter")
    hit = page.locator(".results li.hit").first
    expect(hit).to_contain_text("only in earlier versions")
    expect(hit.locator("mark").first).to_have_text("stands")
    screenshot(page, "web-6-search")
    page.context.close()


ARCHIVED = """<!doctype html>
<html><head><title>Archived statement</title></head>
<body><main><article>
<h1>Statement on the water of the Syr Darya</h1>
<p>The Ministry of Foreign Affairs announces an agreement on the shared use of the water of
the Syr Darya, signed in Astana by the ministers of the three countries concerned.</p>
<p>The agreement sets the volumes released in the growing season and establishes a joint
commission that meets twice a year to review them.</p>
<p>The parties reaffirmed their commitment to regional cooperation on water and energy.</p>
</article></main>
<script>
document.title = "pwned";
try { parent.document.title = "pwned"; } catch (e) {}
try { localStorage.setItem("pwned", "1"); } catch (e) {}
try { parent.localStorage.setItem("pwned", "1"); } catch (e) {}
try { document.cookie = "pwned=1; path=/"; } catch (e) {}
</script>
<img src="x" onerror="parent.document.title = 'pwned'">
</body></html>"""


@pytest.fixture
def hostile_site(tmp_path: Path) -> Iterator[str]:
    """A real HTTP server with a statement page that carries a script."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "statement.html").write_text(ARCHIVED, encoding="utf-8")
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=site)
    )
    threading.Thread(target=server.serve_forever, args=(POLL,), daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/statement.html"
    server.shutdown()
    server.server_close()


@pytest.mark.process
@pytest.mark.browser
def test_a_script_in_an_archived_page_never_runs_in_the_ui_origin(
    browser: Browser, hostile_site: str, tmp_path: Path
) -> None:
    config = write_config(tmp_path, None, languages=())
    with config.open("a", encoding="utf-8") as out:
        out.write(f'[[watch]]\nid = "hostile"\nurl = "{hostile_site}"\nprofile = "generic"\n')
    result = monitor_cli(config, "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert add_user(config, "ann", "viewer").returncode == 0
    # The control: loaded from its own site, the script does run (and would have in ours).
    # In a context of its own: cookies are per host, not per port.
    control = open_page(browser)
    control.goto(hostile_site)
    expect(control).to_have_title("pwned")
    control.context.close()
    page = open_page(browser)
    messages: list[str] = []
    page.on("console", lambda message: messages.append(message.text))
    with serving(config) as url:
        log_in(page, url, "ann")
        page.get_by_role("link", name="Watches", exact=True).click()
        page.get_by_role("link", name="hostile").click()
        page.get_by_role("link", name="Statement on the water of the Syr Darya").click()
        page.get_by_role("link", name="#1").click()
        # The click only starts the navigation: read the title once the version's page is in.
        ui_title = "Statement on the water of the Syr Darya #1 — monitor"
        expect(page).to_have_title(ui_title)
        page.get_by_role("link", name="Page in a sandbox").click()
        frame = page.frame_locator("iframe.archived")
        expect(frame.locator("h1")).to_have_text("Statement on the water of the Syr Darya")
        page.wait_for_timeout(500)  # give any script or error handler time to run
        screenshot(page, "web-7-archived-in-sandbox")
        assert page.title() == ui_title  # the UI's own title, untouched
        assert page.evaluate("localStorage.getItem('pwned')") is None
        assert not [c for c in page.context.cookies() if c["name"] == "pwned"]
        assert any("sandboxed" in m and "script" in m.lower() for m in messages), messages
        # The sanitised view carries the text and none of the script.
        page.get_by_role("link", name="Sanitised page").click()
        expect(page.locator(".sanitised h1")).to_have_text(
            "Statement on the water of the Syr Darya"
        )
        assert page.locator(".sanitised script, .sanitised img").count() == 0
        assert page.title() != "pwned"
        # Opened on its own, the archived path is sandboxed by its header alone.
        frame_src = f"{url}/archive/hostile/1"
        page.goto(frame_src)
        expect(page.locator("h1")).to_have_text("Statement on the water of the Syr Darya")
        page.wait_for_timeout(300)
        assert page.title() == "Archived statement"
        page.goto(url + "/")
        assert page.evaluate("localStorage.getItem('pwned')") is None
    page.context.close()
