"""Site profiles and the shared extraction helpers on the corpus pages (tests/quality/pages)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from monitor.compare import _as_result
from monitor.diff import compare
from monitor.extract import (
    Extraction,
    Link,
    Statement,
    Target,
    classify_unusable,
    normalize_text,
    normalize_url,
    paragraph_texts,
    suspicious_shrink,
)
from monitor.fetch import FetchRequest, FetchResult
from monitor.sites import get_profile
from monitor.sites.generic import is_date_line, parse_date

PAGES = Path(__file__).resolve().parent / "quality" / "pages"
MID = "https://mid.ru/ru/foreign_policy/news/2061845/"
STATE = "https://www.state.gov/extending-humanitarian-assistance-for-flood-affected-communities-in-central-asia/"


def extract(page: str, url: str) -> Extraction:
    return get_profile(None, url).extract(_as_result((PAGES / page).read_bytes(), url), Target(url))


def response(body: str | bytes, status: int = 200, **headers: str) -> FetchResult:
    raw = body.encode() if isinstance(body, str) else body
    return FetchResult(
        request=FetchRequest("https://mfa.gov.example/en/press/news/1"),
        url="https://mfa.gov.example/en/press/news/1",
        requested_at=datetime.now(UTC),
        status=status,
        headers=[
            ("Content-Type", "text/html"),
            *((k.replace("_", "-"), v) for k, v in headers.items()),
        ],
        body=raw,
    )


def test_profiles_are_chosen_from_the_url() -> None:
    assert get_profile(None, MID).name == "midru"
    assert get_profile(None, "https://www.mid.ru/en/foreign_policy/news/1/").name == "midru"
    assert get_profile(None, STATE).name == "stategov"
    assert get_profile(None, "https://mfa.gov.example/x").name == "generic"
    assert get_profile(None, "https://mid.ru.example.org/x").name == "generic"


def test_midru_statement_page_is_structured_and_without_furniture() -> None:
    [statement] = extract("midru/base.html", MID).statements
    assert statement.key == "2061845"
    assert statement.title.startswith("Заявление МИД России в связи с решением Совета ЕС")
    assert statement.published == "2026-11-20T14:35:00+03:00"
    assert statement.language == "ru"
    assert len(statement.paragraphs) == 9
    assert statement.paragraphs[0].startswith("20 ноября Совет Европейского союза")
    text = " ".join(statement.paragraphs)
    for furniture in ("Просмотров", "Поделиться", "Версия для печати", "Сийярто", "Смоленская"):
        assert furniture not in text
    assert statement.attachments == (
        Link(
            "https://mid.ru/upload/iblock/3f2/zayavlenie_20112026_prilozhenie.pdf",
            "Приложение (PDF, 214 КБ)",
        ),
    )
    assert statement.links == ()


def test_midru_listing_gives_one_statement_per_item_and_a_date_window() -> None:
    url = "https://mid.ru/ru/foreign_policy/news/"
    extraction = extract("midru/listing.html", url)
    assert extraction.is_listing and extraction.problem is None
    assert [s.key for s in extraction.statements] == ["2061845", "2061839", "2061802"]
    second = extraction.statements[1]
    assert second.url == "https://mid.ru/ru/foreign_policy/news/2061839/"  # utm_source dropped
    assert second.published == "2026-11-20T12:10:00+03:00"
    assert second.paragraphs == ("Обсуждены актуальные вопросы двусторонней повестки дня.",)
    assert extraction.window_start == "2026-11-19T18:40:00+03:00"


def test_stategov_statement_page_is_structured_and_without_furniture() -> None:
    [statement] = extract("stategov/base.html", STATE).statements
    assert statement.title == (
        "Extending Humanitarian Assistance for Flood-Affected Communities in Central Asia"
    )
    assert statement.published == "2026-11-20"
    assert statement.language == "en"
    assert statement.paragraphs[0] == "Press Statement · Secretary of State"
    assert len(statement.paragraphs) == 8
    text = " ".join(statement.paragraphs)
    for furniture in ("Tags", "Related Articles", "C5+1 Ministerial Joint Statement", "FOIA"):
        assert furniture not in text
    assert [link.href for link in statement.links] == [
        "https://www.state.gov/u-s-relations-with-kazakhstan/"
    ]
    assert statement.attachments[0].href.endswith("Central-Asia-Flood-Response-Fact-Sheet.pdf")


def test_generic_finds_the_article_and_its_visible_date() -> None:
    [statement] = extract(
        "generic/base.html", "https://mfa.gov.example/en/press/news/8815"
    ).statements
    assert statement.published == "2026-11-20"
    assert len(statement.paragraphs) == 9
    text = " ".join(statement.paragraphs)
    for furniture in ("Views", "USD", "Latest news", "cookies", "Read also", "Turkic States"):
        assert furniture not in text
    assert statement.links == ()  # the rotating "Read also" teaser is not a link of the statement
    assert len(statement.attachments) == 1


@pytest.mark.parametrize(
    ("body", "headers", "reason"),
    [
        (
            "<html><title>Statement</title><body>" + "Long text. " * 400 + "</body></html>",
            {"cf_mitigated": "challenge"},
            "Cloudflare challenge",
        ),
        ("<html><body><p>Please wait</p></body></html>", {"server": "ddos-guard"}, "DDoS-Guard"),
        ("<html><head><title>Войти</title></head><body>…</body></html>", {}, "login wall"),
        (
            "<html><head><title>Error 404</title></head><body>" + "x " * 900 + "</body></html>",
            {},
            "error page",
        ),
        ("<html><body><h1>Oops</h1><p>Page not found.</p></body></html>", {}, "soft 404"),
        ("<html><body><p>" + "Statement text. " * 300 + "</p>", {}, "truncated"),
    ],
)
def test_stand_in_pages_are_problems(body: str, headers: dict[str, str], reason: str) -> None:
    problem = classify_unusable(response(body, **headers))
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "body",
    [
        # Titles that start like error or maintenance pages but are statements.
        "<html><head><title>500 tonnes of humanitarian aid sent</title></head><body>"
        + "<p>Text.</p>" * 300
        + "</body></html>",
        "<html><head><title>Maintenance of international peace and security</title></head>"
        "<body>" + "<p>Text.</p>" * 300 + "</body></html>",
        # A long statement page with a feedback captcha and a proxy vendor's script.
        "<html><head><title>Statement</title><script src='/__qrator/q.js'></script></head>"
        "<body><div class='g-recaptcha'></div>"
        + "<p>Statement text here.</p>" * 200
        + "</body></html>",
    ],
)
def test_real_statements_are_not_problems(body: str) -> None:
    assert classify_unusable(response(body)) is None


def test_api_json_is_not_read_as_html() -> None:
    body = b'{"title": "Under maintenance", "body": "<p>maintenance of peace'
    result = response(body, content_type="application/json")
    result.headers = [("Content-Type", "application/json")]
    assert classify_unusable(result) is None
    assert classify_unusable(response(b"maintenance window", status=503)) == (
        "maintenance page (HTTP 503)"
    )


def statement(paragraphs: list[str], **fields: object) -> Statement:
    return Statement("k", "https://x", str(fields.pop("title", "T")), tuple(paragraphs), **fields)  # type: ignore[arg-type]


def test_suspicious_shrink_flags_empty_and_tiny_text_only() -> None:
    words = " ".join(["word"] * 100)
    old = statement([words])
    assert "empty" in str(suspicious_shrink(old, statement([])))
    assert "shrank from 100 to 10 words" in str(suspicious_shrink(old, statement(["w " * 10])))
    assert suspicious_shrink(old, statement([" ".join(["word"] * 80)])) is None
    assert "no title" in str(suspicious_shrink(old, statement([words], title="")))
    assert suspicious_shrink(None, old) is None


def test_normalisation_keeps_quotes_and_drops_invisible_churn() -> None:
    assert normalize_text("a\u00a0b\u2009c\u202fd  \n e") == "a b c d e"
    assert normalize_text("Ка\u00adзах\u200bстан\u200e\ufeff") == "Казахстан"
    assert normalize_text("e\u0301") == "é"
    for quoted in ("«мир»", "“peace”", '"peace"', "it’s", "it's", "—", "-"):
        assert normalize_text(quoted) == quoted
    assert normalize_text("«мир»") != normalize_text('"мир"')


def test_urls_lose_tracking_parameters_only() -> None:
    assert normalize_url(
        "/a/b;jsessionid=XYZ?id=5&utm_source=tg&fbclid=1#top", "https://x.kz/"
    ) == ("https://x.kz/a/b?id=5")
    assert normalize_url("https://x.kz/p?lang=en&page=2") == "https://x.kz/p?lang=en&page=2"


def test_paragraphs_follow_blocks_not_inline_markup() -> None:
    from bs4 import BeautifulSoup

    html = (
        "<div><p>The Minis<span>try</span> <b>notes</b>, that<br>it agrees.</p>"
        "Loose text one<br>Loose text two<div>In a div</div><ul><li>Item</li></ul></div>"
    )
    assert paragraph_texts(BeautifulSoup(html, "lxml")) == [
        "The Ministry notes, that it agrees.",
        "Loose text one",
        "Loose text two",
        "In a div",
        "Item",
    ]


def test_statement_json_is_unchanged_without_attachments() -> None:
    plain = statement(["P."])
    assert b"attachments" not in plain.to_json()  # hashes of archived versions stay valid
    pdf = Link("https://x/a.pdf", "A")
    with_pdf = statement(["P."], attachments=(pdf,))
    assert Statement.from_json(with_pdf.to_json()) == with_pdf
    assert "Attachments:\n- A <https://x/a.pdf>" in with_pdf.render_text()


def test_diff_ignores_spacing_and_where_a_link_is_filed() -> None:
    pdf = Link("https://x/a.pdf?utm_source=x", "A")
    old = statement(["Astana , 20 November. Kazakh stan agrees."], links=(pdf,))
    new = statement(["Astana, 20 November. Kazakhstan agrees."], attachments=(pdf,))
    assert compare(old, new).changes == []
    gone = compare(old, statement(["Astana, 20 November. Kazakhstan agrees."]))
    [change] = gone.changes
    assert change.field == "attachments" and change.where == "attachment removed"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("20.11.2026", "2026-11-20"),
        ("20.11.2026 14:35", "2026-11-20T14:35"),
        ("November 20, 2026", "2026-11-20"),
        ("20 ноября 2026 г.", "2026-11-20"),
        ("2026-11-20", "2026-11-20"),
        ("Wednesday, 25 November 2026 10:01", "2026-11-25T10:01"),
    ],
)
def test_date_lines(text: str, iso: str) -> None:
    assert is_date_line(text)
    assert parse_date(text) == iso


def test_sentences_with_dates_are_not_date_lines() -> None:
    assert not is_date_line("The summit was held on 20 November 2026 in Tashkent.")
    assert not is_date_line("Views: 1204")
    assert is_date_line("14:35")
