"""`monitor export`: WARC 1.1 that warcio accepts and that gives back every stored byte, and
JSON lines for scripts — from an archive the real pipeline filled from the replica."""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from warcio.archiveiterator import ArchiveIterator

from monitor.config import load_config
from monitor.export import ORIGINAL_PREFIX, warc_digest, write_warc
from monitor.replica import ReplicaSite
from monitor.sites import profile_names
from monitor.store import Store
from tests.conftest import monitor_cli, write_config
from tests.evidence import archive_one_exchange
from tests.postgres import Backend, PostgresServer
from tests.test_store_cli import NEW, NEWEST, OLD, check

T = TypeVar("T")


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def archive(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two watches' history, filled once per backend for this module's tests: baselines and
    an edit read from GraphQL (POST with a body), a removal and its restoration read from
    the REST API (GET)."""
    directory = tmp_path_factory.mktemp(f"archive-{request.param}")
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None
    url = server.create_database() if server else None
    store = Backend(request.param, directory / "store", url).toml()
    with ReplicaSite() as replica:
        config = write_config(directory, replica, languages=("en", "ru"), store=store)
        check(config)
        replica.replace_text(NEWEST["id"], "en", OLD, NEW)
        check(config)
        replica.remove(NEWEST["id"])
        replica.set_mode("graphql_off")
        check(config)
        replica.restore(NEWEST["id"])
        check(config)
    return config


def read_warc(path: Path) -> list[dict[str, Any]]:
    records = []
    with open(path, "rb") as stream:
        for record in ArchiveIterator(stream):
            records.append(
                {
                    "type": record.rec_type,
                    "warc": dict(record.rec_headers.headers),
                    "protocol": record.rec_headers.protocol,
                    "http": record.http_headers,
                    "payload": record.raw_stream.read(),
                }
            )
    return records


def warcio(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "warcio.cli", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_warc_passes_warcio_and_gives_back_every_stored_byte(archive: Path, tmp_path: Path) -> None:
    config = archive
    path, plain = tmp_path / "export.warc.gz", tmp_path / "export.warc"
    for target in (path, plain):
        result = monitor_cli(config, "export", "--warc", str(target))
        assert result.returncode == 0, result.stderr
        checked = warcio("check", "-v", str(target))
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "digest pass" in checked.stdout and "fail" not in checked.stdout
    assert path.read_bytes()[:2] == b"\x1f\x8b" and plain.read_bytes().startswith(b"WARC/1.1")
    indexed = warcio("index", "-f", "warc-type,warc-target-uri,warc-payload-digest", str(path))
    assert indexed.returncode == 0, indexed.stderr

    records = read_warc(path)
    assert records[0]["type"] == "warcinfo"
    assert {r["protocol"] for r in records} == {"WARC/1.1"}
    index = [json.loads(line) for line in indexed.stdout.splitlines()]
    assert [entry["warc-type"] for entry in index] == [r["type"] for r in records]
    by_id = {r["warc"]["WARC-Record-ID"]: r for r in records}
    metadata = {}
    tls_records = {}  # a response's TLS provenance, by the response record it refers to
    for record in records:
        if record["type"] == "metadata":
            facts = json.loads(record["payload"])
            if facts.get("type") == "chain-heads":
                continue  # the hash chains' heads, checked in test_evidence.py
            if facts.get("type") == "tls-provenance":
                assert record["warc"]["WARC-Concurrent-To"] == record["warc"]["WARC-Refers-To"]
                tls_records[record["warc"]["WARC-Refers-To"]] = facts
                continue
            metadata[facts["version_id"]] = (facts, record)

    with Store.from_config(_store_config(config)) as store:
        versions = list(store.iter_versions())
        assert len(versions) == 8 + 8 + 1 + 2 + 2  # baselines en+ru, edit, removed, restored
        assert sorted(metadata) == [v["id"] for v in versions]
        responses = set()
        for version in versions:
            facts, meta = metadata[version["id"]]
            for column in ("seq", "kind", "observed_at", "key", "title", "text_sha256"):
                assert facts[column] == version[column]
            assert meta["warc"]["WARC-Date"] == version["observed_at"]
            described = by_id[meta["warc"]["WARC-Refers-To"]]
            if version["text_sha256"]:
                assert described["type"] == "resource"
                assert described["payload"] == store.read_blob(version["text_sha256"])
                digest = warc_digest(version["text_sha256"])
                assert described["warc"]["WARC-Payload-Digest"] == digest
                response_record = by_id[described["warc"]["WARC-Concurrent-To"]]
            else:
                assert version["kind"] == "removed"
                response_record = described
            stored = store.response(version["response_id"])
            _assert_response(store, response_record, stored)
            # The replica is plain HTTP: each response says so in its own metadata record.
            tls = tls_records[response_record["warc"]["WARC-Record-ID"]]
            assert tls["response"] == stored["id"] and tls["tls"] == {
                "encrypted": False,
                "chain": None,
            }
            request = next(
                r
                for r in records
                if r["warc"].get("WARC-Concurrent-To") == response_record["warc"]["WARC-Record-ID"]
                and r["type"] == "request"
            )
            sent = store.read_blob(stored["request_body"]) if stored["request_body"] else b""
            assert request["payload"] == sent
            assert request["http"].protocol == stored["method"]
            assert request["warc"]["WARC-Target-URI"] == stored["url"]
            responses.add(stored["id"])
    assert {r["type"] for r in records} == {
        "warcinfo",
        "request",
        "response",
        "resource",
        "metadata",
    }
    assert sum(r["type"] == "response" for r in records) == len(responses)
    assert sum(r["type"] == "request" for r in records) == len(responses)
    assert len(tls_records) == len(responses)
    methods = {r["http"].protocol for r in records if r["type"] == "request"}
    assert methods == {"POST", "GET"}
    # The uncompressed file holds the same records.
    assert [(r["type"], r["payload"]) for r in read_warc(plain)] == [
        (r["type"], r["payload"]) for r in records
    ]


def _assert_response(store: Store, record: dict[str, Any], stored: dict[str, Any]) -> None:
    assert record["type"] == "response"
    body = store.read_blob(stored["body_sha256"])
    assert record["payload"] == body
    assert record["warc"]["WARC-Payload-Digest"] == warc_digest(stored["body_sha256"])
    assert record["warc"]["WARC-Target-URI"] == stored["final_url"]
    assert record["warc"]["WARC-Date"] == stored["requested_at"]
    assert record["http"].get_statuscode() == str(stored["status"])
    headers = [
        (name.removeprefix(ORIGINAL_PREFIX), value)
        for name, value in record["http"].headers
        if name != "Content-Length"
    ]
    assert headers == [tuple(h) for h in stored["headers"]]
    assert record["http"].get_header("Content-Length") == str(len(body))


def _store_config(config: Path):  # type: ignore[no-untyped-def]
    return load_config(config, known_profiles=profile_names()).store


def test_jsonl_has_every_version_with_its_text_and_hashes(archive: Path, tmp_path: Path) -> None:
    config = archive
    result = monitor_cli(config, "export", "--format", "jsonl")
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert lines[-1]["type"] == "chain-heads"  # the last line: the hash chains' heads
    lines = lines[:-1]
    assert len(lines) == 21
    edited = [line for line in lines if line["kind"] == "edited"]
    assert len(edited) == 1 and NEW in edited[0]["text"] and edited[0]["watch"] == "mfa-en"
    for line in lines:
        if line["statement"] is None:
            assert line["kind"] == "removed" and line["text"] is None
            continue
        canonical = json.dumps(
            line["statement"], ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        assert hashlib.sha256(canonical.encode()).hexdigest() == line["text_sha256"]
        assert line["statement"]["title"] in line["text"]
        assert len(line["response"]["body_sha256"]) == 64
    # Filters: one watch; versions since the edit (its check's time, to the millisecond).
    out = tmp_path / "ru.jsonl"
    result = monitor_cli(
        config, "export", "--format", "jsonl", "--watch", "mfa-ru", "--output", str(out)
    )
    assert result.returncode == 0 and "wrote 10 versions" in result.stdout
    assert {json.loads(line)["watch"] for line in out.read_text().splitlines()[:-1]} == {"mfa-ru"}
    since = edited[0]["observed_at"]
    result = monitor_cli(config, "export", "--format", "jsonl", "--since", since)
    kinds = sorted(json.loads(line)["kind"] for line in result.stdout.splitlines()[:-1])
    assert kinds == ["edited", "removed", "removed", "restored", "restored"]
    result = monitor_cli(config, "export", "--format", "jsonl", "--since", "1h")
    assert len(result.stdout.splitlines()) == 21 + 1
    result = monitor_cli(config, "export", "--format", "jsonl", "--since", "2999-01-01")
    [heads] = [json.loads(line) for line in result.stdout.splitlines()]
    assert result.returncode == 0 and heads["type"] == "chain-heads"


def test_export_usage_errors(archive: Path) -> None:
    for args, message in (
        (("--format", "jsonl", "--since", "last tuesday"), "--since: 'last tuesday'"),
        (("--format", "jsonl", "--watch", "nope"), "no versions stored for watch 'nope'"),
        (("--warc", "x.warc", "--output", "y"), "--output goes with --format"),
    ):
        result = monitor_cli(archive, "export", *args)
        assert result.returncode == 2 and message in result.stderr, result.stderr


@pytest.mark.parametrize("blobs", ["db", "path"])
def test_a_damaged_blob_is_left_out_and_named(
    tmp_path: Path, replica: ReplicaSite, blobs: str
) -> None:
    """Everything else is exported; the damage is named, never passed off as data, and
    the exit status says the export is incomplete (blob bytes in the database or files)."""
    archive = Backend("sqlite", tmp_path / "store", blobs=blobs)
    config = write_config(tmp_path, replica, store=archive.toml())
    check(config)
    full = tmp_path / "full.warc.gz"
    assert monitor_cli(config, "export", "--warc", str(full)).returncode == 0
    db = sqlite3.connect(tmp_path / "store" / "index.sqlite")
    [text] = db.execute("SELECT text_sha256 FROM version ORDER BY id LIMIT 1").fetchone()
    [body] = db.execute("SELECT body_sha256 FROM response ORDER BY id LIMIT 1").fetchone()
    for sha in (text, body):
        archive.spoil_blob(sha, archive.stored_blob(sha)[:-2] + b"\x00\x00")
    out = tmp_path / "out.warc.gz"
    result = monitor_cli(config, "export", "--warc", str(out))
    assert result.returncode == 1
    assert "export incomplete, 2 part(s) left out" in result.stderr
    for sha in (text, body):
        assert f"blob {sha} is damaged" in result.stderr
    assert "(run `monitor verify`)" in result.stderr
    written, whole = read_warc(out), read_warc(full)
    digests = {r["warc"].get("WARC-Payload-Digest") for r in written}
    for sha in (text, body):  # the damaged bytes are nowhere
        assert warc_digest(sha) not in digests
        assert warc_digest(sha) in {r["warc"].get("WARC-Payload-Digest") for r in whole}
    # Every version's metadata record is there; only the damaged statement's resource
    # record and the damaged response's request, response and TLS provenance records (which
    # would refer to a record not written) are missing.
    metadata = [
        r for r in written if r["type"] == "metadata" and b"tls-provenance" not in r["payload"]
    ]
    assert len(metadata) == len(
        [r for r in whole if r["type"] == "metadata" and b"tls-provenance" not in r["payload"]]
    )
    assert len(whole) - len(written) == 4
    lines = monitor_cli(config, "export", "--format", "jsonl")
    assert lines.returncode == 1 and f"blob {text} is damaged" in lines.stderr
    assert len(lines.stdout.splitlines()) == len(metadata) - 1


def test_headers_are_written_back_as_received_and_transfer_headers_renamed(
    tmp_path: Path,
) -> None:
    body = "Заявление МИД: café\n".encode()
    with Store(tmp_path / "store") as store:
        archive_one_exchange(
            store,
            url="https://gov.example/page",
            http_version="HTTP/2",
            request_headers={"Accept-Language": "ru"},
            # As the HTTP client gives them: bytes decoded as latin-1.
            headers=[
                ("content-type", "text/plain; charset=utf-8"),
                ("content-encoding", "gzip"),
                ("content-length", "17"),
                ("x-note", "café".encode().decode("latin-1")),
            ],
            body=body,
        )
        path = tmp_path / "plain.warc"
        count = write_warc(store, path)
    assert (count.versions, count.records) == (1, 6)  # with the chain heads
    data = path.read_bytes()
    assert b"HTTP/2 200 OK\r\n" in data
    assert b"X-Archive-Orig-content-encoding: gzip\r\n" in data
    assert b"X-Archive-Orig-content-length: 17\r\n" in data
    assert f"Content-Length: {len(body)}\r\n".encode() in data
    assert "x-note: café\r\n".encode() in data  # the original bytes, not %-encoded
    assert b"\r\n\r\n" + body in data
    assert warcio("check", str(path)).returncode == 0
    with open(path, "rb") as stream:
        records = ArchiveIterator(stream)
        payloads = [r.content_stream().read() for r in records if r.rec_type == "response"]
    assert payloads == [body]  # a reader does not try to gunzip it


@pytest.mark.slow
def test_response_headers_handing_out_secrets_are_redacted_in_every_export(
    tmp_path: Path,
) -> None:
    """A Set-Cookie the site sent (its session, for whoever replays it) and URL credentials
    in a Location are `[redacted]` / `***` in JSON lines, WARC and WACZ unless
    --include-secrets; the payload and its digest stay those of the capture."""
    from monitor.export import write_jsonl
    from monitor.wacz import write_wacz

    cookie, credentials = "sid=S-51c0-secret; HttpOnly", "op:L-77d1-secret"
    body = b'{"items": []}'
    with Store(tmp_path / "store") as store:
        archive_one_exchange(
            store,
            request_headers={"Referer": f"https://{credentials}@gov.example/"},
            headers=[
                ("content-type", "application/json"),
                ("set-cookie", cookie),
                ("Content-Location", f"https://{credentials}@gov.example/api"),
                ("www-authenticate", 'Basic realm="gov"'),  # a challenge: no secret
            ],
            redirects=[(302, f"https://{credentials}@gov.example/old")],
            body=body,
        )
        exports: dict[str, dict[bool, bytes]] = {"jsonl": {}, "warc": {}, "wacz": {}}
        for secrets in (False, True):
            lines = tmp_path / f"out-{secrets}.jsonl"
            write_jsonl(store, lines, include_secrets=secrets)
            exports["jsonl"][secrets] = lines.read_bytes()
            warc = tmp_path / f"out-{secrets}.warc"
            write_warc(store, warc, include_secrets=secrets)
            exports["warc"][secrets] = warc.read_bytes()
            assert warcio("check", "-v", str(warc)).returncode == 0  # block digests as written
            [response] = [r for r in read_warc(warc) if r["type"] == "response"]
            assert response["payload"] == body
            digest = warc_digest(hashlib.sha256(body).hexdigest())
            assert response["warc"]["WARC-Payload-Digest"] == digest
            shown = response["http"].get_header("set-cookie")
            assert shown == (cookie if secrets else "[redacted]")
            assert response["http"].get_header("www-authenticate") == 'Basic realm="gov"'
            wacz = tmp_path / f"out-{secrets}.wacz"
            write_wacz(store, wacz, include_secrets=secrets)
            with zipfile.ZipFile(wacz) as package:
                exports["wacz"][secrets] = b"".join(
                    gzip.decompress(data) if name.endswith(".gz") else data
                    for name in package.namelist()
                    for data in [package.read(name)]
                )
    for kind, by_choice in exports.items():
        for value in ("S-51c0-secret", "L-77d1-secret"):
            assert value.encode() not in by_choice[False], kind
            assert value.encode() in by_choice[True], kind
    jsonl = json.loads(exports["jsonl"][False].splitlines()[0])["response"]
    assert ["set-cookie", "[redacted]"] in jsonl["headers"]
    assert ["Content-Location", "https://***@gov.example/api"] in jsonl["headers"]
    assert jsonl["request_headers"]["Referer"] == "https://***@gov.example/"
    assert b"Content-Location: https://***@gov.example/api\r\n" in exports["warc"][False]
    assert b"Referer: https://***@gov.example/\r\n" in exports["warc"][False]


def test_each_version_facts_read_by_page_are_its_own(
    tmp_path: Path, replica: ReplicaSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An export reads what lies beside its versions (trusted timestamps, independent
    copies, screenshots, responses) a page of versions at a time: each version's line
    carries its own, as when it is read for that version alone, across pages."""
    from monitor import export
    from monitor.store.records import NewScreenshot

    config = write_config(tmp_path, replica, languages=("en", "ru"))
    check(config)
    replica.replace_text(NEWEST["id"], "en", OLD, NEW)
    check(config)
    store_config = load_config(config).store
    with Store.from_config(store_config) as store:
        rows = list(store.iter_versions())
        assert len(rows) > 6 and len({row["response_id"] for row in rows}) > 2
        ids = [row["id"] for row in rows]
        # Each beside some versions only, in different patterns, so that a fact read for
        # the wrong version of its page shows.
        store.timestamps.record_batch(
            b"manifest", "https://tsa.example/", b"token", "2026-01-01T00:00:00Z", "1",
            {vid: f"head-{vid}" for vid in ids[::2]}, "2026-01-01T00:00:01Z",
        )  # fmt: skip
        store.copies.queue_new({row["watch_id"] for row in rows}, "web.archive.org", "")
        for copy in store.copies.copies_of(ids[1::3]).values():
            store.copies.update(
                copy[0]["id"],
                state="captured",
                capture_url=f"https://web.archive.org/{copy[0]['version_id']}",
                captured_at="2026-01-02T00:00:00Z",
            )
        for vid in ids[2::3]:
            shot = NewScreenshot(rows[0]["watch_id"], "2026-01-03T00:00:00Z", "https://x/",
                                 f"png of {vid}".encode(), 10, 10)  # fmt: skip
            store.screenshots.record(shot, [vid])
        alone = {row["id"]: export.version_facts(store, row, include_secrets=True) for row in rows}
        assert sum(f["timestamp"] is not None for f in alone.values()) == len(ids[::2])
        assert sum(bool(f["independent_copies"]) for f in alone.values()) == len(ids[1::3])
        assert sum(f["screenshot"] is not None for f in alone.values()) == len(ids[2::3])
        monkeypatch.setattr(export, "KNOWN_PAGE", 2)
        target = tmp_path / "export.jsonl"
        export.write_jsonl(store, target, include_secrets=True)
    lines = [json.loads(line) for line in target.read_text().splitlines()]
    versions = [line for line in lines if "type" not in line]
    assert [line["version_id"] for line in versions] == ids
    for line in versions:
        for name in ("statement", "text", "attachments"):
            del line[name]
        assert line == json.loads(json.dumps(alone[line["version_id"]]))


def test_the_ui_keeps_its_export_store_open_and_it_sees_later_versions(
    tmp_path: Path, replica: ReplicaSite
) -> None:
    """The web UI's exports run on a store kept open from one export to the next: the
    next export reads with the same store, and what was archived since is in it."""
    from monitor.export import ExportStores, write_jsonl

    config = write_config(tmp_path, replica)
    check(config)
    store_config = load_config(config).store
    stores = ExportStores(size=1)

    def exported(name: str) -> list[dict[str, Any]]:
        target = tmp_path / name
        stores.run(store_config, write_jsonl, target, "mfa-en")
        assert not (tmp_path / f"{name}.partial").exists()
        return [json.loads(line) for line in target.read_text().splitlines()[:-1]]

    try:
        first = exported("first.jsonl")
        [(_config, kept)] = stores._idle
        replica.replace_text(NEWEST["id"], "en", OLD, NEW)
        check(config)
        second = exported("second.jsonl")
        assert [(_config, store) for _config, store in stores._idle] == [(store_config, kept)]
    finally:
        stores.close()
    assert stores._idle == []
    assert [line["kind"] for line in second] == [line["kind"] for line in first] + ["edited"]
    assert any(NEW in line["text"] for line in second[len(first) :])


def test_the_ui_exports_one_at_a_time_per_kept_store(tmp_path: Path, replica: ReplicaSite) -> None:
    """Exports asked at once take turns on the kept stores (`size`), rather than each
    opening a store of its own: with one, they run one after another, on one store."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from monitor.export import ExportStores, write_jsonl

    config = write_config(tmp_path, replica)
    check(config)
    store_config = load_config(config).store
    stores = ExportStores(size=1)
    running, most, used = 0, 0, set()
    lock = threading.Lock()

    def writer(store: Store, target: Path, watch_id: str, **options: Any) -> Any:
        nonlocal running, most
        with lock:
            running += 1
            most = max(most, running)
            used.add(id(store))
        time.sleep(0.2)  # long enough for the others to have asked meanwhile
        try:
            return write_jsonl(store, target, watch_id, **options)
        finally:
            with lock:
                running -= 1

    try:
        with ThreadPoolExecutor(4) as pool:
            counts = list(
                pool.map(
                    lambda n: stores.run(store_config, writer, tmp_path / f"{n}.jsonl", "mfa-en"),
                    range(4),
                )
            )
    finally:
        stores.close()
    assert most == 1 and len(used) == 1
    assert len({count.versions for count in counts}) == 1 and counts[0].versions > 0


def _waited(find: Callable[[], T | None], what: str) -> T:
    """What `find()` finds, asked until it does (a minute at most: a hang, not a figure)."""
    deadline = time.monotonic() + 60
    while (found := find()) is None:
        if time.monotonic() > deadline:
            pytest.fail(f"no {what}")
        time.sleep(0.01)
    return found


def _holder_of(path: Path) -> int | None:
    """The process that has `path` open (Linux: /proc/PID/fd), if any."""
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        with contextlib.suppress(OSError):
            if os.readlink(fd) == str(path):
                return int(fd.parts[2])
    return None


@pytest.mark.slow
def test_an_export_whose_worker_is_killed_leaves_no_file_behind(
    tmp_path: Path, replica: ReplicaSite, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The UI writes an export in a worker process, to a temporary directory it sends and
    then removes. A worker killed midway (over its time limit, by the kernel's
    out-of-memory killer: SIGKILL) cleans up nothing itself: its half-written file and
    directory go all the same, and the next export is whole."""
    from monitor.store.blobs import stored_blob_file

    config = write_config(tmp_path, replica, store='blobs = "path"')
    config.write_text(config.read_text().replace("[server]\n", "[server]\npublic = true\n"))
    check(config)
    store_config = load_config(config).store
    with Store.from_config(store_config) as store:
        *_, last = store.iter_versions(store.family("mfa-en"))
    blob = stored_blob_file(store_config.path / "blobs", last["text_sha256"])
    assert blob is not None
    # The server's temporary files (a short path: its workers' forkserver listens there).
    with tempfile.TemporaryDirectory() as name:
        temporary = Path(name)
        monkeypatch.setenv("TMPDIR", name)
        _kill_an_export(config, temporary, blob)


def _kill_an_export(config: Path, temporary: Path, blob: Path) -> None:
    from tests.webui import serving

    saved = blob.read_bytes()
    with serving(config) as url, httpx.Client(base_url=url, timeout=60) as client:
        whole = client.get("/watch/mfa-en/export.jsonl")
        assert whole.status_code == 200 and len(whole.text.splitlines()) > 3
        # The last version's statement a pipe nobody writes: the worker's export waits
        # there, its file half written, until it is killed.
        blob.unlink()
        os.mkfifo(blob)
        with ThreadPoolExecutor(1) as pool:
            answer = pool.submit(client.get, "/watch/mfa-en/export.jsonl")
            partial = _waited(
                lambda: next(temporary.glob("monitor-export-*/*.partial"), None), "export file"
            )
            os.kill(_waited(lambda: _holder_of(partial), "process writing it"), signal.SIGKILL)
            failed = answer.result()
            # Said to the visitor as the export's failure, with why (not a reset connection).
            assert failed.status_code == 503, failed.text
            assert "The export could not be made" in failed.text
            assert "the worker was killed" in failed.text
        assert not list(temporary.glob("monitor-export-*"))
        blob.unlink()
        blob.write_bytes(saved)
        again = client.get("/watch/mfa-en/export.jsonl")
        assert again.status_code == 200 and again.content == whole.content
    assert not list(temporary.glob("monitor-export-*"))


@pytest.mark.slow
def test_a_kept_export_store_whose_connection_has_gone_exports_all_the_same(
    tmp_path: Path, postgres_server: PostgresServer
) -> None:
    """The UI's exports keep their store open from one export to the next. Its connection
    to a PostgreSQL archive may end meanwhile (the server restarted, an idle connection
    cut): the next export is made all the same, as when each export opened a store."""
    import psycopg

    from monitor.config import StoreConfig
    from monitor.export import ExportStores, write_jsonl

    url = postgres_server.create_database()
    store_config = StoreConfig(path=tmp_path / "store", url=url)
    with Store.from_config(store_config) as store:
        archive_one_exchange(store, request_headers={"Accept": "*/*"}, headers=[])
    stores = ExportStores(size=1)
    try:
        first = stores.run(store_config, write_jsonl, tmp_path / "first.jsonl", "w")
        with psycopg.connect(url, autocommit=True) as admin:
            ended = admin.execute(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            ).fetchone()
        assert ended == (1,)  # the kept store's
        second = stores.run(store_config, write_jsonl, tmp_path / "second.jsonl", "w")
    finally:
        stores.close()
    assert first.versions == second.versions == 1 and not second.skipped
    assert (tmp_path / "second.jsonl").read_text() == (tmp_path / "first.jsonl").read_text()
