"""The cheaper paths of a new page's storing (issue 28): the worker compresses the blobs of
watches that read attachments too, the store takes the hashes it was told for the very
bytes it was given, and reads blob files without a transaction. Each gives what the longer
way gave."""

from __future__ import annotations

import asyncio
import hashlib
import sqlite3
from datetime import UTC, datetime
from pathlib import Path

import pytest
import zstandard

from monitor.compression import compress
from monitor.fetch import FetchRequest, FetchResult
from monitor.isolate import read_answer
from monitor.statement import Document, Extraction, Link, Statement, Target
from monitor.store import Store

URL = "https://example.org/statement/1"


class _Fixed:
    """A profile whose reading is these statements (a page with and one without files)."""

    def __init__(self, statements: list[Statement]) -> None:
        self.statements = statements

    def extract(self, result: FetchResult, target: Target) -> Extraction:
        return Extraction(statements=list(self.statements))


def _statements() -> list[Statement]:
    plain = Statement(key="a", url=URL, title="A", paragraphs=("One.", "Two."))
    pdf = Link(href="https://example.org/files/decree.pdf", text="Decree")
    with_files = Statement(key="b", url=URL, title="B", paragraphs=("Three.",), attachments=(pdf,))
    return [plain, with_files]


def _result(body: bytes) -> FetchResult:
    return FetchResult(FetchRequest(URL), URL, datetime.now(UTC), 200, body=body)


def test_the_worker_compresses_all_but_the_statements_whose_files_are_read_in() -> None:
    body = b"<html><body><p>One.</p></body></html>"
    body_sha = hashlib.sha256(body).hexdigest()
    plain, with_files = _statements()
    profile = _Fixed([plain, with_files])

    _extraction, compressed = read_answer(profile, _result(body), Target(URL), body_sha, True)
    assert compressed == {
        plain.sha256: compress(plain.to_json()),
        body_sha: compress(body),
    }
    # Without attachments read in, every statement's blob is compressed there.
    _extraction, compressed = read_answer(profile, _result(body), Target(URL), body_sha, False)
    assert set(compressed) == {plain.sha256, with_files.sha256, body_sha}
    # A listing (no hash given) archives nothing: nothing is compressed.
    assert read_answer(profile, _result(body), Target(URL), None, True)[1] == {}


def test_a_prepared_blob_is_stored_under_its_hash_and_read_back(tmp_path: Path) -> None:
    with Store(str(tmp_path / "store")) as store:
        data = b"statement text " * 100
        sha256 = hashlib.sha256(data).hexdigest()
        asyncio.run(store.blobs.prepare({sha256: data}, {}))
        assert store.put_blob(data) == sha256  # named by prepare: the same bytes object
        equal = bytes(bytearray(data))  # equal bytes, another object: hashed
        assert equal is not data
        assert store.put_blob(equal) == sha256
        assert store.read_blob(sha256) == data
        other = b"another text"
        assert store.put_blob(other) == hashlib.sha256(other).hexdigest()
        assert store.read_blob(hashlib.sha256(other).hexdigest()) == other


def test_bytes_named_for_commits_that_never_came_are_bounded(tmp_path: Path) -> None:
    # A big page whose commit fails again and again (a full disk): each retry names new
    # bytes objects of the same page; what they hold stays a few pages, not one per retry.
    page = b"<p>a long statement</p>" * 200_000  # 4.6 MB
    sha256, packed = hashlib.sha256(page).hexdigest(), compress(page)
    with Store(str(tmp_path / "store")) as store:
        for _retry in range(30):
            again = bytes(bytearray(page))  # read anew: another object, the same bytes
            asyncio.run(store.blobs.prepare({sha256: again}, {sha256: packed}))
        held = sum(len(data) for data, _name in store.blobs._named.values())
        assert held <= 80 * 1024 * 1024, f"{held / 2**20:.0f} MiB held for 30 failed commits"
        # A commit that does come still finds its name, and stores the bytes as they are.
        last = bytes(bytearray(page))
        asyncio.run(store.blobs.prepare({sha256: last}, {}))
        assert store.put_blob(last) == sha256
        assert store.read_blob(sha256) == page


def test_a_statements_canonical_json_keeps_its_bytes() -> None:
    # Its JSON, built field by field in the worker (not through dataclasses.asdict), names
    # every archived version: these hashes are those the archive has always given.
    full = Statement(
        key="page",
        url="https://example.org/s/1",
        title="Заявление «МИД»",
        paragraphs=("Астана, 20 ноября.", 'Второй абзац "в кавычках"\t\\ и ✓.'),
        published="2026-11-20T14:35",
        language="ru",
        links=(Link("https://example.org/a?b=1&c=2", "Ссылка"),),
        attachments=(Link("https://example.org/f.pdf", "Decree"),),
        figures=("A photo's caption",),
        documents=(
            Document(
                "https://example.org/f.pdf",
                "Decree",
                "PDF",
                "ab" * 32,
                1234,
                pages=(("p1 line",), ("p2",)),
                metadata=(("author", "X"),),
                ocr_pages=(2,),
                ocr_unsure=("wrd",),
            ),
            Document("https://example.org/g.docx", "G", "DOCX", "cd" * 32, 9, pages=(("x",),)),
        ),
    )
    bare = Statement(key="k", url="u", title="", paragraphs=())
    assert full.sha256 == "5547f9b1a0edd3ce8287a06ccd1f898ff132d6ec0523bb193d013ba4c1dc4a2e"
    assert bare.sha256 == "e266b0d2718512e28e16b8973c32e63107d0117d71fb7a0d7544588a5ea1cd1d"
    assert bare.to_json() == (
        b'{"key":"k","language":null,"links":[],"paragraphs":[],"published":null,'
        b'"title":"","url":"u"}'
    )
    assert Statement.from_json(full.to_json()) == full


