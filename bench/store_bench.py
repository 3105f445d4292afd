"""The archive at scale: store N versions of 30 KB pages with small edits, then measure.

    python bench/store_bench.py                      # 100,000 versions (long: fsyncs)
    python bench/store_bench.py --versions 20000     # quicker
    python bench/store_bench.py --postgres           # the same on a throw-away PostgreSQL
    python bench/store_bench.py --url postgresql://… # … or on yours (use an empty database)

Each of `--pages` watches is one page (a ministry statement of ~30 KB: 20 KB of text in
10-20 paragraphs plus ~10 KB of navigation and footer, from fakesite.py); every stored
version is one changed check of one page — the raw body and the statement JSON as blobs,
the response, the version and the check row in one transaction — after 5 scattered word
edits. The figures:

* disk used: the index (SQLite file and WAL, or the PostgreSQL database) plus blob files;
* ms per stored version: `Store.commit_check`, fsyncs included (page building excluded);
* history: listing one watch's statement and its every version, in-process (what
  `monitor history` does after start-up) and as the `monitor history` command;
* diff far apart: the first and the last version of one page — load both rows, read and
  verify both blobs, parse, word-diff — in-process and as `monitor diff WATCH A B`;
* unchanged check: ms per `commit_check` and bytes it adds to the SQLite file.

Figures go to stdout and bench/results/store_latest.json (git-ignored).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path[:0] = [str(HERE), str(REPO)]

from fakesite import Corpus, edit_words, make_page  # noqa: E402
from run import median_ms, tree_size  # noqa: E402

from monitor.diff import compare  # noqa: E402
from monitor.extract import Statement  # noqa: E402
from monitor.store import CheckRecord, NewVersion, ResponseRecord, Store  # noqa: E402
from monitor.store.records import iso  # noqa: E402

EDITS = 5
HEADERS = [
    ("Date", "Wed, 25 Nov 2026 16:56:28 GMT"),
    ("Content-Type", "text/html; charset=utf-8"),
    ("Server", "nginx"),
    ("Cache-Control", "no-cache"),
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=100_000)
    parser.add_argument("--pages", type=int, default=100, help="watches, one page each")
    parser.add_argument("--url", help="PostgreSQL URL (an empty database)")
    parser.add_argument("--postgres", action="store_true", help="start a throw-away server")
    parser.add_argument("--blobs", choices=["db", "path"], help="default: the backend's")
    parser.add_argument("--keep", type=Path, help="use this directory and keep it")
    args = parser.parse_args()

    server = None
    if args.postgres:
        from tests.postgres import PostgresServer

        server = PostgresServer()
        server.start()
        args.url = server.create_database()
    directory = args.keep or Path(tempfile.mkdtemp(prefix="monitor-store-bench-"))
    try:
        results = run(args, directory)
    finally:
        if server is not None:
            server.stop()
        if args.keep is None:
            subprocess.run(["rm", "-rf", str(directory)], check=False)
    print(json.dumps(results, indent=2))
    out = HERE / "results" / "store_latest.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


def run(args: argparse.Namespace, directory: Path) -> dict[str, Any]:
    root = directory / "store"
    results: dict[str, Any] = {
        "backend": "postgresql" if args.url else "sqlite",
        "versions": args.versions,
        "pages": args.pages,
    }
    with Store(root, url=args.url, blobs=args.blobs) as store:
        results["blobs"] = store.blobs.mode
        timings, first_last = fill(store, args.versions, args.pages)
        results["ms_per_stored_version"] = {
            "mean": round(statistics.fmean(timings) * 1000, 2),
            "median": round(statistics.median(timings) * 1000, 2),
            "p99": round(sorted(timings)[int(len(timings) * 0.99)] * 1000, 2),
        }
        results["disk"] = disk_used(store, root, args.url)
        watch = "page-0"
        results["history_ms_in_process"] = median_ms(lambda: history(store, watch), 5)
        a, b = first_last
        results["diff_far_apart_ms_in_process"] = median_ms(lambda: diff(store, a, b), 5)
        # `monitor diff` takes the versions' numbers within their statement, not their ids.
        seq_a, seq_b = store.version(a)["seq"], store.version(b)["seq"]
        results["versions_apart"] = seq_b - seq_a
        config = write_config(directory, root, args.url, args.pages)
        results["history_ms_command"] = median_ms(lambda: command(config, "history", watch), 3)
        results["diff_far_apart_ms_command"] = median_ms(
            lambda: command(config, "diff", watch, str(seq_a), str(seq_b)), 3
        )
        results["startup_ms_command"] = median_ms(lambda: command(config, "--help"), 3)
        results["unchanged_check"] = unchanged(store, root, args.url)
    return results


def fill(store: Store, versions: int, pages: int) -> tuple[list[float], tuple[int, int]]:
    """Store `versions` versions round-robin over the pages; returns the commit times and
    the ids of page 0's first and last versions."""
    corpus = Corpus()
    rng = random.Random(7)
    current = []
    for index in range(pages):
        store.sync_watch(f"page-{index}", f"http://127.0.0.1/statement/{index}", "generic")
        current.append(make_page(index, corpus))
    timings = []
    first = last = 0
    started = time.monotonic()
    for n in range(versions):
        index = n % pages
        page = current[index]
        kind = "baseline" if n < pages else "edited"
        if n >= pages:
            page = current[index] = replace(
                page, paragraphs=edit_words(page.paragraphs, rng, EDITS), version=page.version + 1
            )
            page.render()
        at = iso(time_of(n))
        statement = Statement(
            key="page",
            url=f"http://127.0.0.1/statement/{index}",
            title=page.title,
            paragraphs=tuple(page.paragraphs),
            published=page.published,
        )
        watch = f"page-{index}"
        state = store.state(watch)
        state.last_check_at = state.last_ok_at = state.last_change_at = at
        check = CheckRecord(watch, at, 40, "changed", 200)
        response = ResponseRecord(
            at, "GET", statement.url, statement.url, 200, "HTTP/1.1", {}, None,
            HEADERS, [], page.body, "text/html; charset=utf-8",
        )  # fmt: skip
        version = NewVersion(
            "page", statement.url, page.title, page.published, None, kind, statement.to_json(),
            score=0.05, summary=f"{EDITS} words changed",
        )  # fmt: skip
        began = time.perf_counter()
        [version_id] = store.commit_check(check, state, response, [version])
        timings.append(time.perf_counter() - began)
        if index == 0:
            first, last = first or version_id, version_id
        if (n + 1) % 5000 == 0:
            rate = (n + 1) / (time.monotonic() - started)
            print(f"  {n + 1} versions stored ({rate:.0f}/s)", file=sys.stderr)
    return timings, (first, last)


