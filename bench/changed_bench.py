"""New and changed pages: what they cost monitor, beside urlwatch and the floor of the work.

    python bench/changed_bench.py [--pages 300] [--profile] [--skip-processes]
                                  [--skip-urlwatch] [--history 5000] [--edits 10]
                                  [--blobs path|db]

Against `bench/fakesite.py` (statements of ~30 KB) on 127.0.0.1, in its own process:

1. Whole processes, as a user runs them: `monitor check --once` over N new pages (the first
   sweep) with one and with two page-reading workers (`[fetch] workers`), then after 10 % of
   the pages changed (the changed cycle), and urlwatch's first run and changed run over the
   same pages, from the same run. Wall time, and CPU of the whole process tree (the bench
   becomes the children's subreaper, so the workers' CPU is counted: they are the
   forkserver's children, not the measured process's).
2. In process (no start-up, no worker hand-over: the checks read their pages inline): CPU
   per changed page — all N pages edited, the changed cycle with its confirming look
   (`confirm_delay` > 0: a second look re-fetches, then the alert is released) — printed
   beside the floor of its own work timed in the same process: lxml parsing the new page
   plus a diff-match-patch diff of its old and new text. And the CPU of a statement's edit
   at its 2nd and at its 5,000th version (the cost must not grow with the history). The
   filler versions of the 5,000th share one text; with `--edits N`, the in-process changed
   cycle is also run N - 1 times more over the same archive, every page edited each time
   (distinct texts, each cycle a new checker as `check --once` is), with the CPU per
   changed page at each version: what a statement's own history costs its next edit
   (learning reads up to its newest 30 versions).

Figures are CPU time (`time.process_time`, rusage): six helpers share this machine's two
cores, and wall time drifts. `--profile` cProfiles the in-process changed cycle and prints
where its time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import cProfile
import ctypes
import io
import json
import os
import pstats
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
# This checkout's monitor, whichever the environment has installed (or, with
# `--monitor-src DIR`, the one in DIR: an exported older revision, to compare).
MONITOR_SRC = str(BENCH.parent)
if "--monitor-src" in sys.argv:
    MONITOR_SRC = sys.argv[sys.argv.index("--monitor-src") + 1]
sys.path.insert(0, MONITOR_SRC)

from run import (  # noqa: E402 (the bench's own modules, importable once BENCH is on the path)
    CHANGE_FRACTION,
    EDITS_PER_CHANGE,
    Site,
    ensure_urlwatch,
    local_fetch_table,
)

RESULTS = BENCH / "results" / "changed.json"
# The confirming look of the in-process changed cycle comes this soon (it is the look that
# costs, not the wait).
CONFIRM_DELAY = 0.05
_PR_SET_CHILD_SUBREAPER = 36
# `python -m monitor …` that also writes its own process's CPU seconds (not its workers')
# to the file named first: the share of a sweep that the second worker cannot take.
_MAIN_CPU = """
import atexit, resource, runpy, sys
out = sys.argv.pop(1)
def report():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    with open(out, "w") as f:
        f.write(str(usage.ru_utime + usage.ru_stime))
atexit.register(report)
sys.argv[0] = "monitor"
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""


# Where the archives' blob bytes go (`--blobs`): None is the store's default (the database
# for a new archive since the 21st session; files before, which --monitor-src may run).
BLOBS: str | None = None


def config_text(store: Path, urls: list[str], workers: int, confirm: str = "0s") -> str:
    blobs = f'blobs = "{BLOBS}"\n' if BLOBS else ""
    lines = [
        f'[store]\npath = "{store}"\n{blobs}',
        local_fetch_table(timeout=30) + f"workers = {workers}\n",
        f'[alerts]\nconfirm_delay = "{confirm}"\n',
    ]
    lines += [
        f'[[watch]]\nid = "p{i}"\nurl = "{url}"\nprofile = "generic"\n'
        for i, url in enumerate(urls)
    ]
    return "\n".join(lines)


# --- whole processes ---------------------------------------------------------------------------


def _reap_orphans(keep: set[int]) -> None:
    """Wait for every descendant that was re-parented to this process (the bench is their
    subreaper), so that their CPU lands in RUSAGE_CHILDREN."""
    import psutil

    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        orphans = [p for p in psutil.Process().children() if p.pid not in keep]
        if not orphans:
            return
        for orphan in orphans:
            with contextlib.suppress(ChildProcessError, psutil.NoSuchProcess):
                if orphan.status() == psutil.STATUS_ZOMBIE:
                    os.waitpid(orphan.pid, 0)
        time.sleep(0.02)


