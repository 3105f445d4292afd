"""Looks in flight (monitor/inflight.py): what a process fetched, kept until its commit,
is found again by the next process only once the first is dead, as it was fetched."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from monitor.fetched import FetchRequest, FetchResult
from monitor.inflight import InFlight
from tests.conftest import REPO

_BEGIN = textwrap.dedent(
    """
    import sys, time
    from datetime import UTC, datetime
    from pathlib import Path
    from monitor.fetched import FetchRequest, FetchResult
    from monitor.inflight import InFlight
    from monitor.tls import TlsInfo

    flight = InFlight(Path(sys.argv[1]))
    result = FetchResult(
        request=FetchRequest("https://example.org/a", "POST", {"Accept": "x"}, b"q=1", False),
        url="https://example.org/b",
        requested_at=datetime(2026, 12, 8, 1, 2, 3, 456000, tzinfo=UTC),
        status=200,
        http_version="HTTP/2",
        headers=[("Content-Type", "text/html; charset=utf-8"), ("ETag", '"e"')],
        body=bytes(range(256)) * 100,
        redirects=[(301, "https://example.org/b")],
        elapsed=0.25,
        tls=TlsInfo(protocol="TLSv1.3", cipher="TLS_AES_128_GCM_SHA256", chain=(b"\\x30\\x82",)),
    )
    flight.begin("w1", "2026-12-08T01:02:03.456Z", result)
    ended = flight.begin("w2", "2026-12-08T01:02:04.000Z", result)
    flight.end(ended)
    print("begun", flush=True)
    if sys.argv[2] == "wait":
        time.sleep(60)
    """
)


def _process(root: Path, how: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _BEGIN, str(root), how],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )


def test_a_dead_process_s_look_comes_back_whole_and_once(tmp_path: Path) -> None:
    process = _process(tmp_path, "exit")
    assert process.communicate(timeout=60)[0] == "begun\n"
    flight = InFlight(tmp_path)
    assert flight.claimed("w2") == []  # ended before the process died: nothing to replay
    [(look, _slot)] = flight.claimed("w1")
    assert InFlight(tmp_path).claimed("w1") == []  # claimed by one process at a time
    result = look.result
    assert (look.watch_id, look.at) == ("w1", "2026-12-08T01:02:03.456Z")
    assert (result.request.url, result.request.method, result.request.body) == (
        "https://example.org/a",
        "POST",
        b"q=1",
    )
    assert dict(result.request.headers) == {"Accept": "x"} and not result.request.obey_robots
    assert result.body == bytes(range(256)) * 100 and result.status == 200
    assert result.headers[1] == ("ETag", '"e"') and result.redirects == [
        (301, "https://example.org/b")
    ]
    assert result.requested_at.isoformat() == "2026-12-08T01:02:03.456000+00:00"
    assert result.tls is not None and result.tls.chain == (b"\x30\x82",)
    assert result.tls.protocol == "TLSv1.3"


def test_a_live_process_s_looks_are_left_alone_and_an_ended_claim_removes_them(
    tmp_path: Path,
) -> None:
    process = _process(tmp_path, "wait")
    try:
        assert process.stdout is not None and process.stdout.readline() == "begun\n"
        assert InFlight(tmp_path).claimed("w1") == []  # its lock is held: alive
    finally:
        process.kill()
        process.wait(timeout=10)
    flight = InFlight(tmp_path)
    [(look, slot)] = flight.claimed("w1")
    assert look.watch_id == "w1"
    flight.end(slot)  # replayed: the dead process's directory goes with its last look
    assert list((tmp_path / "inflight").iterdir()) == []


def test_a_torn_or_foreign_slot_is_no_look(tmp_path: Path) -> None:
    process = _process(tmp_path, "exit")
    process.communicate(timeout=60)
    [slot] = [p for p in (tmp_path / "inflight").glob("*/0")]
    whole = slot.read_bytes()
    slot.write_bytes(whole[: len(whole) - 10])  # killed in the middle of its write
    assert InFlight(tmp_path).claimed("w1") == []


# A process killed at each of the writes of a look into a slot an earlier, longer look
# left: the killer is the signal itself, sent by the process to itself just before the
# n-th `pwrite` (or `pwritev`) of `begin` (what a `kill -9` then leaves in the page cache).
_KILLED_IN_BEGIN = textwrap.dedent(
    """
    import os, signal, sys
    from datetime import UTC, datetime
    from pathlib import Path
    from monitor.fetched import FetchRequest, FetchResult
    from monitor.inflight import InFlight

    def result(body):
        return FetchResult(
            request=FetchRequest("https://example.org/a", "GET", {}, None, True),
            url="https://example.org/a",
            requested_at=datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC),
            status=200,
            http_version="HTTP/1.1",
            headers=[("Content-Type", "text/html")],
            body=body,
        )

    flight = InFlight(Path(sys.argv[1]))
    flight.end(flight.begin("w1", "2026-12-08T01:02:03.000Z", result(b"old page " * 5000)))
    killed_at, writes = int(sys.argv[2]), 0

    def killing(write):
        def killing_write(*args):
            global writes
            writes += 1
            if writes == killed_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return write(*args)

        return killing_write

    os.pwrite, os.pwritev = killing(os.pwrite), killing(os.pwritev)
    flight.begin("w1", "2026-12-08T01:05:00.000Z", result(b"new page " * 10))
    print(writes, flush=True)
    """
)


def test_a_look_killed_while_written_into_a_used_slot_comes_back_whole_or_not_at_all(
    tmp_path: Path,
) -> None:
    killed_at = 1
    while True:
        root = tmp_path / str(killed_at)
        process = subprocess.run(
            [sys.executable, "-c", _KILLED_IN_BEGIN, str(root), str(killed_at)],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=60,
        )
        looks = InFlight(root).claimed("w1")
        if process.returncode == 0:  # every write made: the look is whole
            assert int(process.stdout) == killed_at - 1
            [(look, _slot)] = looks
            assert look.at == "2026-12-08T01:05:00.000Z" and look.result.body == b"new page " * 10
            break
        assert process.returncode == -9, process.stderr
        # Killed before its last write: no look, never one with another look's bytes.
        assert [(look.at, look.result.body) for look, _slot in looks] == [], killed_at
        killed_at += 1
    assert killed_at > 2  # the look is written in more than one step: each was killed


def test_a_slot_that_cannot_be_read_leaves_the_dead_process_s_other_looks_kept(
    tmp_path: Path,
) -> None:
    # Two looks of a dead process, and between them an entry that cannot be opened as a
    # slot (what an I/O error or a full table of descriptors makes of one): the looks are
    # claimed all the same, and the directory stays until the last of them is replayed.
    process = _process(tmp_path, "exit")
    process.communicate(timeout=60)
    [directory] = (tmp_path / "inflight").iterdir()
    (directory / "1").unlink()  # w2's slot, cleared
    (directory / "1").mkdir()
    (directory / "0").rename(directory / "2")  # w1's look, sorted after the bad entry
    flight = InFlight(tmp_path)
    [(look, slot)] = flight.claimed("w1")
    assert look.watch_id == "w1"
    assert InFlight(tmp_path).claimed("w1") == []  # held: claimed by one process
    flight.end(slot)
    assert list((tmp_path / "inflight").iterdir()) == []


def _answer(body: bytes) -> FetchResult:
    """A plain answer of a GET, with this body."""
    return FetchResult(
        request=FetchRequest("https://example.org/a"),
        url="https://example.org/a",
        requested_at=datetime(2026, 12, 8, 1, 2, 3, tzinfo=UTC),
        status=200,
        http_version="HTTP/1.1",
        headers=[],
        body=body,
    )


def test_a_slot_that_held_a_big_look_keeps_none_of_it_once_ended(tmp_path: Path) -> None:
    # A daemon's slots live as long as it does: each must not keep the biggest page it
    # ever held on disk, and it takes the next look as before.
    big = 4 << 20  # a big page (the default cap is 20 MB)
    flight = InFlight(tmp_path)
    slot = flight.begin("w1", "2026-12-08T01:02:03.000Z", _answer(b"x" * big))
    assert slot is not None and slot.path.stat().st_size > big
    flight.end(slot)
    assert slot.path.stat().st_size < big // 2
    assert flight.begin("w1", "2026-12-08T01:03:00.000Z", _answer(b"small")) is slot
    kept = slot.path.read_bytes()
    assert kept[:4] == b"MLK1" and kept.endswith(b"small") and len(kept) < 1000


@pytest.mark.parametrize("when", ["before its lock is made", "before its lock is taken"])
def test_a_directory_being_made_is_not_taken_for_a_dead_process_s(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, when: str
) -> None:
    # Two processes on one data directory (daemons sharing a PostgreSQL archive): one makes
    # its directory at its first look while the other looks for dead processes' slots,
    # at the worst moment. The maker keeps its directory, and its look is in it.
    maker, claimer = InFlight(tmp_path), InFlight(tmp_path)
    real_open = os.open

    def open_meanwhile_claimed(path: Any, flags: int, *args: Any, **kwargs: Any) -> int:
        making_lock = Path(path).name == "lock" and flags & os.O_CREAT
        if making_lock and when == "before its lock is made":
            claimer.claimed("w1")
        fd = real_open(path, flags, *args, **kwargs)
        if making_lock and when == "before its lock is taken":
            claimer.claimed("w1")
        return fd

    monkeypatch.setattr(os, "open", open_meanwhile_claimed)
    slot = maker.begin("w1", "2026-12-08T01:02:03.000Z", _answer(b"the page"))
    monkeypatch.undo()
    assert slot is not None and slot.path.read_bytes()[:4] == b"MLK1"
    assert InFlight(tmp_path).claimed("w1") == []  # its maker is alive
