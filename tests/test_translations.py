"""A statement's language versions together: the gov.kz replica in English, Russian and
Kazakh, one language edited and the others not. The alert and the statement's page say so
("edited in Russian; English and Kazakh unchanged since 3 Dec"), whether the listings keep
the statements (keys `en/ID`, `ru/ID`, `kk/ID`) or each statement is a watch of its own
(discovery's translation group)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.languages import MONTHS, LanguageState, divergence, standing
from monitor.replica import STATEMENTS, ReplicaSite
from monitor.store import Store
from monitor.store.schema import document
from monitor.store.translations import language_versions
from tests.conftest import Receiver, monitor_cli, serve_pages, write_config
from tests.webui import add_user, csrf, login, serving

NEWEST = max(STATEMENTS, key=lambda s: s["created_date"])
SECOND = sorted(STATEMENTS, key=lambda s: s["created_date"])[-2]
RU_OLD, RU_NEW = "1 250 тонн", "1 500 тонн"
DISCOVER = 'discover = true\noptions = { size = 3 }\ndiscover_schedule = ["10m until 1d", "2h"]'


def today() -> str:
    now = datetime.now(UTC)
    return f"{now.day} {MONTHS[now.month - 1]}"


def three_languages(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver | None, extra: str
) -> Path:
    config = write_config(tmp_path, replica, receiver, ("en", "ru", "kk"), watch_extra=extra)
    config.write_text(
        config.read_text().replace("[server]\n", '[server]\npublic_url = "http://ui.test"\n')
    )
    return config


def check(config: Path, *args: str) -> str:
    result = monitor_cli(config, "check", *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("keyed_by", ["listing", "discovery"])
def test_an_edit_in_one_language_says_the_others_are_unchanged(
    tmp_path: Path, replica: ReplicaSite, receiver: Receiver, keyed_by: str
) -> None:
    config = three_languages(
        tmp_path, replica, receiver, DISCOVER if keyed_by == "discovery" else ""
    )
    check(config)
    replica.replace_text(NEWEST["id"], "ru", RU_OLD, RU_NEW)
    check(config)
    [edited] = receiver.alerts("edited")
    assert edited["language"] == "ru" and edited["key"] == f"ru/{NEWEST['id']}"
    assert (
        edited["divergence"] == f"edited in Russian; English and Kazakh unchanged since {today()}"
    )
    others = {t["language"]: t for t in edited["translations"]}
    assert set(others) == {"en", "kk"}
    assert others["en"]["status"] == "baseline" and others["en"]["key"] == f"en/{NEWEST['id']}"
    assert others["en"]["statement_url"].startswith("http://ui.test/watch/")
    # Every channel's text says it too (the console here).
    assert "Edited in Russian; English and Kazakh unchanged since" in check_output(config, replica)

    # The store's lookup: the three language versions of the statement, whichever is asked.
    with Store(tmp_path / "store") as store:
        english = next(
            d
            for w in ("mfa-en", f"mfa-en.en-{NEWEST['id']}")
            for d in store.documents(w)
            if d["key"] == f"en/{NEWEST['id']}"
        )
        versions = language_versions(store, english["id"])
        assert [v.language for v in versions] == ["en", "kk", "ru"]
        russian = next(v for v in versions if v.language == "ru")
        assert russian.last_kind == "edited" and russian.last_seq == 3 and russian.text_seq == 3
        # Another statement is not one of its translations: its own three are.
        others_key = f"en/{SECOND['id']}"
        other = next(
            d
            for w in (r["id"] for r in store.watch_rows())
            for d in store.documents(w)
            if d["key"] == others_key
        )
        found = language_versions(store, other["id"])
        assert {v.key for v in found} == {f"{lang}/{SECOND['id']}" for lang in ("en", "ru", "kk")}


def check_output(config: Path, replica: ReplicaSite) -> str:
    """The console's text of one more Russian edit."""
    replica.replace_text(NEWEST["id"], "ru", RU_NEW, "1 750 тонн")
    return check(config)