def run_tree(cmd: list[str], env: dict[str, str], keep: set[int], cwd: Path) -> dict[str, Any]:
    """Run a command to its end: wall seconds and CPU seconds of it and every process it
    started (workers, forkservers), and its stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=1800)
    wall = time.perf_counter() - started
    _reap_orphans(keep)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode not in (0, 1):
        print(proc.stderr[-2000:], file=sys.stderr)
    return {
        "wall": wall,
        "cpu": cpu,
        "returncode": proc.returncode,
        "stdout": proc.stdout,
        "stderr": proc.stderr,
    }


def outcomes(stdout: str) -> dict[str, int]:
    return dict(Counter(re.findall(r"^\S+: (changed|unchanged|problem) ", stdout, re.M)))


def whole_processes(
    site: Site, n: int, work: Path, skip_urlwatch: bool, compare: str | None = None
) -> dict[str, Any]:
    """The first sweep at 1 and 2 workers, then the changed cycle at 1 and 2 workers, of
    this checkout's monitor (and, with `compare`, of the monitor in that directory, run
    beside it: before and after in the same run), and urlwatch's first and changed runs."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    keep = {site.proc.pid}
    env = {k: v for k, v in os.environ.items() if k not in ("MONITOR_CONFIG",)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    urls = [site.url(i) for i in range(n)]
    results: dict[str, Any] = {}
    # The monitors measured: this one (see the top) and the one compared with it.
    sources = {"monitor": MONITOR_SRC}
    if compare:
        sources["compared"] = compare

    def monitor(name: str, source: str, store: Path, workers: int) -> dict[str, Any]:
        config = work / f"{name}.toml"
        config.write_text(config_text(store, urls, workers), encoding="utf-8")
        main_cpu = work / f"{name}.cpu"
        cmd = [sys.executable, "-c", _MAIN_CPU, str(main_cpu)]
        cmd += ["--config", str(config), "check", "--once"]
        # The monitor this bench measures, wherever the processes run.
        run_env = {
            **env,
            "PYTHONPATH": os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")])),
        }
        print(f"  {name} ...", end="", flush=True)
        run = run_tree(cmd, run_env, keep, work)
        run["outcomes"] = outcomes(run.pop("stdout"))
        if sum(run["outcomes"].values()) != n:
            raise SystemExit(f"{name}: not every page was checked:\n{run['stderr'][-3000:]}")
        run["main_cpu"] = float(main_cpu.read_text())
        print(
            f" {run['wall']:.2f} s wall, {run['cpu']:.2f} s CPU"
            f" (main process {run['main_cpu']:.2f} s) {run['outcomes']}",
            flush=True,
        )
        run.pop("stderr")
        results[name] = run
        return run

    def urlwatch_run(name: str) -> None:
        print(f"  {name} ...", end="", flush=True)
        results[name] = run_tree(cmd, uw_env, keep, work)
        for key in ("stdout", "stderr"):
            results[name].pop(key)
        print(f" {results[name]['wall']:.2f} s wall, {results[name]['cpu']:.2f} s CPU", flush=True)

    print("whole processes:")
    for workers in (1, 2):
        for label, source in sources.items():
            monitor(
                f"{label} first, {_workers(workers)}", source, work / f"{label}{workers}", workers
            )
    urlwatch = None if skip_urlwatch else ensure_urlwatch()[0]
    home = work / "urlwatch"
    if urlwatch is not None:
        home.mkdir()
        (home / "urls.yaml").write_text("---\n".join(f"url: {u}\n" for u in urls))
        (home / "urlwatch.yaml").write_text("report:\n  stdout:\n    enabled: false\n")
        (home / "hooks.py").write_text("")
        uw_env = {**env, "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
        uw_env["XDG_CACHE_HOME"] = str(home)
        cmd = [str(urlwatch), "--urls", str(home / "urls.yaml")]
        cmd += ["--config", str(home / "urlwatch.yaml"), "--hooks", str(home / "hooks.py")]
        cmd += ["--cache", str(home / "cache.db")]
        urlwatch_run("urlwatch first")
    site.call("POST", f"/__change?fraction={CHANGE_FRACTION}&edits={EDITS_PER_CHANGE}")
    for workers in (1, 2):
        for label, source in sources.items():
            name = f"{label} changed, {_workers(workers)}"
            monitor(name, source, work / f"{label}{workers}", workers)
    if urlwatch is not None:
        urlwatch_run("urlwatch changed")
    _summary(results, sources)
    return results


def _workers(n: int) -> str:
    return f"{n} worker{'s' * (n > 1)}"


def _summary(results: dict[str, Any], sources: dict[str, str]) -> None:
    """Each monitor run beside urlwatch's from this run: urlwatch's wall (CPU) time over
    monitor's, so above 1 is faster than urlwatch; and what the second worker gave."""
    print("  speed against urlwatch, same run (urlwatch's time / monitor's; > 1: faster):")
    for phase in ("first", "changed"):
        peer = results.get(f"urlwatch {phase}")
        for label in sources:
            one, two = results[f"{label} {phase}, 1 worker"], results[f"{label} {phase}, 2 workers"]
            line = f"    {label:<9} {phase:<8}"
            for workers, run in ((1, one), (2, two)):
                line += f"  {workers}w {run['wall']:5.2f} s wall {run['cpu']:5.2f} s CPU"
                line += f" (main {run['main_cpu']:4.2f})"
                if peer is not None:
                    wall, cpu = peer["wall"] / run["wall"], peer["cpu"] / run["cpu"]
                    line += f" ({wall:4.2f}x wall, {cpu:4.2f}x CPU)"
            line += f"  2 workers / 1: {one['wall'] / two['wall']:4.2f}x wall"
            print(line)
        if peer is not None:
            print(f"    urlwatch  {phase:<8}  {peer['wall']:5.2f} s wall {peer['cpu']:5.2f} s CPU")


# --- in process ----------------------------------------------------------------------------------


def _get(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=60) as response:
        return bytes(response.read())


def floor_ms(olds: list[bytes], news: list[bytes]) -> float:
    """CPU ms per page of the floor: lxml parsing the new page, diff-match-patch diffing
    the old and the new text (the old text is read untimed: a real check has it stored)."""
    import diff_match_patch
    from lxml import html as lxml_html

    def text(body: bytes) -> str:
        return str(lxml_html.document_fromstring(body).text_content())

    old_texts = [text(body) for body in olds]
    dmp = diff_match_patch.diff_match_patch()
    started = time.process_time()
    for old, body in zip(old_texts, news, strict=True):
        dmp.diff_main(old, text(body))
    return (time.process_time() - started) * 1000 / len(news)


async def _cycle(config: Any, store: Any, watches: list[Any]) -> list[Any]:
    from monitor.check import Checker
    from monitor.fetch import Fetcher

    async with Fetcher(config.fetch) as fetcher:
        checker = Checker(config, store, fetcher)
        return await checker.check_all(watches)


def in_process(site: Site, n: int, work: Path, profile: bool, edits: int = 1) -> dict[str, Any]:
    from monitor.config import parse_config
    from monitor.store import Store

    urls = [site.url(i) for i in range(n)]
    store_dir = work / "inproc"
    text = config_text(store_dir, urls, 1, confirm=f"{CONFIRM_DELAY}s")

    config = parse_config(text)
    results: dict[str, Any] = {}
    print("in process:")
    with Store(str(store_dir)) as store:
        started = time.process_time()
        done = asyncio.run(_cycle(config, store, config.watch))
        first = (time.process_time() - started) * 1000 / n
        assert Counter(o.outcome for o in done) == {"changed": n}, Counter(o.outcome for o in done)
        olds = [_get(u) for u in urls]
        site.call("POST", f"/__change?fraction=1&edits={EDITS_PER_CHANGE}")
        news = [_get(u) for u in urls]
        profiler = cProfile.Profile() if profile else None
        started = time.process_time()
        if profiler:
            profiler.enable()
        done = asyncio.run(_cycle(config, store, config.watch))
        if profiler:
            profiler.disable()
        changed = (time.process_time() - started) * 1000 / n
        kinds = Counter(o.outcome for o in done)
        assert kinds == {"changed": n}, kinds
        alerts = sum(o.alerts for o in done)
        assert alerts == n, f"every edit alerts once it held, {alerts} alerts"
        by_version = {2: changed}
        for seq in range(3, edits + 2):
            site.call("POST", f"/__change?fraction=1&edits={EDITS_PER_CHANGE}")
            started = time.process_time()
            done = asyncio.run(_cycle(config, store, config.watch))
            by_version[seq] = (time.process_time() - started) * 1000 / n
            assert Counter(o.outcome for o in done) == {"changed": n}
    floor = floor_ms(olds, news)
    results.update(first_ms=first, changed_ms=changed, floor_ms=floor)
    print(f"  first sight, CPU per new page            {first:7.2f} ms")
    print(f"  changed, confirmation included           {changed:7.2f} ms per page")
    print(f"  floor: lxml parse + dmp diff of its text {floor:7.2f} ms per page")
    print(f"  changed / floor                          {changed / floor:7.2f} x")
    if edits > 1:
        results["changed_by_version_ms"] = by_version
        print(
            "  changed, by the version the edit makes   "
            + "  ".join(f"v{seq} {ms:.2f}" for seq, ms in by_version.items())
        )
    if profiler:
        if os.environ.get("CHANGED_BENCH_PROFILE"):  # the raw profile, for pstats' callers
            profiler.dump_stats(os.environ["CHANGED_BENCH_PROFILE"])
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
        out.write("\n")
        pstats.Stats(profiler, stream=out).sort_stats("cumtime").print_stats(40)
        print(out.getvalue())
    return results


def history_cost(site: Site, work: Path, versions: int, watches: int = 20) -> dict[str, float]:
    """CPU per edit of a statement at its 2nd version and at its `versions`-th: the same
    edit of `watches` pages each, one group with a history of one version, the other with
    one of `versions` - 1 (the filler versions are written straight into the archive)."""
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from monitor.clock import iso
    from monitor.config import parse_config
    from monitor.store import Store

    results: dict[str, float] = {}
    for group, filler in ((0, 0), (1, versions - 2)):
        pages = range(group * watches, (group + 1) * watches)
        store_dir = work / f"history-{group}"
        urls = [site.url(i) for i in pages]
        config = parse_config(config_text(store_dir, urls, 1, confirm=f"{CONFIRM_DELAY}s"))
        with Store(str(store_dir)) as store:
            asyncio.run(_cycle(config, store, config.watch))
        if filler:
            now = datetime.now(UTC)
            with contextlib.closing(sqlite3.connect(store_dir / "index.sqlite")) as db, db:
                heads = db.execute("SELECT document_id, text_sha256 FROM version").fetchall()
                db.executemany(
                    "INSERT INTO version (document_id, seq, observed_at, kind, text_sha256,"
                    " score, summary) VALUES (?, ?, ?, 'edited', ?, 0.5, 'filler')",
                    [
                        (document_id, seq, iso(now - timedelta(seconds=filler - seq)), sha)
                        for document_id, sha in heads
                        for seq in range(2, filler + 2)
                    ],
                )
        site.call("POST", f"/__change?pages={','.join(map(str, pages))}&edits={EDITS_PER_CHANGE}")
        with Store(str(store_dir)) as store:
            started = time.process_time()
            done = asyncio.run(_cycle(config, store, config.watch))
            spent = (time.process_time() - started) * 1000 / watches
            assert all(o.outcome == "changed" for o in done), done
            seq = store.versions(store.heads("p0")["page"].id)[-1]["seq"]
        results[f"version {seq}"] = spent
        print(f"  an edit making version {seq:<5}, CPU per page   {spent:7.2f} ms")
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=300)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--skip-processes", action="store_true")
    parser.add_argument("--skip-urlwatch", action="store_true")
    parser.add_argument("--skip-in-process", action="store_true")
    parser.add_argument("--history", type=int, default=5000)
    parser.add_argument(
        "--edits",
        type=int,
        default=1,
        help="edit every page this many times in process (its versions 2 to N + 1)",
    )
    parser.add_argument(
        "--blobs",
        choices=("path", "db"),
        help="[store] blobs of every archive the bench makes (default: the store's own, the "
        "database for a new archive; files before the 21st session): path keeps the bytes in "
        "files, db in the database",
    )
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--monitor-src", help="import monitor from this directory")
    parser.add_argument(
        "--compare-src",
        help="also run the whole processes with the monitor in this directory (an exported "
        "older revision), beside this one in the same run",
    )
    args = parser.parse_args()
    global BLOBS
    BLOBS = args.blobs
    work = Path(tempfile.mkdtemp(prefix="monitor-changed-bench-"))
    results: dict[str, Any] = {"pages": args.pages}
    site = Site(args.pages, work)
    try:
        if not args.skip_in_process:
            results["in_process"] = in_process(site, args.pages, work, args.profile, args.edits)
            if args.history:
                results["history"] = history_cost(site, work, args.history)
            site.close()
            site = Site(args.pages, work)
        if not args.skip_processes:
            results["processes"] = whole_processes(
                site, args.pages, work, args.skip_urlwatch, args.compare_src
            )
    finally:
        site.close()
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