def test_blob_files_are_written_whole_and_owner_only_in_groups_and_alone(tmp_path: Path) -> None:
    # A group of new files (syncfs) and a file alone (fsync), each into a directory of the
    # fan-out that does not exist yet: every file holds exactly its compressed bytes, is its
    # owner's alone (as `tempfile.mkstemp` made them), and no temporary file stays behind.
    from monitor.store.blobs import blob_file, write_group

    root = tmp_path / "blobs"
    root.mkdir()
    blobs = {f"page {n}".encode() * 500: None for n in range(5)}
    named = {hashlib.sha256(data).hexdigest(): data for data in blobs}
    group = dict(list(named.items())[:4])
    alone = dict(list(named.items())[4:])
    for files in (group, alone):
        sizes = write_group(root, {sha: (data, None) for sha, data in files.items()})
        for sha256, data in files.items():
            path = blob_file(root, sha256)
            assert path.read_bytes() == compress(data)
            assert sizes[sha256] == path.stat().st_size
            assert path.stat().st_mode & 0o777 == 0o600
    assert not [p for p in root.rglob(".tmp-*")]
    # Written again: found where they are, not written twice.
    again = write_group(root, {sha: (data, None) for sha, data in named.items()})
    assert again == {sha: blob_file(root, sha).stat().st_size for sha in named}


def test_the_last_checks_of_a_run_commit_without_waiting_for_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """New versions of checks of a moment share a transaction (Database.together), which
    waits for more for up to GROUP_WINDOW; once every check under way waits for it, none
    can join: it is written at once. Here the window is an hour: the run ends all the
    same, with both pages archived."""
    from monitor.config import parse_config
    from monitor.store import database
    from monitor.wiring import build
    from tests.conftest import serve_pages

    monkeypatch.setattr(database, "GROUP_WINDOW", 3600.0)
    article = (
        "<html><body><main><article><h1>Statement {n}</h1>"
        + "<p>The Ministry of Foreign Affairs states that talks on the matter went on. </p>" * 8
        + "</article></main></body></html>"
    )
    site = serve_pages(lambda path: article.format(n=path.strip("/")).encode())
    base = next(site)
    try:
        config = parse_config(
            f'[store]\npath = "{tmp_path / "store"}"\n[fetch]\nallow_private = true\n'
            '[alerts]\nconfirm_delay = "0s"\n'
            + "".join(f'[[watch]]\nid = "p{n}"\nurl = "{base}/{n}"\n' for n in (1, 2))
        )
        with Store.from_config(config.store) as store:
            runtime = build(config, store)
            outcomes = asyncio.run(asyncio.wait_for(runtime.check_once(config.watch), 60))
            assert [(o.watch_id, o.outcome) for o in outcomes] == [
                ("p1", "changed"),
                ("p2", "changed"),
            ]
        with sqlite3.connect(tmp_path / "store" / "index.sqlite") as archive:
            assert archive.execute("SELECT COUNT(*) FROM version").fetchone() == (2,)
    finally:
        next(site, None)


def test_blobs_compressed_ahead_go_into_the_database_unasked_and_never_twice(
    tmp_path: Path,
) -> None:
    # Blobs in the database (a new archive's default): bytes compressed ahead (by the worker,
    # or `prepare`) are written "or ignore" without a select first; one the database holds
    # already keeps its row and its bytes.
    data, other = b"statement text " * 100, b"another statement " * 80
    sha256, other_sha = hashlib.sha256(data).hexdigest(), hashlib.sha256(other).hexdigest()
    with Store(str(tmp_path / "store")) as store:
        assert store.db.blob_mode == "db"
        assert store.put_blob(data) == sha256
        statements: list[str] = []
        store.db._driver.set_trace_callback(statements.append)
        level = zstandard.ZstdCompressor(level=19).compress
        asyncio.run(store.blobs.prepare({sha256: data}, {sha256: level(data)}))
        asyncio.run(store.blobs.prepare({other_sha: other}, {other_sha: level(other)}))
        assert store.put_blob(data) == sha256
        assert store.put_blob(other) == other_sha
        store.db._driver.set_trace_callback(None)
        asked = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
        assert asked == [], asked
        assert store.read_blob(sha256) == data and store.read_blob(other_sha) == other
        with sqlite3.connect(tmp_path / "store" / "index.sqlite") as db:
            rows = dict(db.execute("SELECT b.sha256, b.stored_size FROM blob b"))
            held = dict(db.execute("SELECT sha256, length(data) FROM blob_data"))
        assert rows == held  # each row's size is that of the bytes held
        assert rows[sha256] == len(compress(data))  # the first bytes, kept
        assert rows[other_sha] == len(level(other))  # the bytes compressed ahead
        report = store.verify()
        assert (report.damage, report.orphans, report.blobs) == ([], [], 2)
