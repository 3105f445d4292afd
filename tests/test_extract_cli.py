"""`monitor extract` on saved pages, and the generic profile's fixed noise rules inside the
article element (the furniture sits in <article>, where a sidebar rule cannot see it)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from monitor.cli import main
from monitor.compare import compare_pages

URL = "https://mfa.gov.example/ru/press/news/9001"

BODY = (
    "Министерство иностранных дел Республики Казахстан сообщает, что 20 ноября 2026 года в "
    "Астане состоялись переговоры с делегацией соседнего государства по вопросам торговли.",
    "Стороны обсудили широкий круг вопросов двустороннего сотрудничества, включая транспорт, "
    "энергетику и гуманитарные связи, и договорились продолжить диалог в следующем году.",
    "По итогам встречи подписан меморандум о сотрудничестве в области образования и науки, "
    "а также совместное заявление о развитии приграничной торговли между двумя странами.",
    "Казахстанская сторона подчеркнула готовность к расширению транзитных перевозок через "
    "территорию страны и к совместной модернизации пограничных пунктов пропуска.",
)


def page(
    *,
    heading: str = "Заявление МИД о переговорах с делегацией",
    views: str = "4 116",
    clock: str = "25 ноября 2026, 10:01",
    weather: str = "Астана +5 °C",
    slides: tuple[str, ...] = ("Президент принял послов иностранных государств", "Брифинг"),
    related: tuple[str, ...] = ("Казахстан и Узбекистан подписали соглашение о границе",),
    shares: str = "15",
    cookie: bool = True,
    caption: str | None = "Министр иностранных дел встретился с делегацией в Астане.",
    button: bool = True,
    body: tuple[str, ...] = BODY,
    rate: str = "1 250",
) -> bytes:
    """A ministry page whose furniture sits inside <article>."""
    figure = (
        f'<figure><img src="/img/9001.jpg" alt="{caption}"><figcaption>{caption}'
        "</figcaption></figure>"
        if caption
        else ""
    )
    slide_html = "".join(
        f'<div class="slide"><a href="/ru/news/{i}">{s}</a></div>' for i, s in enumerate(slides)
    )
    related_html = "".join(
        f'<li><a href="/ru/news/r{i}">{r}</a></li>' for i, r in enumerate(related)
    )
    paragraphs = "".join(f"<p>{p}</p>" for p in body)
    return f"""<!DOCTYPE html><html lang="ru"><head><meta charset="utf-8">
