"""Learned furniture: real pages (the article-extraction benchmark's, MIT, see
tests/quality/SOURCES.md) served by a real HTTP server on 127.0.0.1, checked by the real
pipeline into a real SQLite archive, which is what the learning reads.

A block that rotates inside the article alerts until it has changed on enough checks, then
stops; a notice pasted into every page of a host is learned from many statements; a user's
"not furniture" restores alerting for good; a real edit in a normal paragraph always alerts.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html import escape
from pathlib import Path

import pytest

from monitor.check import Checker
from monitor.compare import _as_result
from monitor.config import MonitorConfig, WatchConfig, load_config
from monitor.extract import Statement, Target
from monitor.fetch import Fetcher
from monitor.learned import MIN_CHANGES, TEMPLATE_MIN, LearnedFurniture, normal
from monitor.sites import get_profile, profile_names
from monitor.store import CheckRecord, NewVersion, Store
from tests.conftest import CONSOLE, REPO, generic_watch, local_config, monitor_cli, serve_pages
from tests.postgres import Backend
from tests.webui import add_user, csrf, login, serving

BENCH = REPO / "tests" / "quality" / "pages" / "bench"
# English news pages of the benchmark, each with several paragraphs of prose.
ENGLISH = ["06ee193d", "1f765c48", "30b771a4", "33fe2471", "3cb22bfa", "4648a420"]
ENGLISH += ["52111884", "833caf3b", "9e8c9f08", "bc13ff87", "d1c57d78", "e7994d55"]


def _page(name: str) -> bytes:
    return gzip.decompress((BENCH / name / "original.html.gz").read_bytes())


def _paragraphs(html: bytes) -> tuple[str, ...]:
    url = "http://127.0.0.1/page"
    extraction = get_profile("generic", url).extract(_as_result(html, url), Target(url))
    assert extraction.statements, extraction.problem
    return extraction.statements[0].paragraphs


def _after_paragraph(html: bytes, paragraph: str, block: str) -> bytes:
    """The page with `block` inserted right after the <p> that holds `paragraph`."""
    body = html.find(b"<body")
    probe = " ".join(paragraph.split()[:6]).encode()
    at = html.find(probe, body)
    end = html.find(b"</p>", at)
    assert at >= 0 and end >= 0, f"cannot find {paragraph[:60]!r} in a <p> of the page"
    end += len(b"</p>")
    return html[:end] + block.encode() + html[end:]


def _in_article(html: bytes, text: str, after: int = 1) -> bytes:
    """The page with a paragraph of `text` inside its article: after its `after`-th
    paragraph, or the next one that is a <p> of its own."""
    for paragraph in _paragraphs(html)[after:]:
        try:
            changed = _after_paragraph(html, paragraph, f"<p>{text}</p>")
        except AssertionError:
            continue
        if text in _paragraphs(changed):
            return changed
    raise AssertionError(f"no place in the article for {text[:60]!r}")


def _edit_word(html: bytes, paragraph: str, new_word: str) -> tuple[bytes, str]:
    """The page with one word of `paragraph` replaced (a real edit), and the old word."""
    word = next(w for w in paragraph.split()[6:] if len(w) > 5 and w.isalpha())
    at = html.find(" ".join(paragraph.split()[:6]).encode(), html.find(b"<body"))
    assert at >= 0, f"cannot find {paragraph[:60]!r} in the page"
    edited = html[:at] + html[at:].replace(word.encode(), new_word.encode(), 1)
    assert any(new_word in p for p in _paragraphs(edited)), "the edit is not in the article"
    return edited, word


@dataclass
class Site:
    """A real HTTP server on 127.0.0.1 answering each path with the bytes given."""

    url: str = ""
    pages: dict[str, bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def site() -> Iterator[Site]:
    state = Site()

    def body_of(path: str) -> bytes | None:
        with state.lock:
            return state.pages.get(path)

    for state.url in serve_pages(body_of):
        yield state


def _config(tmp_path: Path, site: Site, paths: list[str]) -> Path:
    watches = "".join(
        generic_watch(
            path.strip("/"), f"{site.url}{path}", 'language = "en"\nchannels = ["console"]'
        )
        for path in paths
    )
    return local_config(
        tmp_path,
        watches,
        fetch='timeout = "10s"\nfull_fetch_every = 1',
        alerts='flipflop_window = "0s"',
        sections=CONSOLE,
    )


class Daemon:
    """One Checker over one archive for the whole test, as `monitor run` keeps one."""

    def __init__(self, config_path: Path) -> None:
        self.config_path = config_path
        self.config: MonitorConfig = load_config(config_path, profile_names())
        self.loop = asyncio.new_event_loop()
        self.store = Store(self.config.store.path)
        self.fetcher = Fetcher(self.config.fetch)
        self.loop.run_until_complete(self.fetcher.__aenter__())
        self.checker = Checker(self.config, self.store, self.fetcher)

    def check(self, watch_id: str) -> int:
        """Check one watch now; the number of alerts it raised."""
        watch = self.config.get_watch(watch_id)
        outcome = self.loop.run_until_complete(self.checker.check(watch))
        assert outcome.outcome != "problem", outcome.detail
        return outcome.alerts

    def summaries(self, watch_id: str) -> list[str]:
        [document] = self.store.documents(watch_id)
        return [row["summary"] for row in self.store.versions(document["id"])]

    def close(self) -> None:
        self.loop.run_until_complete(self.fetcher.__aexit__(None, None, None))
        self.loop.close()
        self.store.close()


@pytest.fixture
def make_daemon() -> Iterator[type[Daemon]]:
    made: list[Daemon] = []

    class Made(Daemon):
        def __init__(self, config_path: Path) -> None:
            super().__init__(config_path)
            made.append(self)

    yield Made
    for daemon in made:
        daemon.close()


def _rotating() -> list[str]:
    """Teasers for the rotating block: the opening sentences of other real articles."""
    return [_paragraphs(_page(name))[0] for name in ENGLISH[1:]]


def _furniture(config: Path, *args: str) -> list[dict]:  # type: ignore[type-arg]
    done = monitor_cli(config, "furniture", *args, "--format", "json")
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)  # type: ignore[no-any-return]


def test_a_rotating_block_inside_the_article_stops_alerting_once_learned_until_undone(
    tmp_path: Path, site: Site, make_daemon: type[Daemon]
) -> None:
    original = _page(ENGLISH[0])
    paragraphs = _paragraphs(original)
    teasers = _rotating()
    # A real edit later: one word of a normal paragraph, far from the rotating block.
    word = _edit_word(original, paragraphs[8], "reconsidered")[1]

    def page(n: int, edit: bool = False) -> bytes:
        html = _after_paragraph(original, paragraphs[2], f"<p>{teasers[n]}</p>")
        return _edit_word(html, paragraphs[8], "reconsidered")[0] if edit else html

    site.pages["/story"] = page(0)
    assert teasers[0] in _paragraphs(site.pages["/story"])  # inside the article
    config = _config(tmp_path, site, ["/story"])
    daemon = make_daemon(config)
    assert daemon.check("story") == 0  # the baseline

    # Until it has changed on MIN_CHANGES checks, the block is news every time.
    for n in range(1, MIN_CHANGES + 1):
        site.pages["/story"] = page(n)
        assert daemon.check("story") == 1, f"rotation {n} did not alert"
    [item] = _furniture(config, "story")
    assert item["kind"] == "slot" and item["scope"] == "watch" and item["scope_id"] == "story"
    assert item["example"] == teasers[MIN_CHANGES][:200] or teasers[MIN_CHANGES].startswith(
        item["example"].rstrip("…")
    )
    assert "changed in 3 of 3 consecutive versions" in item["reason"], item["reason"]

    # Learned: the next rotations are archived, quietly, and say why.
    for n in range(MIN_CHANGES + 1, MIN_CHANGES + 3):
        site.pages["/story"] = page(n)
        assert daemon.check("story") == 0, f"rotation {n} still alerted"
    summaries = daemon.summaries("story")
    assert len(summaries) == MIN_CHANGES + 3  # every version archived
    assert summaries[-1].startswith("only learned furniture changed: ")
    assert teasers[MIN_CHANGES + 2][:30] in summaries[-1]

    # A real edit in a normal paragraph alerts, and names only the edit.
    n = MIN_CHANGES + 3
    site.pages["/story"] = page(n, edit=True)
    assert daemon.check("story") == 1
    summary = daemon.summaries("story")[-1]
    assert "reconsidered" in summary and word in summary
    assert teasers[n][:30] not in summary and teasers[n - 1][:30] not in summary

    # "Not furniture": rotations alert again, and learning from more of them does not
    # bring the item back.
    done = monitor_cli(config, "furniture", "forget", "story", str(item["id"]))
    assert done.returncode == 0 and "is not furniture" in done.stdout, done.stderr
    for n in range(MIN_CHANGES + 4, MIN_CHANGES + 8):
        site.pages["/story"] = page(n, edit=True)
        assert daemon.check("story") == 1, f"rotation {n} after the undo did not alert"
    [forgotten] = _furniture(config, "story")
    assert forgotten["id"] == item["id"] and forgotten["forgotten_by"].startswith("cli:")
    listed = monitor_cli(config, "furniture", "story")
    assert "NOT FURNITURE" in listed.stdout, listed.stdout


def test_a_change_marked_significant_keeps_its_block_news(
    tmp_path: Path, site: Site, make_daemon: type[Daemon]
) -> None:
    original = _page(ENGLISH[0])
    paragraphs = _paragraphs(original)
    teasers = _rotating()
    site.pages["/story"] = original
    config = _config(tmp_path, site, ["/story"])
    daemon = make_daemon(config)
    assert daemon.check("story") == 0
    for n in range(6):
        site.pages["/story"] = _after_paragraph(original, paragraphs[2], f"<p>{teasers[n]}</p>")
        assert daemon.check("story") == 1, f"change {n} did not alert"
        if n == 1:  # a person said this change matters
            [document] = daemon.store.documents("story")
            newest = daemon.store.versions(document["id"])[-1]
            daemon.store.annotate(document["id"], newest["id"], "ed", "significant")
    assert _furniture(config, "story") == []


@pytest.mark.slow
def test_a_notice_on_every_page_of_a_host_is_learned_as_its_template(
    tmp_path: Path, site: Site, make_daemon: type[Daemon]
) -> None:
    names = ENGLISH[: TEMPLATE_MIN + 3]
    notice = (
        "Our offices are closed on Monday for the public holiday; requests sent in the "
        "meantime will be answered from Tuesday in the order they arrived."
    )
    originals = {f"/{name}": _page(name) for name in names}
    site.pages.update(originals)
    config = _config(tmp_path, site, list(originals))
    daemon = make_daemon(config)
    for path in originals:
        assert daemon.check(path.strip("/")) == 0  # baselines
    alerted = []
    for path, html in originals.items():
        site.pages[path] = _in_article(html, notice)
        alerted.append(daemon.check(path.strip("/")))
    # News on the first pages; once most recently changed statements carry it, a template.
    assert alerted == [1] * TEMPLATE_MIN + [0] * (len(names) - TEMPLATE_MIN), alerted
    last = names[-1]
    [template] = _furniture(config, last)
    assert template["kind"] == "template" and template["scope"] == "host"
    assert template["scope_id"] == site.url.removeprefix("http://")
    assert template["example"].startswith("Our offices are closed")
    assert f"on {TEMPLATE_MIN} of the {len(names)} most recently changed" in template["reason"]
    # An edit beside the notice still alerts, and names the edit alone.
    html = site.pages[f"/{last}"]
    longest = max(_paragraphs(html), key=len)
    site.pages[f"/{last}"], word = _edit_word(html, longest, "reconsidered")
    assert daemon.check(last) == 1
    summary = daemon.summaries(last)[-1]
    assert "reconsidered" in summary and word in summary and "offices" not in summary
    # Undone for the host: the notice is news again on the pages still to change.
    done = monitor_cli(config, "furniture", "forget", last, "--all")
    assert done.returncode == 0 and f"its host {template['scope_id']}" in done.stdout
    first = f"/{names[0]}"
    site.pages[first] = originals[first]  # the notice taken off one page
    assert daemon.check(names[0]) == 1


def test_learning_and_forgetting_on_sqlite_and_postgresql(backend: Backend) -> None:
    """The store's side on both databases: what learning reads (windows of versions with
    their verdicts, a host's newest texts), what it keeps, and what a user forgets."""
    body = _paragraphs(_page(ENGLISH[0]))[:8]
    teasers = _rotating()
    at = iter(f"2026-11-25T10:{minute:02d}:00.000Z" for minute in range(60))

    def statement(n: int, counter: int) -> Statement:
        paragraphs = (*body[:3], teasers[n], *body[3:6], f"Views: {counter} 116", *body[6:])
        return Statement("page", "https://gov.example/a", "A story", paragraphs, language="en")

    def commit(watch_id: str, kind: str, st: Statement) -> None:
        version = NewVersion(st.key, st.url, st.title, None, "en", kind, st.to_json())
        store.commit_check(
            CheckRecord(watch_id, next(at), 5, "changed", 200), store.state(watch_id),
            versions=[version],
        )  # fmt: skip

    with backend.store() as store:
        for name in ("a", "b"):
            store.sync_watch(name, f"https://gov.example/{name}", "generic")
        learning = LearnedFurniture(store)
        commit("a", "baseline", statement(0, 4))
        for n in range(1, 5):
            commit("a", "edited", statement(n, 4 + n))
        learned = {item.kind: item for item in learning.learn_watch("a")}
        assert set(learned) == {"slot", "shape"}
        assert learned["slot"].pattern == {
            "before": normal(body[2]), "after": normal(body[3]), "run": 1
        }  # fmt: skip
        assert learned["shape"].pattern == {"shape": "views: #"}
        assert "changed its numbers in 4 of 4" in learned["shape"].reason
        watch = WatchConfig(id="a", url="https://gov.example/a")
        quiet = learning.compare(watch, statement(4, 8), statement(5, 9))
        assert not quiet.changed and quiet.summary.startswith("only learned furniture changed")
        # A person marks one change significant: what moved in it is news again; their
        # newer verdict (noise) counts instead.
        [document] = store.documents("a")
        newest = store.versions(document["id"])[-1]
        store.annotate(document["id"], newest["id"], "ed", "significant")
        assert learning.learn_watch("a") == []
        assert store.furniture_items([("watch", "a")]) == []
        store.annotate(document["id"], newest["id"], "ed", "noise")
        assert len(learning.learn_watch("a")) == 2
        # Forgotten: kept, marked, no longer masked, and not learned again.
        [shape_item] = [r for r in store.furniture_items([("watch", "a")]) if r["kind"] == "shape"]
        assert store.forget_furniture([shape_item["id"]], "ed") == 1
        learning.learn_watch("a")
        [kept] = [r for r in store.furniture_items([("watch", "a")]) if r["kind"] == "shape"]
        assert kept["forgotten_by"] == "ed" and kept["id"] == shape_item["id"]
        [slot] = store.furniture_items([("watch", "a")], forgotten=False)
        assert slot["kind"] == "slot"
        assert learning.compare(watch, statement(4, 8), statement(4, 9)).changed
        assert not learning.compare(watch, statement(4, 8), statement(5, 8)).changed
        # The host's newest texts: one per statement, newest first.
        commit("b", "baseline", statement(0, 1))
        rows = store.newest_texts("gov.example", 20)
        assert [row["watch_id"] for row in rows] == ["b", "a"]
        heads = [store.heads(name)["page"].text_sha256 for name in ("b", "a")]
        assert [row["text_sha256"] for row in rows] == heads
        assert [row["watch_id"] for row in store.newest_texts("gov.example", 1)] == ["b"]
        assert store.newest_texts("example", 20) == []
        assert learning.learn_host("gov.example") == []  # two statements are no template


