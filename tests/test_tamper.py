"""Tamper evidence: every way of rewriting a statement's history behind the store's back is
named by `monitor verify` (the archive) and by `monitor verify --export` (an export alone,
as a third party would check it)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from monitor.export import verify_export, write_jsonl, write_warc
from monitor.extract import Statement
from monitor.store import NewVersion, Store
from tests.postgres import Backend
from tests.test_store import commit

TIMES = [f"2026-11-25T10:0{n}:00.000Z" for n in range(5)]
DOCUMENT = "(SELECT id FROM document WHERE key = 'en/1')"


def new_version(kind: str, title: str, key: str = "en/1") -> NewVersion:
    url = f"https://gov.example/news/{key}"
    statement = Statement(key, url, title, (f"{title} said one thing.", "Then another."))
    return NewVersion(key, url, title, None, "en", kind, statement.to_json(), 0.5, kind)


def history(store: Store) -> dict[int, int]:
    """A statement with four versions (and a second statement), {seq: version id}."""
    store.sync_watch("w", "https://gov.example/news", "govkz")
    commit(store, TIMES[0], new_version("baseline", "A"), new_version("baseline", "Z", "en/2"))
    for at, title in zip(TIMES[1:4], "BCD", strict=True):
        commit(store, at, new_version("edited", title))
    document = store.document("w", "en/1")
    assert document is not None
    return {row["seq"]: row["id"] for row in store.versions(document["id"])}


TAMPERING: dict[str, tuple[Callable[[dict[int, int]], list[str]], str]] = {
    "newest removed": (
        lambda ids: [f"DELETE FROM version WHERE id = {ids[4]}"],
        "statement w en/1: newest version is #3, but the chain head names another",
    ),
    "middle removed": (
        lambda ids: [f"DELETE FROM version WHERE id = {ids[2]}"],
        "version w en/1 #3 (id {3}): follows #1: a version was removed or moved",
    ),
    "reordered": (
        lambda ids: [
            f"UPDATE version SET seq = 99 WHERE id = {ids[2]}",
            f"UPDATE version SET seq = 2 WHERE id = {ids[3]}",
            f"UPDATE version SET seq = 3 WHERE id = {ids[2]}",
        ],
        "version w en/1 #2 (id {3}): follows #3: a version was removed or moved; its record "
        "was altered",
    ),
    "row edited": (
        lambda ids: [
            f"UPDATE version SET observed_at = '2026-11-24T00:00:00.000Z' WHERE id = {ids[3]}"
        ],
        "version w en/1 #3 (id {3}): its record was altered",
    ),
    "removed newest with its head moved back": (
        lambda ids: [
            f"UPDATE document SET chain_head = (SELECT chain FROM version WHERE id = {ids[3]}) "
            f"WHERE id = {DOCUMENT}",
            f"DELETE FROM version WHERE id = {ids[4]}",
        ],
        "watch w: its newest recorded version is not the chain head's",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERING))
def test_verify_names_each_tampered_version(backend: Backend, case: str) -> None:
    with backend.store() as store:
        ids = history(store)
        clean = store.verify()
        assert clean.damage == []
        statements, expected = TAMPERING[case]
        backend.tamper(*statements(ids))
        damage = "\n".join(store.verify().damage)
    assert expected.format(*[None, ids[1], ids[2], ids[3], ids[4]]) in damage, damage


def test_an_export_is_checked_on_its_own(tmp_path: Path) -> None:
    with Store(tmp_path / "store") as store:
        ids = history(store)
        jsonl, warc = tmp_path / "all.jsonl", tmp_path / "all.warc.gz"
        write_jsonl(store, jsonl)
        write_warc(store, warc)
        partial = tmp_path / "since.jsonl"
        write_jsonl(store, partial, since=TIMES[2])
    for path in (jsonl, warc, partial):
        report = verify_export(path)
        assert report.damage == [] and report.checked > 0, (path, report.damage)
    assert verify_export(jsonl).checked == 5 and verify_export(partial).checked == 2

    lines = jsonl.read_text(encoding="utf-8").splitlines()
    versions, heads = [json.loads(line) for line in lines[:-1]], lines[-1]

    def damage_of(edited: list[dict[str, object]], name: str) -> str:
        path = tmp_path / name
        path.write_text("\n".join([*map(json.dumps, edited), heads]) + "\n", encoding="utf-8")
        return "\n".join(verify_export(path).damage)

    # The newest version of en/1 left out of the file.
    newest = [v for v in versions if not (v["key"] == "en/1" and v["seq"] == 4)]
    assert "newest version is #3, but the chain head names another" in damage_of(newest, "a")
    # A word of a statement changed in the file (its facts left alone).
    changed = json.loads(json.dumps(versions))
    changed[2]["statement"]["title"] = "Something else"
    assert "its text does not match its SHA-256" in damage_of(changed, "b")
    # A fact changed, and the text hash made to match.
    moved = json.loads(json.dumps(versions))
    moved[3]["observed_at"] = "2026-01-01T00:00:00.000Z"
    assert f"#{moved[3]['seq']} (id" not in damage_of(moved, "c")  # exports carry no row ids
    assert "its record was altered" in damage_of(moved, "c")
    # Cut short: no heads at all.
    cut = tmp_path / "cut.jsonl"
    cut.write_text("\n".join(lines[:-1]) + "\n", encoding="utf-8")
    assert any("no chain heads" in line for line in verify_export(cut).damage)
    assert ids  # (the history itself is checked above)
