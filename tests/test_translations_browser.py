"""A journalist in real headless Chromium: from the front page filtered to Russian edits,
a diff, then the statement edited in Russian only, its English version marked unchanged
beside it, an annotation confirmed when saved and found again by
search. Screenshots go to tests/artifacts/."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, expect

from tests.test_translations import NEWEST, RU_NEW, Served, served, today  # noqa: F401
from tests.test_web_browser import browser, open_page  # noqa: F401
from tests.webui import PASSWORD, screenshot

NOTE = "tonnage raised in the Russian text only"


@pytest.mark.browser
def test_an_edit_in_russian_beside_the_unchanged_english_annotated_and_found_again(
    browser: Browser,  # noqa: F811
    served: Served,  # noqa: F811
) -> None:
    page = open_page(browser)
    page.goto(f"{served.url}/")
    page.get_by_label("Username").fill("ed")
    page.get_by_label("Password").fill(PASSWORD)
    page.locator("form.login button[type=submit]").click()

    # The whole walk: the front page, filtered to Russian edits; the diff; the statement.
    expect(page.locator("h1")).to_have_text("Latest changes")
    page.get_by_label("Language").select_option("ru")
    page.get_by_label("Kind").select_option("edited")
    page.get_by_role("button", name="Filter").click()
    edit = page.locator("#changes tr.change")
    expect(edit).to_have_count(1)
    edit.first.get_by_role("link", name="Diff").click()
    expect(page.locator("ins").first).to_contain_text("500")
    screenshot(page, "translations-0-diff-from-the-front-page")
    page.go_back()
    edit.first.get_by_role("link", name=NEWEST["texts"]["ru"]["title"]).click()
    russian = f"/watch/mfa-ru/statement?key=ru%2F{NEWEST['id']}"
    expect(page).to_have_url(served.url + russian)

    # The Russian statement, its English and Kazakh versions side by side.
    expect(page.locator(".languages .divergence")).to_have_text(
        f"Edited in Russian; English and Kazakh unchanged since {today()}"
    )
    english = page.locator('.language[data-language="en"]')
    expect(english.locator(".badge.unchanged")).to_have_text(f"unchanged since {today()}")
    expect(english.locator("h3")).to_have_text(NEWEST["texts"]["en"]["title"])
    expect(page.locator('.language[data-language="ru"] .badge.changed')).to_have_text(
        f"edited {today()}"
    )
    screenshot(page, "translations-1-side-by-side")

    # Its latest change, annotated: the page confirms, without any script of ours needed.
    page.locator('.language[data-language="ru"]').get_by_role("link", name="Latest change").click()
    expect(page.locator("ins").first).to_contain_text("500")
    page.get_by_label("Significant").check()
    page.get_by_label("Note").fill(NOTE)
    page.get_by_role("button", name="Save").click()
    expect(page.locator("p.notice")).to_have_text("Annotation saved.")
    expect(page.locator("#annotations")).to_contain_text(NOTE)
    screenshot(page, "translations-2-annotation-saved")
    page.reload()
    expect(page.locator("p.notice")).to_have_count(0)  # once

    # Found again by search, from any page: by the note, and on the statement's hit.
    search = page.get_by_role("searchbox", name="Search")
    search.fill("tonnag* Russian")
    search.press("Enter")
    expect(page.locator(".notes .note-hit")).to_contain_text(NOTE)
    screenshot(page, "translations-3-found-by-note")
    page.locator(".notes .note-hit a").first.click()
    expect(page.locator("#annotations")).to_contain_text(NOTE)  # the snapshot of version 2
    search = page.get_by_role("searchbox", name="Search")
    search.fill(f'"{RU_NEW}"')
    search.press("Enter")
    expect(page.locator(".results li.hit").first.locator(".annotation")).to_contain_text(NOTE)
    page.context.close()
