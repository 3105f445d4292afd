"""Looks in flight (monitor/inflight.py): what a process fetched, kept until its commit,
is found again by the next process only once the first is dead, as it was fetched."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

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
