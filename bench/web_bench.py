"""How fast does the web UI open a statement with 5,000 versions? (target: < 200 ms)
And its front page over 100,000 versions? (target: < 300 ms)

    python bench/web_bench.py                 # 5,000 versions, 30 requests per page
    python bench/web_bench.py --versions 20000 --requests 10 --keep
    python bench/web_bench.py --front-versions 0          # without the front page case

Builds a real archive (SQLite, blob files) through `Store.commit_check`: one watch, one
statement edited 5,000 times (a sentence of ten paragraphs changes each time, a tenth of
the versions annotated), plus 50 other statements. Then runs the real `monitor serve` on a
free port, logs in through the form and times whole HTTP requests from the client —
server work, rendering and transfer over loopback — for the timeline (it opens on its
newest page of 500 versions), the watch page (with ignore suggestions from 500 noise
annotations), a diff in the middle of the history, the watch list and a search. Median,
p95 and max in ms; then the time to list every version, page after page.

The front page case is an archive of its own: a ministry in three languages (listings
mfa-en, mfa-ru, mfa-kk, 200 statements each) with 100,000 versions over a year (published,
then edited, one in a hundred removed; see `build_front`) and 1,000 failing / recovered
alerts among them. It times the front page's first page, a filtered page (Russian edits), a
rare filter (removals), a page deep in the history (its cursor 50,000 changes down) and the
grouped watches, with /api/v1/changes answering the same first page as the peer. Beside
each wall time, the server's CPU time per request (steadier on a loaded machine). Figures
also go to bench/results/web.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import select  # noqa: E402

from monitor.clock import iso  # noqa: E402
from monitor.extract import Statement  # noqa: E402
from monitor.store import CheckRecord, NewVersion, Store  # noqa: E402
from monitor.store.schema import alert, document, version  # noqa: E402
from monitor.web.ui import TIMELINE_PAGE  # noqa: E402

PASSWORD = "bench password"
KEY = "en/1"
_BATCH = 500
FRONT_LANGUAGES = ("en", "ru", "kk")
FRONT_STATEMENTS = 200  # per language
FRONT_ALERTS = 1000
FRONT_TARGET_MS = 300


def paragraphs(n: int) -> tuple[str, ...]:
    return tuple(
        f"Paragraph {p} of the statement on regional water cooperation, revision "
        f"{n if p == n % 10 else 0}: the parties agreed to review the volumes released "
        "during the growing season and to meet again before the end of the year."
        for p in range(10)
    )


def build(root: Path, versions: int) -> None:
    with Store(root / "store") as store:
        store.sync_watch("w", "https://gov.example/news", "generic")
        at = 0

        def moment() -> str:
            nonlocal at
            at += 1
            return f"2026-{1 + at // 40000 % 12:02d}-01T00:{at // 3600 % 60:02d}:{at % 60:02d}.000Z"

        def version(key: str, n: int, kind: str) -> NewVersion:
            text = Statement(key, "https://gov.example/" + key, f"Statement {key}", paragraphs(n))
            return NewVersion(
                key, text.url, text.title, None, "en", kind, text.to_json(), 0.3, f"rev {n}"
            )

        done = 0
        while done < versions:
            batch = [
                version(KEY, n, "baseline" if n == 0 else "edited")
                for n in range(done, min(versions, done + _BATCH))
            ]
            store.commit_check(
                CheckRecord("w", moment(), 5, "changed", 200), store.state("w"), versions=batch
            )
            done += len(batch)
        others = [version(f"en/{i}", 0, "baseline") for i in range(2, 52)]
        store.commit_check(
            CheckRecord("w", moment(), 5, "changed", 200), store.state("w"), versions=others
        )
        document_id = store.document("w", KEY)["id"]
        for row in store.versions(document_id)[1::10]:
            store.annotate(document_id, row["id"], "bench", "noise", "a counter")
    (root / "monitor.toml").write_text(
        f'[store]\npath = "{root / "store"}"\n'
        '[[watch]]\nid = "w"\nurl = "https://gov.example/news"\nprofile = "generic"\n',
        encoding="utf-8",
    )


def build_front(root: Path, versions: int) -> None:
    """The front page's archive (its own): a ministry in three languages, `versions`
    versions over a year, failing / recovered alerts among them. Each statement's first
    three versions (published, edited, edited) go through `Store.commit_check`, so there
    are real documents, blobs and chains; the rest are rows of the same shape written in
    bulk, reusing those blobs, one in a hundred a removal: the front page reads the version,
    document, discovered and alert tables, and 100,000 checks take half an hour to write."""
    start = datetime(2025, 1, 1, tzinfo=UTC)
    year = timedelta(days=365)
    texts: dict[str, list[str]] = {}
    with Store(root / "store") as store:
        for lang in FRONT_LANGUAGES:
            store.sync_watch(f"mfa-{lang}", f"https://gov.example/press?lang={lang}", "generic")
        for revision in range(3):
            for lang in FRONT_LANGUAGES:
                batch = []
                for n in range(FRONT_STATEMENTS):
                    key = f"{lang}/{n}"
                    text = Statement(key, f"https://gov.example/{key}", f"Statement {n} ({lang})",
                                     paragraphs(revision), None, lang)  # fmt: skip
                    kind = "edited" if revision else "published"
                    summary = f"revision {revision}"
                    batch.append(
                        NewVersion(key, text.url, text.title, None, lang, kind, text.to_json(),
                                   0.4, summary)
                    )  # fmt: skip
                store.commit_check(
                    CheckRecord(f"mfa-{lang}", iso(start + revision * timedelta(hours=1)), 5,
                                "changed", 200),
                    store.state(f"mfa-{lang}"),
                    versions=batch,
                )  # fmt: skip
        with store.db.read() as conn:
            documents = [
                (row.id, row.key)
                for row in conn.execute(select(document.c.id, document.c.key).order_by("id"))
            ]
            for document_id, sha in conn.execute(
                select(version.c.document_id, version.c.text_sha256).order_by(version.c.id)
            ):
                texts.setdefault(document_id, []).append(sha)
        seeded = 3 * len(documents)
        rows = []
        seqs = dict.fromkeys((d for d, _ in documents), 3)
        for n in range(max(0, versions - seeded)):
            document_id, key = documents[(n * 7) % len(documents)]
            seq = seqs[document_id] = seqs[document_id] + 1
            removed = n % 100 == 99
            rows.append(
                {
                    "document_id": document_id,
                    "seq": seq,
                    "observed_at": iso(start + timedelta(hours=3) + year * (n + 1) / versions),
                    "kind": "removed" if removed else "edited",
                    "text_sha256": None if removed else texts[document_id][seq % 3],
                    "score": 0.4,
                    "summary": f"Paragraph {seq % 10} of {key}: revision {seq}",
                }
            )
        with store.db.write() as conn:
            for chunk in range(0, len(rows), 5000):
                conn.execute(version.insert(), rows[chunk : chunk + 5000])
            conn.execute(
                alert.insert(),
                [
                    {
                        "watch_id": f"mfa-{FRONT_LANGUAGES[n % 3]}",
                        "kind": ("failing", "recovered")[n % 2],
                        "created_at": iso(start + year * n / FRONT_ALERTS),
                        "payload": json.dumps(
                            {"kind": ("failing", "recovered")[n % 2], "summary": f"#{n}"}
                        ),
                    }
                    for n in range(FRONT_ALERTS)
                ],
            )
    (root / "monitor.toml").write_text(
        f'[store]\npath = "{root / "store"}"\n'
        + "".join(
            f'[[watch]]\nid = "mfa-{lang}"\nurl = "https://gov.example/press?lang={lang}"\n'
            f'profile = "generic"\nlanguage = "{lang}"\n'
            for lang in FRONT_LANGUAGES
        ),
        encoding="utf-8",
    )


def deep_cursor(root: Path, depth: int) -> str:
    """The front page's cursor `depth` changes down (versions only, as the feed orders
    them): what its "older" links carry after depth / 50 pages."""
    with sqlite3.connect(root / "store" / "index.sqlite") as db:
        at, number = db.execute(
            "SELECT observed_at, id FROM version WHERE kind != 'baseline' "
            "ORDER BY observed_at DESC, id DESC LIMIT 1 OFFSET ?",
            (depth,),
        ).fetchone()
    return f"{at}~version~{number}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def cpu_seconds(pid: int | None) -> float:
    """User and system CPU time so far of a process and every process under it (Linux
    /proc: `monitor serve --workers N` answers in forked processes), 0 elsewhere."""
    if pid is None:
        return 0.0
    stats: dict[int, tuple[int, float]] = {}  # pid -> (parent, CPU seconds)
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        stats[int(entry.name)] = (int(fields[1]), (int(fields[11]) + int(fields[12])) / tick)
    children: dict[int, list[int]] = {}
    for child, (parent, _cpu) in stats.items():
        children.setdefault(parent, []).append(child)
    total, todo = 0.0, [pid]
    while todo:
        at = todo.pop()
        total += stats.get(at, (0, 0.0))[1]
        todo += children.get(at, [])
    return total


def timed(
    client: httpx.Client, path: str, requests: int, server_pid: int | None = None
) -> dict[str, float]:
    client.get(path).raise_for_status()  # warm: templates compiled, pages cached by the OS
    times = []
    cpu_before = cpu_seconds(server_pid)
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    cpu = (cpu_seconds(server_pid) - cpu_before) * 1000 / requests
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
        "cpu_ms": round(cpu, 1),
        "bytes": len(answer.content),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument(
        "--front-versions", type=int, default=100_000, help="the front page case (0: skip it)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--scale",
        action="store_true",
        help="the scale case instead: 10,000 watches, 100,000 versions, 20 clients at once",
    )
    parser.add_argument("--watches", type=int, default=10_000, help="--scale: watches")
    parser.add_argument(
        "--scale-versions", type=int, default=100_000, help="--scale: versions in all"
    )
    parser.add_argument("--clients", type=int, default=20, help="--scale: clients at once")
    parser.add_argument(
        "--reuse", metavar="DIR", help="--scale: the archive a --keep run left, not built again"
    )
    parser.add_argument("--only", help="--scale: only the pages whose name contains this")
    parser.add_argument(
        "--workers", type=int, help="--scale: monitor serve --workers N (default: its own)"
    )
    parser.add_argument(
        "--checks-per-s",
        type=int,
        default=0,
        help="--scale: a daemon's unchanged checks written meanwhile, in batches as it writes "
        "them (10,000 watches every 5 minutes: 33)",
    )
    args = parser.parse_args()
    if args.scale:
        return scale_main(args)
    root = Path(tempfile.mkdtemp(prefix="monitor-web-bench-"))
    try:
        started = time.perf_counter()
        build(root, args.versions)
        print(f"archive: {args.versions} versions built in {time.perf_counter() - started:.1f}s")
        with serving(root) as (url, pid):
            figures = run_requests(url, args, pid)
        if args.front_versions:
            front = root / "front"
            front.mkdir()
            started = time.perf_counter()
            build_front(front, args.front_versions)
            took = time.perf_counter() - started
            print(f"front page: an archive of {args.front_versions} versions built in {took:.1f}s")
            deep = deep_cursor(front, 50_000) if args.front_versions > 50_000 else None
            with serving(front) as (url, pid):
                token = (front / "token").read_text()
                figures |= run_front(url, args, pid, deep, token)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    width = max(len(name) for name in figures)
    print(f"{'page':<{width}}  median    p95     max  server CPU   size")
    for name, f in figures.items():
        print(
            f"{name:<{width}}  {f['median_ms']:6.1f}  {f['p95_ms']:6.1f}  {f['max_ms']:6.1f}  "
            f"{f.get('cpu_ms', 0):7.1f} ms  "
            + (f"{f['bytes'] / 1024:6.0f} KB" if f["bytes"] else "")
        )
    verdict = figures["timeline"]["median_ms"] < 200
    print(f"timeline of {args.versions} versions < 200 ms: {'yes' if verdict else 'NO'}")
    front_figures = [f for name, f in figures.items() if name.startswith("front")]
    if front_figures:
        fast = all(f["median_ms"] < FRONT_TARGET_MS for f in front_figures)
        print(
            f"front page of {args.front_versions} versions, every case "
            f"< {FRONT_TARGET_MS} ms: {'yes' if fast else 'NO'}"
        )
        verdict = verdict and fast
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "web.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if verdict else 1


@contextmanager
def serving(root: Path) -> Iterator[tuple[str, int]]:
    """`monitor serve` on the archive of `root/monitor.toml`, with a user and an API token
    (`root/token`); yields its URL and process id once it answers."""
    monitor = [sys.executable, "-m", "monitor", "--config", str(root / "monitor.toml")]
    subprocess.run(
        [*monitor, "user", "add", "bench", "--role", "viewer"],
        input=PASSWORD, text=True, check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    made = subprocess.run(
        [*monitor, "token", "add", "bench", "--role", "viewer"],
        text=True, check=True, capture_output=True, cwd=REPO,
    )  # fmt: skip
    (root / "token").write_text(made.stdout.splitlines()[1].strip())
    port = free_port()
    server = subprocess.Popen(
        [*monitor, "serve", "--listen", f"127.0.0.1:{port}"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, 30)
        yield url, server.pid
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


def logged_in(url: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60)
    client.get("/login")
    token = client.cookies["monitor_csrf"]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": token})
    return client


def run_front(
    url: str, args: argparse.Namespace, server_pid: int, deep: str | None, token: str
) -> dict[str, dict[str, float]]:
    """The front page's first page, a filtered one, a rare filter and a deep cursor page;
    the grouped watches; and the peer: /api/v1/changes serving the same first page."""
    client = logged_in(url)
    pages = {
        "front, first page": "/",
        "front, Russian edits": "/?language=ru&kind=edited",
        "front, removals only": "/?kind=removed",
    }
    if deep:
        pages["front, 1000 pages down"] = "/?" + urlencode({"cursor": deep})
    pages["watches grouped (600 statements)"] = "/watches"
    figures = {name: timed(client, path, args.requests, server_pid) for name, path in pages.items()}
    api = httpx.Client(base_url=url, timeout=60, headers={"Authorization": f"Bearer {token}"})
    figures["peer: /api/v1/changes"] = timed(
        api, "/api/v1/changes?limit=50", args.requests, server_pid
    )
    return figures


def run_requests(
    url: str, args: argparse.Namespace, server_pid: int | None = None
) -> dict[str, dict[str, float]]:
    client = logged_in(url)
    middle = args.versions // 2
    pages = {
        "timeline": f"/watch/w/statement?key={KEY}",
        "watch": "/watch/w",
        "diff": f"/watch/w/diff?key={KEY}&b={middle}",
        "watches": "/watches/all",
        "search": "/search?q=revision+" + str(middle),
    }
    figures = {name: timed(client, path, args.requests, server_pid) for name, path in pages.items()}
    # Every version, page by page: what it costs to list them all.
    started, seen = time.perf_counter(), 0
    for page in range(1, -(-args.versions // TIMELINE_PAGE) + 1):
        html = client.get(f"{pages['timeline']}&page={page}").text
        seen += len(re.findall(r'<tr id="v\d+"', html))
    elapsed = (time.perf_counter() - started) * 1000
    assert seen == args.versions, f"the timeline lists {seen} versions, not {args.versions}"
    figures["timeline, every page"] = {
        "median_ms": round(elapsed, 1),
        "p95_ms": round(elapsed, 1),
        "max_ms": round(elapsed, 1),
        "bytes": 0,
    }
    return figures


# --- the scale case (issue 28 part 4): every page under 20 clients ---------------------------

SCALE_TOKEN_NAME = "bench"
SCALE_ADMIN = "bench-admin"
ADMIN_PAGES = ("ui users", "ui new watch", "ui edit watch")
# Watches with a history (the rest are registered, never changed): 100,000 versions on
# 1,000 statements build in minutes; on 10,000 in half an hour (one commit each).
SCALE_WITH_HISTORY = 1_000


def build_scale(root: Path, watches: int, versions: int) -> int:
    """`watches` watches in the config file and the store, the first `SCALE_WITH_HISTORY`
    of them with one statement of `versions / SCALE_WITH_HISTORY` versions each, built
    through `Store.commit_check` as checks make them; returns the versions per statement.
    The statements' texts are alike across watches (a blob per version number, not per
    version): what is measured is the UI over many rows, not the build's disk."""
    import os

    holders = min(watches, SCALE_WITH_HISTORY)
    per_watch = max(2, versions // holders)
    fsync, os.fsync = os.fsync, lambda fd: None  # the build only: nothing timed is built
    try:
        with Store(root / "store") as store:
            texts = [
                Statement(KEY, "https://gov.example/s", "Statement on water", paragraphs(n))
                for n in range(per_watch)
            ]
            store.sync_watches(
                [(f"w{i}", f"https://gov.example/{i}", "generic") for i in range(watches)]
            )
            for i in range(holders):
                for start in range(0, per_watch, _BATCH):
                    at = (
                        f"2026-03-{1 + i % 28:02d}T{i // 28 % 24:02d}:{start // _BATCH:02d}:00.000Z"
                    )
                    store.commit_check(
                        CheckRecord(f"w{i}", at, 5, "changed", 200),
                        store.state(f"w{i}"),
                        versions=[
                            scale_version(n, texts[n], i)
                            for n in range(start, min(per_watch, start + _BATCH))
                        ],
                    )
    finally:
        os.fsync = fsync
    (root / "monitor.toml").write_text(
        f'[store]\npath = "{root / "store"}"\n'
        # Every page's requests on one token: the API's rate limit is not what is measured.
        + "[server]\napi_rate = 1000000\n"
        + "".join(
            f'[[watch]]\nid = "w{i}"\nurl = "https://gov.example/{i}"\nprofile = "generic"\n'
            for i in range(watches)
        ),
        encoding="utf-8",
    )
    return per_watch


def scale_version(n: int, text: Statement, watch: int) -> NewVersion:
    """Version `n` of watch number `watch`'s statement: a page and a key of its own (the
    same URL and key at 1,000 watches made each statement the language version of all the
    others, 1,000 candidates per statement page), its text shared with the other watches."""
    kind = "baseline" if n == 0 else "edited"
    key, url = scale_key(watch), f"https://gov.example/{watch}/s"
    return NewVersion(key, url, text.title, None, "en", kind, text.to_json(), 0.3, f"rev {n}")


def scale_key(watch: int) -> str:
    return f"en/{watch}"


def scale_pages(watches: int, last: int, requests: int = 0) -> dict[str, str | list[str]]:
    """Every kind of page of the UI and the API, on a watch with a history. A list of paths
    is asked in turn, one path per request: "compare" pages are `requests` different pairs
    of versions of the statements with a history (any two, as a reader picks them), so
    that no answer is one the server has cached (diffs are kept by version pair)."""
    holders = min(watches, SCALE_WITH_HISTORY)
    n = holders // 2
    w, key = f"w{n}", scale_key(n)
    pairs = random.Random(28)

    def compare(ui: bool) -> list[str]:
        paths = []
        for _ in range(requests):
            i = pairs.randrange(holders)
            a, b = sorted(pairs.sample(range(1, last + 1), 2))
            paths.append(
                f"/watch/w{i}/diff?key={scale_key(i)}&a={a}&b={b}"
                if ui
                else f"/api/v1/watches/w{i}/diff?key={scale_key(i)}&from={a}&to={b}"
            )
        return paths

    version = f"/watch/{w}/versions/{last}"
    api_version = f"/api/v1/watches/{w}/versions/{last}"
    return {
        "ui /": "/",
        "ui /watches": "/watches",
        "ui /watches/all": "/watches/all",
        "ui /watches/all page": "/watches/all?page=50",
        "ui /watches/all filter": "/watches/all?q=w12",
        "ui watch": f"/watch/{w}",
        "ui timeline": f"/watch/{w}/statement?key={key}",
        "ui diff": f"/watch/{w}/diff?key={key}&b={last // 2}",
        "ui diff side": f"/watch/{w}/diff?key={key}&b={last // 2}&view=side",
        "ui compare": compare(ui=True),
        "ui version": f"{version}?key={key}",
        "ui statement.json": f"{version}/statement.json?key={key}",
        "ui search": "/search?q=revision",
        "ui search watch": f"/search?q=revision&watch={w}",
        "ui feed": "/feed.atom",
        "ui watch feed": f"/watch/{w}/feed.atom",
        "ui export jsonl": f"/watch/{w}/export.jsonl",
        "ui export warc": f"/watch/{w}/export.warc.gz",
        "ui users": "/users",
        "ui new watch": "/watches/new",
        "ui edit watch": f"/watch/{w}/edit",
        "api watches": "/api/v1/watches",
        "api watches page": "/api/v1/watches?limit=100&after=w5000",
        "api watch": f"/api/v1/watches/{w}",
        "api statements": f"/api/v1/watches/{w}/statements",
        "api versions": f"/api/v1/watches/{w}/versions?key={key}",
        "api version": f"{api_version}?key={key}",
        "api version text": f"{api_version}/text?key={key}",
        "api version statement": f"{api_version}/statement?key={key}",
        "api diff": f"/api/v1/watches/{w}/diff?key={key}&to={last // 2}",
        "api compare": compare(ui=False),
        "api changes": "/api/v1/changes",
        "api alerts": "/api/v1/alerts",
        "api annotations": f"/api/v1/annotations?watch={w}&key={key}",
        "api search": "/api/v1/search?q=revision",
        "api openapi": "/api/v1/openapi.json",
    }


def under_clients(
    url: str,
    path: str | list[str],
    clients: int,
    requests: int,
    cookies: Any,
    headers: dict[str, str],
    server_pid: int | None = None,
) -> dict[str, float]:
    """`clients` clients at once, each on a keep-alive connection of its own, asking for
    `path` until `requests` answers in all: requests/s, p50/p99 of each answer's time in ms,
    the server's CPU per request (after the warm-up request: what a snapshot's first
    request builds is not what each one costs; one untimed request on each connection,
    since each serving process builds its own) and the client's own. The client is a few
    lines of HTTP/1.1 on asyncio streams: httpx's AsyncClient cost more CPU per request
    than most pages take to make, and on two shared cores what a client spends is time
    every answer waits."""
    import asyncio
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    sent = {"Host": f"{host}:{port}", **headers}
    if cookies:
        sent["Cookie"] = "; ".join(f"{name}={value}" for name, value in cookies.items())
    head = "".join(f"{name}: {value}\r\n" for name, value in sent.items()) + "\r\n"
    paths = [path] if isinstance(path, str) else path
    requests_made = [f"GET {one} HTTP/1.1\r\n{head}".encode() for one in paths]
    turn = itertools.count()

    async def get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bytes:
        asked = next(turn) % len(requests_made)
        writer.write(requests_made[asked])
        head = await reader.readuntil(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        fields = {}
        for line in lines:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
        if "content-length" in fields:
            body = await reader.readexactly(int(fields["content-length"]))
        else:  # chunked
            chunks = []
            while size := int((await reader.readuntil(b"\r\n")).strip(), 16):
                chunks.append(await reader.readexactly(size))
                await reader.readexactly(2)
            await reader.readuntil(b"\r\n")
            body = b"".join(chunks)
        if status != 200:
            raise RuntimeError(f"{paths[asked]}: HTTP {status}: {body[:200]!r}")
        return body

    async def run() -> tuple[list[float], float, int]:
        nonlocal server_cpu
        times: list[float] = []
        connections = [await asyncio.open_connection(host, port) for _ in range(clients)]
        # Warm, on every connection (each serving process may have its own): templates,
        # what a snapshot's first request builds, the OS's page cache.
        await asyncio.gather(*(get(*connection) for connection in connections))
        server_cpu = cpu_seconds(server_pid)
        left = requests
        size = 0

        async def one(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal left, size
            while left > 0:
                left -= 1
                started = time.perf_counter()
                try:
                    body = await get(reader, writer)
                except (asyncio.IncompleteReadError, ConnectionError):
                    # Closed by the server while it waited for the other warm-ups (an idle
                    # keep-alive connection is closed after 5 s): once more, on a new one.
                    writer.close()
                    reader, writer = await asyncio.open_connection(host, port)
                    started = time.perf_counter()
                    body = await get(reader, writer)
                times.append((time.perf_counter() - started) * 1000)
                size = len(body)

        started = time.perf_counter()
        await asyncio.gather(*(one(*connection) for connection in connections))
        elapsed = time.perf_counter() - started
        for _reader, writer in connections:
            writer.close()
        return times, elapsed, size

    server_cpu = 0.0
    cpu = time.process_time()
    times, elapsed, size = asyncio.run(run())
    cpu = (time.process_time() - cpu) * 1000 / (len(times) + 1)
    server_cpu = (cpu_seconds(server_pid) - server_cpu) * 1000 / len(times)
    times.sort()
    return {
        "requests_per_s": round(len(times) / elapsed, 1),
        "p50_ms": round(times[len(times) // 2], 1),
        "p99_ms": round(times[min(len(times) - 1, int(0.99 * len(times)))], 1),
        "bytes": size,
        "client_cpu_ms": round(cpu, 2),
        "cpu_ms": round(server_cpu, 1),
    }


def scale_main(args: argparse.Namespace) -> int:
    """Builds the archive (or reuses the one `--reuse` names, as `--keep` left it), serves
    it and times every page."""
    root = Path(args.reuse) if args.reuse else Path(tempfile.mkdtemp(prefix="monitor-web-scale-"))
    monitor = [sys.executable, "-m", "monitor", "--config", str(root / "monitor.toml")]
    try:
        if args.reuse:
            per_watch = int((root / "per-watch").read_text())
            config = (root / "monitor.toml").read_text(encoding="utf-8")
            if "api_rate" not in config:  # left by an older bench
                config = config.replace("[[watch]]", "[server]\napi_rate = 1000000\n[[watch]]", 1)
                (root / "monitor.toml").write_text(config, encoding="utf-8")
            print(f"archive: reused {root} ({per_watch} versions on each statement)")
        else:
            started = time.perf_counter()
            per_watch = build_scale(root, args.watches, args.scale_versions)
            (root / "per-watch").write_text(str(per_watch))
            print(
                f"archive: {args.watches} watches, {args.scale_versions} versions "
                f"({per_watch} on each of {min(args.watches, SCALE_WITH_HISTORY)} statements), "
                f"built in {time.perf_counter() - started:.0f}s"
            )
            subprocess.run(
                [*monitor, "user", "add", "bench", "--role", "viewer"],
                input=PASSWORD, text=True, check=True, capture_output=True, cwd=REPO,
            )  # fmt: skip
        # The admin of the editors' and admins' pages (there already in a --reuse'd
        # archive the bench made since: `user add` then fails, and that is fine).
        subprocess.run(
            [*monitor, "user", "add", SCALE_ADMIN, "--role", "admin"],
            input=PASSWORD, text=True, check=False, capture_output=True, cwd=REPO,
        )  # fmt: skip
        made = subprocess.run(
            [*monitor, "token", "add", f"{SCALE_TOKEN_NAME}-{time.time_ns()}", "--role", "viewer"],
            text=True, check=True, capture_output=True, cwd=REPO,
        )  # fmt: skip
        token = made.stdout.splitlines()[1].strip()
        port = free_port()
        server = subprocess.Popen(
            [*monitor, "serve", "--listen", f"127.0.0.1:{port}",
             *(["--workers", str(args.workers)] if args.workers else [])],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        writer = None
        if args.checks_per_s:
            import multiprocessing

            context = multiprocessing.get_context("spawn")
            writing = context.Event()
            writer = context.Process(
                target=write_checks,
                args=(root, args.watches, args.checks_per_s, writing),
                daemon=True,
            )
            writer.start()
            # Its first batch committed before the first page is timed: started by spawn
            # on a loaded machine, it used to begin a few pages in.
            if not writing.wait(120):
                raise RuntimeError("the writer of checks did not start")
        try:
            figures = run_scale(f"http://127.0.0.1:{port}", args, token, per_watch, server.pid)
        finally:
            if writer is not None:
                writer.terminate()
                writer.join(10)
            server.terminate()
            server.wait(timeout=20)
    finally:
        if args.keep or args.reuse:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    width = max(len(name) for name in figures)
    print(
        f"{args.clients} clients at once, {args.requests} requests per page, "
        f"serving processes: {args.workers or 'monitor serve default'}"
    )
    if args.checks_per_s:
        print(f"meanwhile: {args.checks_per_s} unchanged checks a second written, as a daemon does")
    print(f"load average at the end: {' '.join(f'{n:.2f}' for n in os.getloadavg())}")
    print(f"{'page':<{width}}  req/s     p50     p99  server CPU  client CPU    size")
    for name, f in figures.items():
        print(
            f"{name:<{width}}  {f['requests_per_s']:5.1f}  {f['p50_ms']:6.1f}  "
            f"{f['p99_ms']:6.1f}  {f['cpu_ms']:7.1f} ms  {f['client_cpu_ms']:7.2f} ms  "
            f"{f['bytes'] / 1024:6.0f} KB"
        )
    slow = [name for name, f in figures.items() if f["p99_ms"] >= 300]
    print(f"every page < 300 ms at p99: {'yes' if not slow else 'NO: ' + ', '.join(slow)}")
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "web-scale.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if not slow else 1


def write_checks(root: Path, watches: int, per_second: int, writing: Any = None) -> None:
    """What a daemon writes while nothing changes (its own process and connection): an
    unchanged check of a random watch `per_second` times a second, batched as the daemon
    batches them (one commit every BATCH_WINDOW); until terminated. `writing` (an Event)
    is set once the first batch is committed."""
    import asyncio
    import random
    from dataclasses import replace

    from monitor.store.database import BATCH_WINDOW

    async def run() -> None:
        with Store(root / "store") as store:
            each = max(1, round(per_second * BATCH_WINDOW))
            while True:
                at = iso(datetime.now(UTC))
                for _ in range(each):
                    watch_id = f"w{random.randrange(watches)}"
                    state = replace(store.state(watch_id), last_check_at=at)
                    store.commit_check(CheckRecord(watch_id, at, 5, "unchanged", 200), state)
                await asyncio.sleep(BATCH_WINDOW)
                if writing is not None and not writing.is_set():
                    store.flush()
                    writing.set()

    asyncio.run(run())


def wait_healthy(url: str, seconds: float) -> None:
    """Until the served UI answers /healthz (an error after `seconds`)."""
    deadline = time.monotonic() + seconds
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1).raise_for_status()
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def run_scale(
    url: str, args: argparse.Namespace, token: str, per_watch: int, server_pid: int
) -> dict[str, dict[str, float]]:
    wait_healthy(url, 120)
    client = httpx.Client(base_url=url, timeout=60)
    client.get("/login")
    csrf = client.cookies["monitor_csrf"]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": csrf})
    figures = {}
    # The pages of editors and admins (forms, the users' list) as the admin.
    admin = httpx.Client(base_url=url, timeout=60)
    admin.get("/login")
    form = {"username": SCALE_ADMIN, "password": PASSWORD, "csrf": admin.cookies["monitor_csrf"]}
    admin.post("/login", data=form)
    requests = max(args.requests, args.clients)
    # Each "compare" path is asked once: the warm-up's one per client and the requests.
    for name, path in scale_pages(args.watches, per_watch, requests + args.clients).items():
        if args.only and args.only not in name:
            continue
        api = name.startswith("api")
        cookies = admin.cookies if name in ADMIN_PAGES else client.cookies
        figures[name] = under_clients(
            url,
            path,
            args.clients,
            requests,
            None if api else cookies,
            {"Authorization": f"Bearer {token}"} if api else {},
            server_pid,
        )
        print(f"  {name}: {figures[name]}", flush=True)
    return figures


if __name__ == "__main__":
    sys.exit(main())
