"""What learning furniture costs, beside what a changed check already costs, in one run.

A real SQLite archive in a temporary directory: one watch whose statement (a real page of
the article-extraction benchmark, tests/quality/pages/bench) has 60 versions, each with a
rotating paragraph and a moving counter, and a host with 2,000 statement watches. Prints:

* learning one watch after an edit (what `monitor run` does after each stored edit), with
  the statements read from the archive (cold) and from the learner's cache (warm);
* learning a host's templates (at most every 10 minutes, or after 5 stored versions);
* the masked comparison a changed check makes, beside the plain `diff.compare` it replaces.

    python bench/furniture_bench.py [--versions 60] [--statements 2000]
"""

from __future__ import annotations

import argparse
import gzip
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from monitor.compare import _as_result  # noqa: E402
from monitor.config import WatchConfig  # noqa: E402
from monitor.diff import compare  # noqa: E402
from monitor.extract import Statement, Target  # noqa: E402
from monitor.learned import LearnedFurniture  # noqa: E402
from monitor.sites import get_profile  # noqa: E402
from monitor.store import CheckRecord, NewVersion, Store  # noqa: E402

BENCH = ROOT / "tests" / "quality" / "pages" / "bench"


def _paragraphs(name: str) -> tuple[str, ...]:
    html = gzip.decompress((BENCH / name / "original.html.gz").read_bytes())
    url = "http://127.0.0.1/page"
    extraction = get_profile("generic", url).extract(_as_result(html, url), Target(url))
    return extraction.statements[0].paragraphs


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:7.2f} ms (median of {len(samples)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=60)
    parser.add_argument("--statements", type=int, default=2000)
    args = parser.parse_args()
    names = sorted(p.name for p in BENCH.iterdir())
    body = _paragraphs("06ee193d")
    teasers = [_paragraphs(name)[0] for name in names if name != "06ee193d"]

    def statement(n: int, key: str = "page", url: str = "https://gov.example/a") -> Statement:
        paragraphs = (*body[:3], teasers[n % len(teasers)] + f" ({n})", *body[3:6])
        paragraphs += (f"Views: {1000 + n}", *body[6:])
        return Statement(key, url, "A story", paragraphs, language="en")

    with tempfile.TemporaryDirectory() as directory, Store(directory) as store:
        at = iter(f"2026-11-25T{h:02d}:{m:02d}:00.000Z" for h in range(24) for m in range(60))

        def commit(watch_id: str, kind: str, st: Statement) -> None:
            version = NewVersion(st.key, st.url, st.title, None, "en", kind, st.to_json())
            store.commit_check(
                CheckRecord(watch_id, next(at, "2026-11-26T00:00:00.000Z"), 5, "changed", 200),
                store.state(watch_id),
                versions=[version],
            )

        store.sync_watch("a", "https://gov.example/a", "generic")
        commit("a", "baseline", statement(0))
        for n in range(1, args.versions):
            commit("a", "edited", statement(n))
        watch = WatchConfig(id="a", url="https://gov.example/a")

        cold, warm = [], []
        for _ in range(5):
            learner = LearnedFurniture(store)
            started = time.perf_counter()
            items = learner.learn_watch("a")
            cold.append(time.perf_counter() - started)
            for _ in range(5):
                started = time.perf_counter()
                learner.learn_watch("a")
                warm.append(time.perf_counter() - started)
        kinds = sorted(item.kind for item in items)

        old, new = statement(args.versions), statement(args.versions + 1)
        plain, masked = [], []
        for _ in range(30):
            started = time.perf_counter()
            compare(old, new)
            plain.append(time.perf_counter() - started)
            started = time.perf_counter()
            result = learner.compare(watch, old, new)
            masked.append(time.perf_counter() - started)
        assert not result.changed, result.summary

        for i in range(args.statements):
            store.sync_watch(f"h{i}", f"https://host.example/s/{i}", "generic")
        started = time.perf_counter()
        for i in range(args.statements):
            commit(f"h{i}", "baseline", statement(i, url=f"https://host.example/s/{i}"))
        filled = time.perf_counter() - started
        hosts = []
        for _ in range(5):
            learner = LearnedFurniture(store)
            started = time.perf_counter()
            templates = learner.learn_host("host.example")
            hosts.append(time.perf_counter() - started)

    print(f"watch with {args.versions} versions; learned: {', '.join(kinds)}")
    print(f"  learn the watch, statements from the archive: {_ms(cold)}")
    print(f"  learn the watch, statements cached (after an edit): {_ms(warm)}")
    print(f"  a changed check's comparison, plain diff.compare: {_ms(plain)}")
    print(f"  the same with learned furniture masked (and found): {_ms(masked)}")
    print(f"host with {args.statements} statements ({filled:.1f} s to archive them)")
    print(f"  learn the host's templates: {_ms(hosts)}; {len(templates)} templates")


if __name__ == "__main__":
    main()
