"""Where a changed page's CPU goes: the in-process changed cycle of changed_bench.py, under
cProfile timed by CPU (`time.process_time`), not wall (the confirming look's wait and the
other helpers on this machine's cores would otherwise count).

    python bench/extract_profile.py [--pages 300] [--top 40] [--stages]

`--stages` instead times, per changed page and without the profiler, the stages of reading
and diffing it on the same pages (classification, the generic extraction, the comparison of
the old and new statements, the furniture masking) beside the floor (lxml + dmp).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import pstats
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

from changed_bench import CONFIRM_DELAY, _cycle, _get, config_text, floor_ms  # noqa: E402
from run import EDITS_PER_CHANGE, Site  # noqa: E402


def profile_cycle(site: Site, n: int, work: Path, top: int) -> None:
    from monitor.config import parse_config
    from monitor.store import Store

    urls = [site.url(i) for i in range(n)]
    config = parse_config(config_text(work / "store", urls, 1, confirm=f"{CONFIRM_DELAY}s"))
    with Store(str(work / "store")) as store:
        asyncio.run(_cycle(config, store, config.watch))
        olds = [_get(u) for u in urls]
        site.call("POST", f"/__change?fraction=1&edits={EDITS_PER_CHANGE}")
        news = [_get(u) for u in urls]
        profiler = cProfile.Profile(time.process_time)
        started = time.process_time()
        profiler.enable()
        done = asyncio.run(_cycle(config, store, config.watch))
        profiler.disable()
        spent = (time.process_time() - started) * 1000 / n
        assert Counter(o.outcome for o in done) == {"changed": n}
    print(f"changed, confirmation included, profiled: {spent:.2f} ms CPU per page")
    print(f"floor: {floor_ms(olds, news):.2f} ms per page")
    out = io.StringIO()
    stats = pstats.Stats(profiler, stream=out)
    stats.sort_stats("tottime").print_stats(top)
    stats.sort_stats("cumtime").print_stats(top * 2)
    print(out.getvalue())


def stages(site: Site, n: int, profile_stage: str = "") -> None:
    from monitor.classify import classify_unusable
    from monitor.diff import compare
    from monitor.fetch import FetchRequest, FetchResult
    from monitor.sites import get_profile
    from monitor.statement import Target

    urls = [site.url(i) for i in range(n)]
    olds = [_get(u) for u in urls]
    site.call("POST", f"/__change?fraction=1&edits={EDITS_PER_CHANGE}")
    news = [_get(u) for u in urls]
    profile = get_profile("generic", urls[0])

    def result(url: str, body: bytes) -> FetchResult:
        from datetime import UTC, datetime

        headers = [("content-type", "text/html; charset=utf-8")]
        return FetchResult(
            FetchRequest(url), url, datetime.now(UTC), 200, headers=headers, body=body
        )

    def timed(label: str, fn) -> list:  # type: ignore[no-untyped-def]
        out = []
        started = time.process_time()
        for url, body in zip(urls, news, strict=True):
            out.append(fn(url, body))
        print(f"  {label:40s} {(time.process_time() - started) * 1000 / n:7.2f} ms per page")
        if profile_stage and profile_stage in label:
            profiler = cProfile.Profile()
            profiler.enable()
            for url, body in zip(urls, news, strict=True):
                fn(url, body)
            profiler.disable()
            out_text = io.StringIO()
            stats = pstats.Stats(profiler, stream=out_text)
            stats.sort_stats("tottime").print_stats(30)
            stats.sort_stats("cumtime").print_stats(50)
            print(out_text.getvalue())
        return out

    if profile_stage == "compare":
        profile_stage = "diff.compare"
    old_statements = [
        profile.extract(result(u, b), Target(u)).statements[0]
        for u, b in zip(urls, olds, strict=True)
    ]
    timed("classify_unusable", lambda u, b: classify_unusable(result(u, b)))
    new_ex = timed("generic extract", lambda u, b: profile.extract(result(u, b), Target(u)))
    new_statements = [e.statements[0] for e in new_ex]
    pairs = dict(zip(urls, zip(old_statements, new_statements, strict=True), strict=True))
    timed("diff.compare", lambda u, b: compare(*pairs[u]))
    print(f"  {'floor (lxml + dmp)':40s} {floor_ms(olds, news):7.2f} ms per page")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--top", type=int, default=40)
    parser.add_argument("--stages", action="store_true")
    parser.add_argument("--profile-stage", default="", help="cProfile one stage: extract, compare")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-extract-profile-"))
    site = Site(args.pages, work)
    try:
        if args.stages:
            stages(site, args.pages, args.profile_stage)
        else:
            profile_cycle(site, args.pages, work, args.top)
    finally:
        site.close()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