def test_a_word_given_between_learning_s_read_and_its_write_stands(backend: Backend) -> None:
    """`store_learned` reads a scope's items, then writes what changes: what another
    process did in between stands. An item forgotten meanwhile is not refreshed, one seen
    since is not dropped, and one learned meanwhile is not added twice."""
    from sqlalchemy import update

    from monitor.store.furniture import LearnedItem
    from monitor.store.schema import furniture

    def item(name: str, reason: str = "changed in 3 of 3") -> LearnedItem:
        return LearnedItem("shape", name * 64, {"shape": f"{name}: #"}, f"{name}: 1", reason)

    with backend.store() as store:
        store.sync_watch("w", "https://gov.example/w", "generic")
        assert store.store_learned("watch", "w", [item("a"), item("b"), item("d")]) == (3, 0)
        rows = {row["fingerprint"][0]: row for row in store.furniture_items([("watch", "w")])}
        write_now = store.db.write_now

        def meanwhile(writes: list) -> None:  # type: ignore[type-arg]
            store.forget_furniture([rows["a"]["id"]], "ed")
            with store.db.write() as conn:
                seen = update(furniture).where(furniture.c.id == rows["d"]["id"])
                conn.execute(seen.values(seen_at="2999-01-01T00:00:00.000Z"))
                new = dict(rows["b"], fingerprint="c" * 64, pattern='{"shape": "c: #"}')
                del new["id"]
                conn.execute(furniture.insert().values(new))
            write_now(writes)

        store.db.write_now = meanwhile  # type: ignore[method-assign]
        now = [item("a", "changed in 4 of 4"), item("b"), item("c")]
        assert store.store_learned("watch", "w", now) == (1, 1)
        after = {row["fingerprint"][0]: row for row in store.furniture_items([("watch", "w")])}
    assert sorted(after) == ["a", "b", "c", "d"]
    assert after["a"]["forgotten_by"] == "ed" and after["a"]["reason"] == "changed in 3 of 3"
    assert after["a"]["seen_at"] == rows["a"]["seen_at"]
    assert after["b"]["seen_at"] >= rows["b"]["seen_at"]