def test_the_wording_groups_languages_changed_together_and_dates_the_rest() -> None:
    states = [
        LanguageState("ru", "edited", "2026-12-07T09:00:00Z"),
        LanguageState("en", "edited", "2026-12-07T08:00:00Z"),
        LanguageState("kk", "baseline", "2026-12-03T10:00:00Z"),
        LanguageState("uz", "removed", "2025-11-30T10:00:00Z"),
    ]
    assert divergence(states) == (
        "edited in English and Russian; Kazakh unchanged since 3 Dec; Uzbek removed on 30 Nov 2025"
    )
    assert divergence(states[:1]) is None  # one language: nothing to compare
    never = [LanguageState("en", "baseline", "2026-12-01T00:00:00Z")] * 2
    assert divergence(never) is None
    russian = {
        "Kazakh": "казахский",
        "{languages} unchanged since {date}": "{languages} — без изменений с {date}",
        "Dec": "дек",
    }
    assert standing(states[2], "2026-12-07T09:00:00Z") == "unchanged since 3 Dec"
    assert standing(states[0], "2026-12-07T09:00:00Z") == "edited 7 Dec"
    worded = divergence(states[1:3], None, lambda text: russian.get(text, text))
    assert "казахский — без изменений с 3 дек" in worded  # type: ignore[operator]
    # In the alerts' time zone: 23:30 UTC on 3 Dec is 4 Dec in Almaty.
    late = [
        LanguageState("ru", "edited", "2026-12-07T09:00:00Z"),
        LanguageState("kk", "baseline", "2026-12-03T23:30:00Z"),
    ]
    assert divergence(late, zone="Asia/Almaty") == "edited in Russian; Kazakh unchanged since 4 Dec"


@dataclass
class Served:
    """The replica in three languages, its newest statement edited in Russian only, the UI
    serving the archive; users ed (editor) and vi (viewer)."""

    url: str
    config: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("translations")
    with ReplicaSite() as replica:
        config = three_languages(tmp, replica, None, "")
        check(config)
        replica.replace_text(NEWEST["id"], "ru", RU_OLD, RU_NEW)
        check(config)
        for name, role in (("ed", "editor"), ("vi", "viewer")):
            assert add_user(config, name, role).returncode == 0
        with serving(config) as url:
            yield Served(url, config)


ENGLISH_PAGE = f"/watch/mfa-en/statement?key=en%2F{NEWEST['id']}"


@pytest.mark.process
def test_the_statement_page_shows_the_language_versions_side_by_side(served: Served) -> None:
    client = login(served.url, "vi")
    page = client.get(ENGLISH_PAGE).text
    assert f"Edited in Russian; English and Kazakh unchanged since {today()}" in page
    for language, word in (("en", "unchanged since"), ("ru", "edited"), ("kk", "unchanged since")):
        column = page.split(f'data-language="{language}"')[1].split("</article>")[0]
        assert f"{word} {today()}" in column
    russian = page.split('data-language="ru"')[1].split("</article>")[0]
    assert RU_NEW in russian and NEWEST["texts"]["ru"]["title"] in russian
    assert f"/watch/mfa-ru/versions/2?key=ru%2F{NEWEST['id']}" in russian
    # In Russian, through the UI's own table.
    client.cookies.set("lang", "ru")
    page = client.get(f"/watch/mfa-ru/statement?key=ru%2F{NEWEST['id']}").text
    assert "Изменено (русский); английский и казахский — без изменений с" in page


