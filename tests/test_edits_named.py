"""Edits a reader must be told about, named with their own words in the summary and in
`removed`/`added` — not only "link changed": a photo and its caption, a button-like link, a
renamed title, a number in a table or list, an attachment.

The page (tests/data/edits/consular-report.html) is a ministry press release in the common
CMS shape: header and menu, breadcrumbs, an <article> with a figure, a table, a list, call
to action links and an annex; each case edits it as an editor would.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from monitor.compare import compare_pages
from monitor.diff import compare
from monitor.extract import Statement
from monitor.inspect import extract_page
from monitor.sites import get_profile
from tests.conftest import monitor_cli

PAGE = (Path(__file__).parent / "data" / "edits" / "consular-report.html").read_text("utf-8")
URL = "https://mfa.gov.example/en/press/news/9001"
FIGURE = re.search(r"<figure.*?</figure>\n", PAGE, re.S)[0]  # type: ignore[index]
CAPTION = "The consular service hall in Astana received more than 40,000 visitors in 2025."
TITLE = "Annual report on consular assistance to citizens abroad published"


def verdict(old: str, new: str, url: str = URL) -> dict[str, Any]:
    assert old != new
    return compare_pages(old.encode(), new.encode(), url)


def named(result: dict[str, Any], *words: str) -> None:
    """Each of `words` is in the summary and in one of the removed/added fragments."""
    assert result["kind"] == "edited" and result["alert"] is True, result
    fragments = [*result["removed"], *result["added"]]
    for word in words:
        assert word in result["summary"], (word, result["summary"])
        assert any(word in fragment for fragment in fragments), (word, fragments)


def test_a_removed_photo_is_named_by_its_caption() -> None:
    result = verdict(PAGE, PAGE.replace(FIGURE, ""))
    named(result, CAPTION)
    assert result["removed"] == [CAPTION]


def test_an_added_photo_is_named_by_its_caption() -> None:
    photo = (
        '<figure class="image"><img src="/files/images/2026/minister-signs.jpg" '
        'alt="The Minister signs the report"><figcaption>The Minister signed the report on '
        "11 March.</figcaption></figure>\n"
    )
    named(verdict(PAGE, PAGE.replace(FIGURE, FIGURE + photo)), "The Minister signed the report")


def test_a_photo_without_caption_is_named_by_its_alt_text_in_a_gov_kz_statement() -> None:
    body = (
        "<p>The Ministry of Foreign Affairs hosted a briefing for the diplomatic corps on the "
        "results of the year.</p>\n"
        '<p><img src="/uploads/2026/12/briefing.jpg" alt="Deputy Minister addresses the '
        'diplomatic corps in Astana"></p>\n'
        "<p>The participants discussed the agenda of the coming year.</p>"
    )
    item = {"id": 1061500, "title": "Briefing for the diplomatic corps", "body": body}
    url = "https://www.gov.kz/memleket/entities/mfa/press/news/details/1061500?lang=en"
    without = {**item, "body": re.sub(r"<p><img[^>]*></p>\n", "", body)}
    result = verdict(json.dumps(item), json.dumps(without), url)
    named(result, "Deputy Minister addresses the diplomatic corps in Astana")
    # An image without a describing alt (a file name, one word) says nothing.
    plain = body.replace("Deputy Minister addresses the diplomatic corps in Astana", "IMG_2041.jpg")
    gone = re.sub(r"<p><img[^>]*></p>\n", "", plain)
    result = verdict(json.dumps({**item, "body": plain}), json.dumps({**item, "body": gone}), url)
    assert result["kind"] == "unchanged"


@pytest.mark.parametrize(
    ("link", "words"),
    [
        (
            '<p><a class="btn btn-primary" href="/en/press/reports/consular-2025">'
            "Read the full text</a></p>\n",
            "Read the full text",
        ),
        (
            '<p><a class="button" href="/files/reports/consular-report-2025.pdf">'
            "Download</a></p>\n",
            "Download",
        ),
    ],
    ids=["read-the-full-text", "download"],
)
def test_a_removed_button_like_link_is_named_by_its_text(link: str, words: str) -> None:
    assert link in PAGE
    result = verdict(PAGE, PAGE.replace(link, ""))
    named(result, words)
    # Where it pointed is said too, after its words.
    assert re.search(rf"(?:Link|Attachment) removed: “{words}” <https://", result["summary"])


def test_a_removed_russian_full_text_button_is_named() -> None:
    russian = PAGE.replace('lang="en"', 'lang="ru"').replace(
        ">Read the full text<", ">Полный текст<"
    )
    button = '<p><a class="btn btn-primary" href="/en/press/reports/consular-2025">Полный текст'
    button += "</a></p>\n"
    named(verdict(russian, russian.replace(button, "")), "Полный текст")


def test_a_renamed_title_names_the_old_and_the_new_title_whole() -> None:
    renamed = "Report on consular assistance in 2025 published"
    result = verdict(PAGE, PAGE.replace(TITLE, renamed))
    assert f"Title: “{TITLE}” → “{renamed}”" in result["summary"]
    assert "Annual report" in result["removed"] and "in 2025" in result["added"]


def test_a_changed_number_in_a_table_is_named_with_its_row() -> None:
    result = verdict(PAGE, PAGE.replace("<td>2,315</td>", "<td>2,135</td>"))
    named(result, "2,315", "2,135")
    assert result["removed"] == ["2,315"] and result["added"] == ["2,135"]
    # A lone cell says nothing by itself: the summary gives the text before it.
    assert "after “Evacuations from crisis areas · 1,204”" in result["summary"]


def test_a_changed_number_in_a_list_is_named() -> None:
    result = verdict(PAGE, PAGE.replace("to 10 working days", "to 15 working days"))
    named(result, "10", "15")
    assert result["removed"] == ["10"] and result["added"] == ["15"]


def test_a_removed_attachment_is_named_by_its_title() -> None:
    annex = (
        '<p>Annex: <a href="/files/reports/consular-statistics-2025.xlsx">Statistical tables '
        "(XLSX, 84 KB)</a></p>\n"
    )
    result = verdict(PAGE, PAGE.replace(annex, ""))
    named(result, "Statistical tables (XLSX, 84 KB)")
    assert "Attachment removed: “Statistical tables (XLSX, 84 KB)” <https://" in result["summary"]
    assert [c["field"] for c in result["changes"]].count("attachments") == 1


def test_the_cli_json_names_the_changed_words(tmp_path: Path) -> None:
    (tmp_path / "old.html").write_text(PAGE, encoding="utf-8")
    (tmp_path / "new.html").write_text(PAGE.replace(FIGURE, ""), encoding="utf-8")
    result = monitor_cli(
        None, "compare", str(tmp_path / "old.html"), str(tmp_path / "new.html"),
        "--url", URL, "--format", "json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["removed"] == [CAPTION] and CAPTION in shown["summary"]


def _statement(published: str) -> Statement:
    return Statement(
        "en/1", "https://www.gov.kz/x", "Title", ("Text of the statement.",), published
    )


@pytest.mark.parametrize(
    ("old", "new", "changed"),
    [
        ("2026-11-03T10:15:00.000+05:00", "2026-11-03T10:15", False),
        ("2026-11-03T10:15:00.000+05:00", "2026-11-03", False),
        ("2026-11-03T10:15:00+05:00", "2026-11-03T05:15:00Z", False),
        ("2026-11-03T10:15:00.000+05:00", "2026-11-03T10:16", True),
        ("2026-11-03", "2026-11-04", True),
        ("2026-11-03T10:15:00+05:00", "2026-11-03T10:15:00+06:00", True),
    ],
)
def test_a_date_read_less_precisely_is_not_an_edit(old: str, new: str, changed: bool) -> None:
    result = compare(_statement(old), _statement(new))
    assert result.changed is changed
    if changed:
        assert result.summary.startswith("Date:")


# Cases that depend on what the `generic` profile extracts (monitor/sites/generic.py): a lone
# call-to-action link in its own block is content (a link of the content region).
def test_a_removed_button_in_its_own_block_is_named() -> None:
    button = (
        '<div class="actions"><a class="btn btn-primary" href="/en/data/consular-2025">'
        "Download the dataset</a></div>\n"
    )
    page = PAGE.replace('</div>\n<div class="share">', f'{button}</div>\n<div class="share">')
    named(verdict(page, PAGE), "Download the dataset")


def test_a_renamed_heading_under_an_unchanged_og_title_is_named() -> None:
    heading = f'<h1 class="node__title">{TITLE}</h1>'
    renamed = PAGE.replace(heading, '<h1 class="node__title">Consular assistance in 2025</h1>')
    result = verdict(PAGE, renamed)
    named(result, "Consular assistance in 2025")
    assert f"Title: “{TITLE}” → “Consular assistance in 2025”" in result["summary"]


def test_a_site_logo_heading_is_not_the_title() -> None:
    """An <h1> in the site's banner names the site, not the page: the og:title stays the
    title, so renaming the page is still seen."""
    logo = '<a class="logo" href="/"><img src="/img/logo.svg" alt="Ministry of Foreign Affairs">'
    page = PAGE.replace(logo, '<h1 class="logo">Ministry of Foreign Affairs</h1><a href="/">')
    page = page.replace(f'<h1 class="node__title">{TITLE}</h1>', f"<h2>{TITLE}</h2>")
    renamed = page.replace(TITLE, "Report on consular assistance in 2025 published")
    result = verdict(page, renamed)
    assert result["summary"].startswith(f"Title: “{TITLE}” → “Report on consular"), result


UNCAPTIONED = (
    '<p><img src="/files/images/2026/minister.jpg" alt="The Minister presents the report to '
    'journalists"></p>\n'
)


def test_a_removed_photo_without_caption_is_named_by_its_alt_text() -> None:
    page = PAGE.replace(FIGURE, FIGURE + UNCAPTIONED)
    result = verdict(page, PAGE)
    named(result, "The Minister presents the report to journalists")
    assert result["summary"].startswith("Figure removed: “The Minister presents")
    assert result["removed"] == ["The Minister presents the report to journalists"]


@pytest.mark.parametrize(
    "image",
    [
        '<p><img src="/files/images/2026/IMG_2041.jpg" alt="IMG_2041.jpg"></p>\n',  # a file name
        '<p><img src="/files/images/2026/minister.jpg" alt="Minister"></p>\n',  # one word
        '<p><img src="/img/pdf.png" width="16" height="16" alt="PDF document icon"></p>\n',
        # A thumbnail linking to another page is a teaser for it, not a photo of this one.
        '<p><a href="/en/press/news/8990"><img src="/files/images/2026/visit.jpg" '
        'alt="The Minister visits the consulate in Dubai"></a></p>\n',
        # Hidden from the reader.
        '<p style="display: none"><img src="/files/images/2026/minister.jpg" '
        'alt="The Minister presents the report to journalists"></p>\n',
    ],
    ids=["file-name", "one-word", "icon", "teaser", "hidden"],
)
def test_a_picture_that_says_nothing_about_itself_is_not_a_figure(image: str) -> None:
    page = PAGE.replace(FIGURE, FIGURE + image)
    [statement] = extract_page(page.encode(), URL, get_profile(None, URL))["statements"]
    assert statement["figures"] == [CAPTION]


def test_a_date_widget_among_the_paragraphs_is_not_the_publication_date() -> None:
    """Today's date in a widget after the text moves on by itself: no alert, and the page's
    own dateline (before the text) stays its date."""
    widget = '<div class="today">Sunday, 16 April 2026 13:20</div>\n'
    anchor = "<p>The main priorities for 2026 are:</p>"
    old = PAGE.replace(anchor, widget + anchor)
    new = old.replace("Sunday, 16 April 2026 13:20", "Monday, 17 April 2026 09:05")
    assert verdict(old, new)["kind"] == "unchanged"
    undated = old.replace('<div class="node__date">12 March 2026</div>', "")
    moved = undated.replace("Sunday, 16 April 2026 13:20", "Monday, 17 April 2026 09:05")
    assert verdict(undated, moved)["kind"] == "unchanged"


def test_a_photo_of_a_short_notice_is_a_figure_too() -> None:
    """A notice too short for trafilatura is read by our block scoring; its photos are
    figures all the same."""
    notice = (
        "<!DOCTYPE html><html><head><title>Briefing</title></head><body>"
        '<nav><a href="/">Home</a></nav><main><h1>Briefing for the diplomatic corps</h1>'
        "<p>The Ministry hosted a briefing for the diplomatic corps.</p>"
        '<figure><img src="/a.jpg" alt="Deputy Minister"><figcaption>The Deputy Minister '
        "addressed the corps in Astana.</figcaption></figure>"
        '<p><img src="/b.jpg" alt="Ambassadors at the briefing in the main hall"></p>'
        "</main></body></html>"
    )
    [statement] = extract_page(notice.encode(), URL, get_profile(None, URL))["statements"]
    assert statement["paragraphs"] == ["The Ministry hosted a briefing for the diplomatic corps."]
    assert statement["figures"] == [
        "The Deputy Minister addressed the corps in Astana.",
        "Ambassadors at the briefing in the main hall",
    ]
    photo = '<p><img src="/b.jpg" alt="Ambassadors at the briefing in the main hall"></p>'
    result = verdict(notice, notice.replace(photo, ""))
    named(result, "Ambassadors at the briefing in the main hall")


def test_figures_are_diffed_and_archived_apart_from_the_text() -> None:
    plain = _statement("2026-11-03")
    # A statement without figures keeps the bytes (and hash) it was archived with.
    assert b"figures" not in plain.to_json()
    photo = "The Minister signed the report on 11 March."
    # replace(), not the instance's __dict__: that also holds the statement's cached JSON
    shown = replace(plain, figures=(photo,))
    assert Statement.from_json(shown.to_json()) == shown
    assert compare(plain, shown).summary == f"Figure added: “{photo}”"
    recaptioned = replace(plain, figures=(photo.replace("11", "12"),))
    result = compare(shown, recaptioned)
    assert result.summary == f"Figure caption: “{photo}” → “{photo.replace('11', '12')}”"
    assert result.removed == ["11"] and result.added == ["12"]
    assert result.score >= 0.4
