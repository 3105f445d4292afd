"""How fast does the web UI open a statement with 5,000 versions? (target: < 200 ms)

    python bench/web_bench.py                 # 5,000 versions, 30 requests per page
    python bench/web_bench.py --versions 20000 --requests 10 --keep

Builds a real archive (SQLite, blob files) through `Store.commit_check`: one watch, one
statement edited 5,000 times (a sentence of ten paragraphs changes each time, a tenth of
the versions annotated), plus 50 other statements. Then runs the real `monitor serve` on a
free port, logs in through the form and times whole HTTP requests from the client —
server work, rendering and transfer over loopback — for the timeline (it opens on its
newest page of 500 versions), the watch page (with ignore suggestions from 500 noise
annotations), a diff in the middle of the history, the watch list and a search. Median,
p95 and max in ms; then the time to list every version, page after page. Figures also go
to bench/results/web.json.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monitor.extract import Statement  # noqa: E402
from monitor.store import CheckRecord, NewVersion, Store  # noqa: E402
from monitor.web.ui import TIMELINE_PAGE  # noqa: E402

PASSWORD = "bench password"
KEY = "en/1"
_BATCH = 500


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


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def timed(client: httpx.Client, path: str, requests: int) -> dict[str, float]:
    client.get(path).raise_for_status()  # warm: templates compiled, pages cached by the OS
    times = []
    for _ in range(requests):
        started = time.perf_counter()
        answer = client.get(path)
        times.append((time.perf_counter() - started) * 1000)
        answer.raise_for_status()
    times.sort()
    return {
        "median_ms": round(statistics.median(times), 1),
        "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
        "max_ms": round(times[-1], 1),
        "bytes": len(answer.content),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=30)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="monitor-web-bench-"))
    monitor = [sys.executable, "-m", "monitor", "--config", str(root / "monitor.toml")]
    try:
        started = time.perf_counter()
        build(root, args.versions)
        print(f"archive: {args.versions} versions built in {time.perf_counter() - started:.1f}s")
        subprocess.run(
            [*monitor, "user", "add", "bench", "--role", "viewer"],
            input=PASSWORD, text=True, check=True, capture_output=True, cwd=REPO,
        )  # fmt: skip
        port = free_port()
        server = subprocess.Popen(
            [*monitor, "serve", "--listen", f"127.0.0.1:{port}"],
            cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        try:
            figures = run_requests(f"http://127.0.0.1:{port}", args)
        finally:
            server.terminate()
            server.wait(timeout=20)
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    width = max(len(name) for name in figures)
    print(f"{'page':<{width}}  median    p95     max   size")
    for name, f in figures.items():
        print(
            f"{name:<{width}}  {f['median_ms']:6.1f}  {f['p95_ms']:6.1f}  {f['max_ms']:6.1f}  "
            + (f"{f['bytes'] / 1024:6.0f} KB" if f["bytes"] else "")
        )
    verdict = figures["timeline"]["median_ms"] < 200
    print(f"timeline of {args.versions} versions < 200 ms: {'yes' if verdict else 'NO'}")
    results = REPO / "bench" / "results"
    results.mkdir(exist_ok=True)
    (results / "web.json").write_text(json.dumps(figures, indent=2), encoding="utf-8")
    return 0 if verdict else 1


def run_requests(url: str, args: argparse.Namespace) -> dict[str, dict[str, float]]:
    deadline = time.monotonic() + 30
    while True:
        try:
            httpx.get(url + "/healthz", timeout=1).raise_for_status()
            break
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)
    client = httpx.Client(base_url=url, timeout=60)
    client.get("/login")
    token = client.cookies["monitor_csrf"]
    client.post("/login", data={"username": "bench", "password": PASSWORD, "csrf": token})
    middle = args.versions // 2
    pages = {
        "timeline": f"/watch/w/statement?key={KEY}",
        "watch": "/watch/w",
        "diff": f"/watch/w/diff?key={KEY}&b={middle}",
        "watches": "/",
        "search": "/search?q=revision+" + str(middle),
    }
    figures = {name: timed(client, path, args.requests) for name, path in pages.items()}
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


if __name__ == "__main__":
    sys.exit(main())