def time_of(n: int) -> Any:
    from datetime import UTC, datetime, timedelta

    return datetime(2024, 1, 1, tzinfo=UTC) + timedelta(minutes=15 * n)


def history(store: Store, watch: str) -> int:
    rows = 0
    for document in store.documents(watch):
        rows += len(store.versions(document["id"]))
    return rows


def diff(store: Store, a: int, b: int) -> None:
    old, new = (store.version(v) for v in (a, b))
    assert old is not None and new is not None
    before = Statement.from_json(store.read_blob(old["text_sha256"]))
    after = Statement.from_json(store.read_blob(new["text_sha256"]))
    assert compare(before, after).changed


def disk_used(store: Store, root: Path, url: str | None) -> dict[str, int]:
    apparent, allocated = tree_size(root)
    used = {"files_apparent_bytes": apparent, "files_allocated_bytes": allocated}
    if url:
        import psycopg

        with psycopg.connect(url) as connection:
            [(size,)] = connection.execute("SELECT pg_database_size(current_database())")
        used["database_bytes"] = int(size)
    total = allocated + used.get("database_bytes", 0)
    used["total_bytes"] = total
    used["bytes_per_version"] = total // max(1, store.version_count())
    return used


def unchanged(store: Store, root: Path, url: str | None) -> dict[str, float]:
    state = store.state("page-0")
    checks = 2000

    def one() -> None:
        store.commit_check(CheckRecord("page-0", iso(time_of(0)), 30, "unchanged", 200), state)

    before = _index_bytes(root) if url is None else 0
    times = []
    for _ in range(checks):
        began = time.perf_counter()
        one()
        times.append(time.perf_counter() - began)
    result = {"ms_median": round(statistics.median(times) * 1000, 3)}
    if url is None:
        result["bytes_per_check"] = round((_index_bytes(root) - before) / checks, 1)
    return result


def _index_bytes(root: Path) -> int:
    import sqlite3

    with sqlite3.connect(root / "index.sqlite") as connection:
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return (root / "index.sqlite").stat().st_size


def write_config(directory: Path, root: Path, url: str | None, pages: int) -> Path:
    lines = [f'[store]\npath = "{root}"']
    if url:
        lines.append(f'url = "{url}"')
    for index in range(pages):
        lines.append(
            f'[[watch]]\nid = "page-{index}"\nurl = "http://127.0.0.1/statement/{index}"\n'
            'profile = "generic"'
        )
    path = directory / "monitor.toml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def command(config: Path, *args: str) -> None:
    argv = [sys.executable, "-m", "monitor", "--config", str(config), *args]
    result = subprocess.run(argv, capture_output=True, cwd=REPO, env={**os.environ})
    assert result.returncode == 0, result.stderr.decode(errors="replace")


if __name__ == "__main__":
    main()