def test_two_learners_of_one_scope_at_once_both_store_what_they_learned(
    postgres_url: str, tmp_path: Path
) -> None:
    """Two daemons on one PostgreSQL archive learning the same host at the same moment: each
    refreshes an item the other does not (their counts differ), then marks every item
    seen. Their transactions took the rows' locks in crossed orders, and PostgreSQL ended
    one of them as a deadlock (the learning lost, its traceback logged); now learners of
    one scope write one after the other, and both learnings stand."""
    from monitor.store.furniture import LearnedItem

    names = "abcdefgh"

    def items(refreshed: int, round_: int) -> list[LearnedItem]:
        return [
            LearnedItem("template", c * 64, {"p": c}, c, f"{round_}" if i == refreshed else "0")
            for i, c in enumerate(names)
        ]

    with Store(tmp_path / "first", url=postgres_url) as store:
        store.store_learned("host", "gov.example", items(-1, 0))
    start = threading.Barrier(2)
    failed: list[BaseException] = []

    def learner(name: str, refreshed: int) -> None:
        with Store(tmp_path / name, url=postgres_url) as store:
            for round_ in range(1, 101):
                try:
                    start.wait()
                except threading.BrokenBarrierError:  # the other one failed
                    return
                try:
                    store.store_learned("host", "gov.example", items(refreshed, round_))
                except Exception as err:
                    failed.append(err)
                    start.abort()
                    return

    threads = [
        threading.Thread(target=learner, args=(name, refreshed))
        for name, refreshed in (("a", 1), ("b", 6))
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failed == []
    with Store(tmp_path / "last", url=postgres_url) as store:
        rows = store.furniture_items([("host", "gov.example")])
    # Each item as one of the last learnings found it (each wrote what its reading missed).
    assert [row["fingerprint"][0] for row in rows] == list(names)
    assert {row["reason"] for row in rows} <= {"0", "100"}, rows


@pytest.mark.process
def test_the_watch_page_lists_learned_furniture_and_an_editor_undoes_it(
    tmp_path: Path, site: Site, make_daemon: type[Daemon]
) -> None:
    original = _page(ENGLISH[0])
    paragraphs = _paragraphs(original)
    teasers = _rotating()
    config = _config(tmp_path, site, ["/story"])
    daemon = make_daemon(config)
    for n in range(MIN_CHANGES + 1):
        site.pages["/story"] = _after_paragraph(original, paragraphs[2], f"<p>{teasers[n]}</p>")
        daemon.check("story")
    [item] = daemon.store.furniture_items([("watch", "story")])
    for name, role in (("ed", "editor"), ("vi", "viewer")):
        assert add_user(config, name, role).returncode == 0
    forget = f"/watch/story/furniture/{item['id']}/forget"
    with serving(config) as url:
        viewer = login(url, "vi")
        shown = viewer.get("/watch/story")
        assert 'id="furniture"' in shown.text and item["reason"] in shown.text
        assert escape(item["example"], quote=False) in shown.text
        assert forget not in shown.text  # no button for a viewer
        assert viewer.post(forget, data={"csrf": csrf(viewer)}).status_code == 403
        editor = login(url, "ed")
        assert forget in editor.get("/watch/story").text
        assert editor.post(forget, data={}).status_code == 403  # no CSRF token
        assert daemon.store.furniture_items([("watch", "story")], forgotten=False) != []
        done = editor.post(forget, data={"csrf": csrf(editor)})
        assert done.status_code == 303 and done.headers["location"] == "/watch/story#furniture"
        missing = editor.post("/watch/story/furniture/999/forget", data={"csrf": csrf(editor)})
        assert missing.status_code == 404
        after = editor.get("/watch/story").text
        assert "not furniture" in after and forget not in after
    [forgotten] = daemon.store.furniture_items([("watch", "story")])
    assert forgotten["forgotten_by"] == "ed"
    # Undone in the UI: the next rotation is news again.
    site.pages["/story"] = _after_paragraph(
        original, paragraphs[2], f"<p>{teasers[MIN_CHANGES + 1]}</p>"
    )
    assert daemon.check("story") == 1