<title>{heading} | МИД</title></head><body>
<nav><a href="/">Главная</a> <a href="/ru/news">Новости</a></nav>
<main><article>
<div class="widgets"><span>{clock}</span> <span>{weather}</span></div>
<h1>{heading}</h1>
<div class="meta"><span>20.11.2026 14:35</span> <span>Просмотров: {views}</span></div>
<p>Просмотров: {views}</p>
<p>{views}</p>
{figure}
{paragraphs}
<table><tr><td>Товарооборот, млн долларов</td><td>{rate}</td></tr>
<tr><td>Рост за год</td><td>12%</td></tr></table>
<div class="carousel">{slide_html}</div>
<p>Поделиться: {shares}</p>
{'<p><a class="btn" href="/ru/documents/9001">Полный текст</a></p>' if button else ""}
<p><a href="/files/9001.pdf">Совместное заявление (PDF)</a></p>
<h3>Читайте также</h3><ul>{related_html}</ul>
{"<p>Мы используем cookies. Продолжая, вы соглашаетесь с политикой.</p>" if cookie else ""}
</article></main>
<footer>© 2026 МИД</footer></body></html>""".encode()


def run_extract(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict]]:
    code = main(["extract", *args])
    lines = capsys.readouterr().out.splitlines()
    return code, [json.loads(line) for line in lines]


def test_extract_prints_one_json_line_per_file_gzipped_or_not(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = tmp_path / "a.html"
    plain.write_bytes(page())
    packed = tmp_path / "b.html.gz"
    packed.write_bytes(gzip.compress(page(heading="Второе заявление МИД о переговорах")))
    code, lines = run_extract(capsys, str(plain), str(packed), "--url", URL, "--format", "json")
    assert code == 0
    assert [line["file"] for line in lines] == [str(plain), str(packed)]
    for line in lines:
        assert set(line) == {"file", "profile", "problem", "statements"}
        assert line["profile"] == "generic" and line["problem"] is None
        [statement] = line["statements"]
        assert set(statement) == {
            *("key", "title", "published", "language", "paragraphs", "links", "attachments"),
            "figures",
        }
        assert statement["published"] == "2026-11-20T14:35"
        assert statement["language"] == "ru"
        assert all(isinstance(p, str) for p in statement["paragraphs"])
        assert {
            "href": "https://mfa.gov.example/files/9001.pdf",
            "text": "Совместное заявление (PDF)",
        } in statement["attachments"]
    assert lines[1]["statements"][0]["title"] == "Второе заявление МИД о переговорах"
    body = "\n".join(lines[0]["statements"][0]["paragraphs"])
    for paragraph in BODY:
        assert paragraph in body
    # The photo is named by its caption among the figures, not in the body text (which is
    # the article's prose, as extraction benchmarks count it).
    assert lines[0]["statements"][0]["figures"] == [
        "Министр иностранных дел встретился с делегацией в Астане."
    ]
    assert "Министр иностранных дел встретился" not in body
    assert "Товарооборот, млн долларов\n1 250" in body


def test_extract_reports_a_problem_per_file_and_goes_on(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    error = tmp_path / "error.html"
    error.write_bytes(b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>")
    good = tmp_path / "good.html"
    good.write_bytes(page())
    missing = tmp_path / "missing.html"
    code, lines = run_extract(capsys, str(error), str(missing), str(good), "--format", "json")
    assert code == 1
    assert "502 Bad Gateway" in lines[0]["problem"] and lines[0]["statements"] == []
    assert lines[1]["problem"].startswith("cannot read the file")
    assert lines[2]["problem"] is None and lines[2]["statements"]


def test_extract_text_format_and_profile_choice(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = tmp_path / "a.html"
    saved.write_bytes(page())
    assert main(["extract", str(saved), "--profile", "generic"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"== {saved} (generic)") and BODY[0] in out
    assert main(["extract", str(saved), "--profile", "nosuch"]) == 2


NOISE_INSIDE_ARTICLE = {
    "view counter": {"views": "4 117"},
    "clock and weather": {"clock": "25 ноября 2026, 10:02", "weather": "Астана +6 °C"},
    "carousel": {"slides": ("Министр провёл встречу с послом Японии", "Брифинг")},
    "related list": {"related": ("Министр провёл встречу с послом Японии и Кореи",)},
    "share count": {"shares": "16"},
    "cookie notice gone": {"cookie": False},
}


@pytest.mark.parametrize("change", NOISE_INSIDE_ARTICLE.values(), ids=NOISE_INSIDE_ARTICLE)
def test_noise_inside_the_article_does_not_alert(change: dict) -> None:
    verdict = compare_pages(page(), page(**change), URL)
    assert verdict["kind"] == "unchanged", verdict["summary"]
    assert verdict["score"] == 0


def test_all_the_noise_at_once_does_not_alert() -> None:
    changed: dict = {}
    for change in NOISE_INSIDE_ARTICLE.values():
        changed.update(change)
    assert compare_pages(page(), page(**changed), URL)["kind"] == "unchanged"


EDITS = {
    "caption removed": ({"caption": None}, "Министр иностранных дел встретился"),
    "button link removed": ({"button": False}, "Полный текст"),
    "heading renamed": ({"heading": "Заявление МИД об итогах переговоров"}, "итогах"),
    "number in a table": ({"rate": "1 520"}, "1 520"),
    "sentence removed": ({"body": BODY[:-1]}, "транзитных перевозок"),
}


@pytest.mark.parametrize(("change", "words"), EDITS.values(), ids=EDITS)
def test_edits_among_the_noise_alert_with_their_words(change: dict, words: str) -> None:
    verdict = compare_pages(page(), page(**change), URL)
    assert verdict["alert"], verdict
    named = [*verdict["removed"], *verdict["added"], verdict["summary"]]
    assert any(words in text for text in named), named


@pytest.mark.parametrize(
    "line",
    [
        "Views: 4 116",
        "Просмотров: 12",
        "Қаралым саны: 7",
        "4116 views",
        "👁 4116",
        "Share 15",
        "4 116",
        "+5 °C",
        "USD 498.12 · EUR 522.40",
        "This website uses cookies. By continuing to browse the site you agree to our use.",
    ],
)
def test_widget_lines_are_noise(line: str) -> None:
    from monitor.sites.furniture import is_noise_line

    assert is_noise_line(line)


@pytest.mark.parametrize(
    "line",
    [
        "The report was viewed 4,116 times by the members of the commission before the vote.",
        "Рост | 12%",
        "Товарооборот вырос на 12% и составил 1 250 млн долларов.",
        "The law on cookies and consent was adopted by parliament after a long debate about "
        "the privacy of citizens, the duties of operators and the powers of the regulator, "
        "which the ministry had proposed in its statement of last year.",
    ],
)
def test_prose_is_not_noise(line: str) -> None:
    from monitor.sites.furniture import is_noise_line

    assert not is_noise_line(line)
