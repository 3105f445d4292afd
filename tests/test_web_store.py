"""What the web UI keeps in the archive, on real SQLite and a real PostgreSQL: full-text
search over every version, annotations and the ignore suggestions they feed, users, and
watches edited in the UI merged over the config file's."""

from __future__ import annotations

import re

import pytest

from monitor.config import parse_config
from monitor.diff import compare
from monitor.extract import Statement
from monitor.store import CheckRecord, NewVersion, Store
from monitor.watches import merge_watches
from monitor.web.suggest import generalise, ignore_suggestions
from tests.postgres import Backend

CONFIG = """
[channels.console]
type = "log"
[[watch]]
id = "w"
url = "https://gov.example/news"
channels = ["console"]
"""


def statement(key: str, title: str, *paragraphs: str) -> Statement:
    return Statement(key, f"https://gov.example/{key}", title, paragraphs, "2026-11-25", "en")


def record(
    store: Store, at: str, kind: str, new: Statement | None, key: str = "", title: str = ""
) -> int:
    """One check that stores one version (a removal of `key`, titled `title`, when `new` is
    None)."""
    [version_id] = store.commit_check(
        CheckRecord("w", at, 5, "changed", 200),
        store.state("w"),
        versions=[
            NewVersion(
                key=new.key if new else key,
                url=f"https://gov.example/{key}",
                title=new.title if new else title,
                published=None,
                language="en",
                kind=kind,
                text=new.to_json() if new else None,
            )
        ],
    )
    return version_id


@pytest.fixture
def store(backend: Backend) -> Store:
    with backend.store() as store:
        store.sync_watch("w", "https://gov.example/news", "generic")
        yield store


def test_search_finds_words_that_survive_only_in_earlier_or_removed_versions(
    store: Store,
) -> None:
    record(
        store,
        "2026-11-01T10:00:00.000Z",
        "baseline",
        statement("en/1", "Aid", "We stand ready to help."),
    )
    record(
        store,
        "2026-11-02T10:00:00.000Z",
        "edited",
        statement("en/1", "Aid", "We will consider a formal request."),
    )
    record(
        store,
        "2026-11-01T10:00:00.000Z",
        "published",
        statement("ru/2", "Заявление МИД", "Казахстан приветствует решение."),
    )
    record(store, "2026-11-03T10:00:00.000Z", "removed", None, "ru/2", "Заявление МИД")

    [hit] = store.search("stand ready")
    assert (hit["key"], hit["seq"], hit["last_seq"]) == ("en/1", 1, 2)  # gone from the site
    assert "\x02stand\x03" in hit["snippet"] and "\x02ready\x03" in hit["snippet"]
    [hit] = store.search("formal request")
    assert (hit["seq"], hit["last_seq"]) == (2, 2)
    [hit] = store.search("приветствует")  # Cyrillic, in a statement that was removed
    assert hit["key"] == "ru/2" and hit["removed_at"] == "2026-11-03T10:00:00.000Z"
    assert store.search("заявление")[0]["title"] == "Заявление МИД"  # titles, any case
    assert store.search("stand ready", watch_id="other") == []
    # A version stored after a search is found by the next one (the index catches up).
    record(
        store,
        "2026-11-04T10:00:00.000Z",
        "edited",
        statement("en/1", "Aid", "Mudflows hit the valley."),
    )
    assert [h["seq"] for h in store.search("mudflows")] == [3]
    # Whatever a visitor types is words, never query syntax that could fail or widen.
    for odd in ('"', 'title:Aid OR "', "NEAR(a b)", "*", "a AND", "-x"):
        assert isinstance(store.search(odd), list)


def test_search_takes_or_phrases_exclusions_and_prefixes(store: Store) -> None:
    """The syntax people know from web search, the same on SQLite and PostgreSQL."""
    texts = {
        "en/1": "The minister met colleagues in Astana to discuss trade.",
        "en/2": "Talks in Brussels with the European Union on visas.",
        "en/3": "The union of European states was mentioned in Brussels briefly.",
        "ru/4": "Министр прибыл в Брюссель на переговоры.",
    }
    for key, body in texts.items():
        record(store, "2026-11-01T10:00:00.000Z", "baseline", statement(key, "News", body))

    def keys(query: str) -> set[str]:
        return {hit["key"] for hit in store.search(query)}

    assert keys("Astana OR Brussels") == {"en/1", "en/2", "en/3"}
    assert keys("Brussel*") == {"en/2", "en/3"}
    assert keys("Brussel") == set()  # a prefix only when asked for
    assert keys('"European Union"') == {"en/2"}  # the words next to each other
    assert keys("European Union") == {"en/2", "en/3"}
    assert keys("Brussels -visas") == {"en/3"}
    assert keys('Brussels -"European Union"') == {"en/3"}
    assert keys("Брюссел*") == {"ru/4"}
    assert keys("trade OR visas minister") == {"en/1"}  # OR binds tighter than AND
    assert keys("-visas") == set()  # nothing to look for