@pytest.mark.process
def test_an_annotation_confirms_it_was_saved_and_shows_on_every_page_of_its_version(
    served: Served,
) -> None:
    client = login(served.url, "ed")
    diff = f"/watch/mfa-ru/diff?key=ru%2F{NEWEST['id']}&b=2"
    snapshot = f"/watch/mfa-ru/versions/2?key=ru%2F{NEWEST['id']}"
    form = {"csrf": csrf(client), "next": diff, "verdict": "significant"}
    posted = client.post(
        snapshot.replace("/versions/2?", "/versions/2/annotate?"),
        data={**form, "note": "tonnage raised in Russian only"},
    )
    assert posted.status_code == 303 and posted.headers["location"] == diff
    # Where it was written, once: the notice and the annotation itself; a reload is quiet.
    back = client.get(diff).text
    assert '<p class="notice" role="status">Annotation saved.</p>' in back
    assert "tonnage raised in Russian only" in back.split('id="annotations"')[1]
    assert "Annotation saved." not in client.get(diff).text
    for page in (snapshot, f"/watch/mfa-ru/statement?key=ru%2F{NEWEST['id']}"):
        assert "tonnage raised in Russian only" in client.get(page).text
    # Found again by search: by its note's words (a prefix too), and on its statement's hit.
    found = client.get("/search", params={"q": "tonnag* Russian"}).text
    assert "tonnage raised in Russian only" in found.split("<h2>Notes</h2>")[1]
    hit = client.get("/search", params={"q": "1 500 тонн"}).text
    assert "tonnage raised in Russian only" in hit.split('class="results"')[1]
    assert "<h2>Notes</h2>" not in client.get("/search", params={"q": "tonnage -Russian"}).text
    # Nothing to save is said so, and nothing is stored.
    empty = client.post(
        snapshot.replace("/versions/2?", "/versions/2/annotate?"), data={**form, "verdict": ""}
    )
    assert empty.status_code == 303
    assert "Nothing saved: choose a verdict or write a note." in client.get(diff).text
    assert client.get(diff).text.count("<li>") == back.count("<li>")


FRENCH_OLD = "La délégation a signé l'accord sur la coopération régionale le lundi à Astana."
FRENCH_NEW = "La délégation a signé l'accord sur la coopération régionale le vendredi à Genève."


def _ministry_page(language: str, title: str, sentence: str) -> bytes:
    alternates = "".join(
        f'<link rel="alternate" hreflang="{code}" href="/{code}/statement-17">'
        for code in ("en", "fr")
    )
    prose = " ".join(
        f"{sentence} Paragraph {n} of the statement goes on about water, trade and roads."
        for n in range(4)
    )
    return (
        f'<html lang="{language}"><head><title>{title}</title>{alternates}'
        '<link rel="alternate" hreflang="x-default" href="/en/statement-17"></head>'
        f"<body><main><article><h1>{title}</h1><p>{prose}</p>"
        f"<p>{prose}</p></article></main></body></html>"
    ).encode()


def test_hreflang_links_make_two_watched_pages_language_versions_of_one_statement(
    tmp_path: Path, receiver: Receiver
) -> None:
    """A ministry outside gov.kz: each page names its translations with hreflang links;
    the two pages are separate watches, and neither names its language."""
    english = "The delegation signed the regional cooperation agreement in Astana on Monday."
    site = {
        "/en/statement-17": _ministry_page("en", "Statement on cooperation", english),
        "/fr/statement-17": _ministry_page("fr", "Déclaration sur la coopération", FRENCH_OLD),
    }
    pages = serve_pages(site.get)
    base = next(pages)
    try:
        watches = "".join(
            f'[[watch]]\nid = "ministry-{code}"\nurl = "{base}/{code}/statement-17"\n'
            'profile = "generic"\nchannels = ["hook"]\n'
            for code in ("en", "fr")
        )
        config = write_config(tmp_path, None, receiver, ())
        config.write_text(config.read_text() + watches)
        check(config)
        site["/fr/statement-17"] = _ministry_page(
            "fr", "Déclaration sur la coopération", FRENCH_NEW
        )
        check(config)
    finally:
        next(pages, None)
    [edited] = receiver.alerts("edited")
    assert edited["watch"] == "ministry-fr", edited.keys()
    assert edited["divergence"] == f"edited in French; English unchanged since {today()}"
    with Store(tmp_path / "store") as store:
        row = store.db.row(select(document.c.id).where(document.c.watch_id == "ministry-en"))
        assert row is not None
        versions = language_versions(store, row["id"])
    assert [(v.language, v.watch_id) for v in versions] == [
        ("en", "ministry-en"),
        ("fr", "ministry-fr"),
    ]