def test_a_search_of_the_archive_ranks_its_newest_matches(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ranking costs per match: a word in every statement ranks the newest RANKED matching
    versions, best first among them; a search within a watch ranks all of its matches."""
    from monitor.store import fulltext

    monkeypatch.setattr(fulltext, "RANKED", 2)
    # The oldest matches best (its title and text both say it), the newer ones once each.
    record(store, "2026-11-01T10:00:00.000Z", "baseline", statement("en/1", "Water", "Water."))
    for n in range(2, 5):
        body = f"Talks on water, number {n}."
        record(store, "2026-11-02T10:00:00.000Z", "baseline", statement(f"en/{n}", "News", body))
    assert {hit["key"] for hit in store.search("water")} == {"en/3", "en/4"}
    assert store.search("water", watch_id="w")[0]["key"] == "en/1"
    assert len(store.search("water", watch_id="w")) == 4
    assert [hit["key"] for hit in store.search("number 2")] == ["en/2"]  # the newest of its own


def test_a_version_seen_by_another_process_is_indexed_once(store: Store, backend: Backend) -> None:
    record(store, "2026-11-01T10:00:00.000Z", "baseline", statement("en/1", "Aid", "Unique words."))
    with backend.store() as other:
        assert other.index_text() == 1
    assert store.index_text() == 0
    assert len(store.search("unique")) == 1


def test_annotations_keep_their_history_and_the_newest_verdict_counts(store: Store) -> None:
    first = record(store, "2026-11-01T10:00:00.000Z", "baseline", statement("en/1", "A", "One."))
    second = record(store, "2026-11-02T10:00:00.000Z", "edited", statement("en/1", "A", "Two."))
    document_id = store.document("w", "en/1")["id"]
    store.annotate(document_id, second, "ann", "noise", "a counter")
    store.annotate(document_id, second, "bob", "significant", "no: the wording changed")
    store.annotate(document_id, None, "ann", None, "about the statement as a whole")
    with pytest.raises(ValueError):
        store.annotate(document_id, second, "ann", "maybe")
    timeline = store.timeline(document_id)
    assert [v["id"] for v in timeline] == [first, second]
    assert timeline[0]["verdict"] is None and timeline[0]["text_size"] > 0
    assert (timeline[1]["verdict"], timeline[1]["annotated_by"]) == ("significant", "bob")
    assert store.annotations(document_id)[0]["note"].startswith("about")
    assert [(r["version_id"], r["verdict"]) for r in store.verdicts("w")] == [
        (second, "significant")
    ]


def test_users_and_watches_edited_in_the_ui(store: Store) -> None:
    store.put_user("ann", "hash-1", "editor")
    store.put_user("ann", None, "admin")  # role changed, password kept
    assert (store.user("ann")["role"], store.user("ann")["password_hash"]) == ("admin", "hash-1")
    with pytest.raises(ValueError):
        store.put_user("bob", "hash", "superuser")
    with pytest.raises(ValueError):
        store.put_user("bob", None, "viewer")  # a new user needs a password
    store.put_ui_watch("w", {"url": "https://gov.example/a"}, "ann")
    store.put_ui_watch("w", {"url": "https://gov.example/b"}, "ann")
    [row] = store.ui_watches()
    assert row["config"] == {"url": "https://gov.example/b"}
    assert store.delete_ui_watch("w") and store.ui_watches() == []
    assert store.secret("web", lambda: "k1") == store.secret("web", lambda: "k2") == "k1"


def test_noise_annotations_become_an_ignore_pattern_that_silences_the_counter(
    store: Store,
) -> None:
    config = parse_config(CONFIG)
    texts = [
        "Views: 1,204. Aid was sent.",
        "Views: 1,250. Aid was sent.",
        "Views: 1,311. Aid was sent.",
    ]
    ids = [
        record(store, f"2026-11-0{day}T10:00:00.000Z", kind, statement("en/1", "A", text))
        for day, kind, text in zip((1, 2, 3), ("baseline", "edited", "edited"), texts, strict=True)
    ]
    ids.append(
        record(
            store,
            "2026-11-04T10:00:00.000Z",
            "edited",
            statement("en/1", "A", "Views: 1,311. Aid was refused."),
        )
    )
    document_id = store.document("w", "en/1")["id"]
    for version_id in ids[1:3]:
        store.annotate(document_id, version_id, "ann", "noise")
    store.annotate(document_id, ids[3], "ann", "significant")
    [suggestion] = ignore_suggestions(store, config.get_watch("w"))
    assert suggestion.count == 2 and suggestion.example == "Views: 1,311."  # the newest
    assert suggestion.pattern == r"Views:\s+\d+(?:[.,:]\d+)*\."
    # Masked with the suggestion, the noise is no change and the real edit still is one.
    old, new = statement("en/1", "A", texts[0]), statement("en/1", "A", texts[2])
    assert not compare(old, new, [suggestion.pattern]).changed
    assert compare(
        new, statement("en/1", "A", "Views: 9. Aid was refused."), [suggestion.pattern]
    ).changed
    # A pattern already ignored is not suggested again.
    ignoring = config.get_watch("w").model_copy(update={"ignore": [suggestion.pattern]})
    assert ignore_suggestions(store, ignoring) == []


def test_a_noise_pattern_that_would_hide_a_significant_change_is_not_suggested(
    store: Store,
) -> None:
    config = parse_config(CONFIG)
    versions = ["Updated 3 May.", "Updated 4 May.", "Updated 5 May."]
    ids = [
        record(
            store,
            f"2026-11-0{day}T10:00:00.000Z",
            "edited" if day > 1 else "baseline",
            statement("en/1", "A", text),
        )
        for day, text in enumerate(versions, start=1)
    ]
    document_id = store.document("w", "en/1")["id"]
    store.annotate(document_id, ids[1], "ann", "noise")
    store.annotate(document_id, ids[2], "bob", "significant")  # same shape, judged otherwise
    assert ignore_suggestions(store, config.get_watch("w")) == []


def test_generalised_fragments_match_what_they_came_from_and_little_else() -> None:
    for fragment in ("Views: 1,234", "(12.11.2026)", "Обновлено 5 мая"):
        assert re.fullmatch(generalise(fragment), fragment)
    assert re.fullmatch(generalise("Views: 1,234"), "Views:  98")
    assert not re.search(generalise("Views: 1,234"), "Visits: 1,234")


def test_ui_watches_replace_or_add_to_the_files_and_a_stale_one_is_skipped(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = parse_config(CONFIG)
    rows = [
        {"id": "w", "config": {"url": "https://gov.example/other", "interval": 60}},
        {"id": "new", "config": {"url": "https://gov.example/new", "channels": ["console"]}},
        {"id": "stale", "config": {"url": "https://gov.example/s", "channels": ["gone"]}},
    ]
    merged = merge_watches(config, rows)
    assert [w.id for w in merged.watch] == ["w", "new"]
    assert merged.get_watch("w").url == "https://gov.example/other"
    assert merged.get_watch("w").interval == 60
    assert "watch stale from the web UI ignored: channels: unknown channel 'gone'" in caplog.text


def test_the_watch_lists_read_every_watch_with_its_state(store: Store) -> None:
    """What the grouped list, the table of every watch and the API's list read of 10,000
    watches, on the driver: the same rows on both databases."""
    from dataclasses import replace

    store.sync_watch("never", "https://gov.example/never", "generic")
    at = "2026-11-01T10:00:00.000Z"
    state = replace(store.state("w"), last_check_at=at, failing_since=at, failure_reason="503")
    store.commit_check(CheckRecord("w", at, 5, "problem", 503), state)
    store.flush()
    assert store.overview.watch_states() == [
        {"id": "never", "url": "https://gov.example/never", "last_check_at": None,
         "failing_since": None, "failure_reason": None, "parent": None},
        {"id": "w", "url": "https://gov.example/news", "last_check_at": at,
         "failing_since": at, "failure_reason": "503", "parent": None},
    ]  # fmt: skip
    assert [tuple(row) for row in store.watch_table()] == [
        ("never", "https://gov.example/never", None, None, None, None, None),
        ("w", "https://gov.example/news", at, at, "503", None, None),
    ]
    assert store.watch_health()["w"] == (at, at, "503", None)
    assert store.watch_sources() == (set(), set())
    assert not store.is_ui_watch("w")
