"""Soak test: the daemon (`monitor run`) for minutes against a local site, with scripted
edits and outages, checked afterwards against its own store and a webhook receiver.

One command (from the repository root, with monitor importable):

    python bench/soak.py [--minutes 10] [--watches 2000] [--interval 60s] [--no-web] [--keep]

What one run does:

1. starts `bench/fakesite.py` (its own process) with one page per watch, and a webhook
   receiver in this process (a thread) that records every alert delivered;
2. writes a config: every watch generic, checked every `--interval`, all alerts to the
   receiver, `failing_after` half an interval and `confirm_delay` 1 s, so that an outage
   of a few intervals raises exactly one "failing" and one "recovered" within the run;
3. runs `python -m monitor --config F run` (web on a free port, so `/metrics` is sampled
   too; `--no-web` runs without it) for `--minutes`, sampling its RSS and CPU every 10 s;
4. meanwhile fires the events of `PLAN` at fixed shares of the run (at 10 minutes: edits at
   minutes 2 and 6; a captcha wall, HTTP 500s and hung answers for 3 minutes from minutes 3,
   4 and 5; a 500 shorter than one interval at minute 7), each on its own pages, so the
   alerts to expect are known exactly: one "edited" per edited page, one "failing" and one
   "recovered" per page of a long outage, nothing for the short one, nothing else;
5. stops the daemon with SIGTERM (timing its shutdown) and reads its SQLite store: checks
   per watch, missed slots, double checks, alerts by kind against the expected ones and
   against what the receiver got, how long checks take from firing to commit, checks/s,
   CPU, and the RSS series with its growth slope.

It prints a report, writes bench/results/soak-latest.json, and exits 1 when the daemon
missed a slot, checked a watch twice in half an interval, raised or delivered other alerts
than expected, or did not stop cleanly; so it can serve as a gate. Linux only (os.wait4).
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from run import (
    BENCH,
    REPO,
    ProcessRun,
    Site,
    check_requirements,
    git_revision,
    local_fetch_table,
    run_process,
)

RESULTS = BENCH / "results" / "soak-latest.json"
SAMPLE_EVERY = 10.0
# monitor's default: the edit -> alert latency measured here is what a user gets.
CONFIRM_DELAY = 3.0
# (when, as a share of the run; what; share of the watches; how long, as a share of the run).
# Page sets never overlap, so each page's expected alerts are exactly its own event's. A
# "blip" is a 500 shorter than one interval: one failed check at most, so no alert at all.
PLAN = (
    (0.2, "change", 0.025, 0.0),
    (0.3, "captcha", 0.0075, 0.3),
    (0.4, "500", 0.01, 0.3),
    (0.5, "hang", 0.005, 0.3),
    (0.6, "change", 0.015, 0.0),
    (0.7, "blip", 0.005, 0.0),
)
BLIP = 0.3  # of an interval
# The first edit must come after every watch has its baseline, the last event must have
# been seen (and confirmed) by a check before the end; this much more, for a busy machine.
MARGIN = 5.0


@dataclass
class Event:
    at: float  # seconds after the daemon started
    mode: str  # change | 500 | hang | captcha
    pages: list[int]
    seconds: float  # how long a fault lasts (0 for a change)
    alerts: tuple[str, ...]  # expected for each page
    fired_at: float | None = None  # epoch seconds when the site took it

    @property
    def label(self) -> str:
        what = "edit" if self.mode == "change" else f"{self.mode} for {self.seconds:.0f}s"
        return f"{what} on {len(self.pages)} pages"


@dataclass
class Sample:
    t: float  # seconds after the daemon started
    rss_mib: float
    cpu_s: float
    metrics: dict[str, float] = field(default_factory=dict)


class Receiver:
    """The webhook channel's other end, in a thread: every alert delivered, and when."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        lock = threading.Lock()
        received = self.received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                payload = json.loads(body)
                entry = {
                    "at": time.time(),
                    "delivery": self.headers.get("X-Monitor-Delivery"),
                    "watch": payload.get("watch"),
                    "kind": payload.get("kind"),
                }
                with lock:
                    received.append(entry)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass  # a line per alert on stderr would bury the report

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Daemon:
    """`monitor run` in a thread that waits for it (run_process: wall, CPU, peak RSS)."""

    def __init__(self, cmd: list[str], env: dict[str, str], workdir: Path, timeout: float):
        self.workdir = workdir
        self.proc: Any = None
        self.started = 0.0  # epoch seconds
        self.run: ProcessRun | None = None
        self._ready = threading.Event()

        def wait() -> None:
            self.run = run_process(
                cmd, env=env, cwd=workdir, timeout=timeout, log=workdir / "daemon", on_start=start
            )

        def start(proc: Any) -> None:
            self.proc, self.started = proc, time.time()
            self._ready.set()

        self.thread = threading.Thread(target=wait, daemon=True)
        self.thread.start()
        self._ready.wait()
        import psutil

        self.ps = psutil.Process(self.proc.pid)

    def sample(self) -> tuple[float, float] | None:
        """(RSS MiB, CPU seconds so far), or None once the process is gone."""
        try:
            with self.ps.oneshot():
                times = self.ps.cpu_times()
                return self.ps.memory_info().rss / 2**20, times.user + times.system
        except Exception:  # psutil.NoSuchProcess, or a zombie not yet reaped
            return None

    def stop(self, grace: float) -> float | None:
        """SIGTERM, then the seconds until the process was gone (None: it had to be killed)."""
        asked = time.perf_counter()
        self.proc.send_signal(signal.SIGTERM)
        self.thread.join(grace)
        if self.thread.is_alive():
            self.proc.kill()
            self.thread.join()
            return None
        return time.perf_counter() - asked

    def log(self) -> str:
        return (self.workdir / "daemon.err").read_text(errors="replace")


# --- the plan ----------------------------------------------------------------------------------


def build_schedule(
    minutes: float, watches: int, interval: float, jitter: float, spread: float, timeout: float
) -> list[Event]:
    """PLAN for this run, refused with the reasons when the run is too short for it."""
    run = minutes * 60
    order = random.Random(7).sample(range(watches), watches)
    events, used, problems = [], 0, []
    for share_at, mode, share, lasts in PLAN:
        count = max(1, round(share * watches))
        pages = sorted(order[used : used + count])
        used += count
        if mode == "change":
            event = Event(share_at * run, mode, pages, 0.0, ("edited",))
        elif mode == "blip":
            event = Event(share_at * run, "500", pages, BLIP * interval, ())
        else:
            event = Event(share_at * run, mode, pages, lasts * run, ("failing", "recovered"))
            # Two failed checks an interval apart (>= failing_after) must fall in the outage;
            # a hung answer only counts as failed when it started a timeout before the end.
            failing = event.seconds - (timeout if mode == "hang" else 0)
            if failing < 2 * (interval + jitter):
                problems.append(f"{event.label}: shorter than two intervals")
        events.append(event)
        settled = event.at + event.seconds + interval + jitter + CONFIRM_DELAY + MARGIN
        if settled > run:
            problems.append(f"{event.label} at {event.at:.0f}s: no check sees it before the end")
    if used > watches:
        problems.append(f"the plan needs {used} pages")
    if events[0].at < spread + interval / 2 + MARGIN:
        problems.append("the first edit would come before every watch has its baseline")
    if problems:
        print(
            f"soak: {minutes:g} minutes at a {interval:g}s interval is too short for the plan: "
            + "; ".join(problems)
            + " (give more --minutes or a shorter --interval)",
            file=sys.stderr,
        )
        sys.exit(2)  # usage; 1 means the daemon failed the gate
    return events


def write_config(
    path: Path, store: Path, site: Site, hook: str, watches: int, interval: float, timeout: float
) -> None:
    lines = [
        f'[store]\npath = "{store}"\n',
        local_fetch_table(timeout=timeout),
        f'[alerts]\nconfirm_delay = "{CONFIRM_DELAY:g}s"\nfailing_after = "{interval / 2:g}s"\n',
        f'[channels.bench]\ntype = "webhook"\nurl = "{hook}"\n',
    ]
    lines += [
        f'[[watch]]\nid = "p{i}"\nurl = "{site.url(i)}"\nprofile = "generic"\n'
        f'interval = "{interval:g}s"\nchannels = ["bench"]\n'
        for i in range(watches)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")


def fire(site: Site, event: Event) -> None:
    pages = ",".join(map(str, event.pages))
    if event.mode == "change":
        # One replaced word: an edited sentence, the smallest edit that must alert.
        site.call("POST", f"/__change?pages={pages}&edits=1")
    else:
        site.call("POST", f"/__fault?pages={pages}&mode={event.mode}&seconds={event.seconds}")
    event.fired_at = time.time()


def scrape(url: str) -> dict[str, float]:
    """The daemon's /metrics as {name{labels}: value}; empty while the server is not up."""
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return {}
    found = {}
    for line in text.splitlines():
        # Histogram buckets would swell every sample; the sum and count stay.
        if line.startswith("monitor_") and not re.match(r"\S+_(created|bucket)[{ ]", line):
            name, _, value = line.rpartition(" ")
            found[name] = float(value)
    return found


# --- reading the store -------------------------------------------------------------------------


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def read_store(db: Path) -> dict[str, Any]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        checks: dict[str, list[float]] = {}
        confirming: dict[str, int] = {}
        outcomes: Counter[str] = Counter()
        problems = []
        # (start, ms): `at` is when the job fired, `ms` how long the check then took, so a
        # check started on time but finished late (a busy event loop) shows here.
        durations = []
        changed_at: dict[str, float] = {}
        for watch_id, at, ms, outcome, detail in conn.execute(
            "SELECT watch_id, at, ms, outcome, detail FROM check_run ORDER BY at"
        ):
            # A change is looked at again confirm_delay later: that look is no slot of its
            # own (neither a double check nor the slot it shifts the rhythm by).
            if epoch(at) - changed_at.pop(watch_id, -1e9) < CONFIRM_DELAY + 5:
                confirming[watch_id] = confirming.get(watch_id, 0) + 1
            else:
                checks.setdefault(watch_id, []).append(epoch(at))
            if outcome == "changed":
                changed_at[watch_id] = epoch(at)
            durations.append((epoch(at), ms))
            outcomes[outcome] += 1
            if outcome == "problem":
                problems.append((watch_id, epoch(at), detail))
        alerts = [
            {"id": i, "watch": w, "kind": k, "at": epoch(at)}
            for i, w, k, at in conn.execute("SELECT id, watch_id, kind, created_at FROM alert")
        ]
        deliveries = {
            str(i): {"alert": a, "status": s, "attempts": n}
            for i, a, s, n in conn.execute("SELECT id, alert_id, status, attempts FROM delivery")
        }
    return {
        "checks": checks,
        "confirming_looks": sum(confirming.values()),
        "outcomes": outcomes,
        "problems": problems,
        "durations": durations,
        "alerts": alerts,
        "deliveries": deliveries,
    }


def scheduler_started(log: str, fallback: float) -> float:
    """When the daemon's scheduler started: the time on its "watching N pages" log line."""
    match = re.search(r"^(\S+ \S+) INFO monitor\.scheduler: watching ", log, re.M)
    if not match:
        return fallback
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()


def slots(
    checks: dict[str, list[float]],
    watches: int,
    interval: float,
    first_due: float,
    stopped: float,
    started: float,
) -> dict[str, Any]:
    """Missed slots and double checks, watch by watch.

    A check may be late by half an interval: a gap longer than 1.5 intervals misses a slot
    (every further interval of it, one more). The first check is due by `first_due` (the
    scheduler's start plus its start-up spread), and a check is due within 1.5 intervals
    before the stop. Two checks closer than half an interval are a double check.
    """
    late, double, never, gaps = [], [], [], []
    missed = 0
    for i in range(watches):
        watch = f"p{i}"
        times = checks.get(watch, [])
        if not times:
            never.append(watch)
            continue
        points = [first_due - interval, *times, stopped]
        for before, after in itertools.pairwise(points):
            gap = after - before
            if gap > 1.5 * interval:
                count = int((gap - 1.5 * interval) // interval) + 1
                missed += count
                late.append((watch, round(before - started, 1), round(gap, 1), count))
        for a, b in itertools.pairwise(times):
            gaps.append(b - a)
            if b - a < interval / 2:
                double.append((watch, round(a - started, 1), round(b - a, 1)))
    per_watch = [len(checks.get(f"p{i}", [])) for i in range(watches)]
    return {
        "missed_slots": missed,
        "watches_with_missed_slots": len({w for w, *_ in late}),
        "never_checked": len(never),
        "double_checks": len(double),
        "checks_per_watch": {
            "min": min(per_watch),
            "median": statistics.median(per_watch),
            "max": max(per_watch),
        },
        "gap_s": percentiles(gaps),
        # (watch, seconds after the daemon started of the check before the gap, gap, slots
        # missed); the first gap of a watch starts an interval before its first check was due.
        "missed_examples": sorted(late, key=lambda row: -row[2])[:20],
        "never_examples": never[:20],
        "double_examples": double[:20],
    }


def stray_problems(
    problems: list[tuple[str, float, str]], events: list[Event], timeout: float, started: float
) -> dict[str, Any]:
    """Failed checks the plan did not cause: on a page without a fault at that moment. They
    raise no alert unless two in a row span failing_after, but they show a daemon (or a
    machine) too busy to answer its own fetches in time."""
    windows: dict[str, list[tuple[float, float]]] = {}
    for e in events:
        if e.mode != "change" and e.fired_at is not None:
            # A check started just before the end may still be waiting for a hung answer.
            for p in e.pages:
                windows.setdefault(f"p{p}", []).append((e.fired_at, e.fired_at + e.seconds))
    stray = [
        (watch, round(at - started, 1), detail)
        for watch, at, detail in problems
        if not any(a - 1 <= at <= b + timeout for a, b in windows.get(watch, []))
    ]
    return {
        "count": len(stray),
        "reasons": dict(Counter(re.sub(r"\d+(\.\d+)?", "N", d) for *_, d in stray)),
        "examples": stray[:20],
    }


def percentiles(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p99": None, "max": None}
    ordered = sorted(values)
    return {
        "p50": round(ordered[len(ordered) // 2], 2),
        "p99": round(ordered[int(len(ordered) * 0.99)], 2),
        "max": round(ordered[-1], 2),
    }


def compare_alerts(
    events: list[Event], store: dict[str, Any], received: list[dict[str, Any]]
) -> dict[str, Any]:
    """Expected alerts (per watch and kind) against the alert table and the receiver."""
    expected = Counter((f"p{p}", kind) for e in events for p in e.pages for kind in e.alerts)
    table = Counter((a["watch"], a["kind"]) for a in store["alerts"])
    got = Counter((r["watch"], r["kind"]) for r in received)
    ids = Counter(d for r in received for d in (r["delivery"] or "").split(",") if d)
    # How long after its cause each alert was raised, and after that delivered.
    cause: dict[tuple[str, str], float] = {}
    for e in events:
        for p in e.pages:
            for kind in e.alerts:
                end = e.seconds if kind == "recovered" else 0.0
                cause[(f"p{p}", kind)] = (e.fired_at or 0.0) + end
    raised: dict[str, list[float]] = {}
    for a in store["alerts"]:
        if (a["watch"], a["kind"]) in cause:
            raised.setdefault(a["kind"], []).append(a["at"] - cause[(a["watch"], a["kind"])])
    created = {a["id"]: a["at"] for a in store["alerts"]}
    delivered = [
        r["at"] - created[store["deliveries"][d]["alert"]]
        for r in received
        for d in (r["delivery"] or "").split(",")
        if d in store["deliveries"]
    ]

    def by_kind(counter: Counter[tuple[str, str]]) -> dict[str, int]:
        kinds: Counter[str] = Counter()
        for (_, kind), n in counter.items():
            kinds[kind] += n
        return dict(sorted(kinds.items()))

    def differences(got: Counter[tuple[str, str]]) -> dict[str, list[str]]:
        return {
            "missing": [f"{w} {k}" for (w, k) in sorted((expected - got).elements())][:20],
            "unexpected": [f"{w} {k}" for (w, k) in sorted((got - expected).elements())][:20],
        }

    return {
        "expected": by_kind(expected),
        "alert_table": by_kind(table),
        "receiver": by_kind(got),
        "table_matches": table == expected,
        "receiver_matches": got == expected,
        "table_differences": differences(table),
        "receiver_differences": differences(got),
        "receiver_repeated_deliveries": sum(n - 1 for n in ids.values() if n > 1),
        "delivery_status": dict(Counter(d["status"] for d in store["deliveries"].values())),
        "raised_after_cause_max_s": {k: round(max(v), 1) for k, v in sorted(raised.items())},
        "delivered_after_raised_s": percentiles(delivered),
        # What a journalist waits: the edit on the site to the webhook's arrival.
        "edit_to_webhook_s": percentiles(
            [
                r["at"] - cause[(r["watch"], r["kind"])]
                for r in received
                if r["kind"] == "edited" and (r["watch"], r["kind"]) in cause
            ]
        ),
    }


def rss_figures(samples: list[Sample], run: float) -> dict[str, Any]:
    """First, last, max, and the slope (least squares) from minute 2 (a fifth of a short run)
    to the end: the start-up's baselines have settled by then, so growth after is a leak."""
    # The sample taken at the start sees the interpreter still loading: not the daemon yet.
    series = [s for s in samples if s.t >= SAMPLE_EVERY / 2]
    tail = [s for s in series if s.t >= min(120.0, run / 5)]
    slope = None
    # Over a few minutes a single allocation step reads as tens of MiB per hour: no figure.
    if len(tail) >= 3 and tail[-1].t - tail[0].t >= 300:
        fit = statistics.linear_regression([s.t for s in tail], [s.rss_mib for s in tail])
        slope = round(fit.slope * 3600, 1)
    return {
        "first_mib": round(series[0].rss_mib, 1) if series else None,
        "last_mib": round(series[-1].rss_mib, 1) if series else None,
        "max_mib": round(max(s.rss_mib for s in series), 1) if series else None,
        "slope_mib_per_hour_after_minute_2": slope,
    }


def log_summary(log: str) -> dict[str, Any]:
    """Log lines by level, warnings folded into patterns (watch ids and numbers masked)."""
    levels: Counter[str] = Counter()
    patterns: Counter[str] = Counter()
    errors = []
    for line in log.splitlines():
        match = re.match(r"^\S+ \S+ (\w+) (\S+): (.*)$", line)
        if not match:
            continue
        level, logger, message = match.groups()
        levels[level] += 1
        if level in ("WARNING", "ERROR", "CRITICAL"):
            patterns[f"{level} {logger}: " + re.sub(r"\d+", "N", message)[:140]] += 1
        if level in ("ERROR", "CRITICAL") and len(errors) < 20:
            errors.append(line[:300])
    return {"levels": dict(levels), "patterns": dict(patterns.most_common(15)), "errors": errors}


# --- the run -----------------------------------------------------------------------------------


def soak(args: argparse.Namespace) -> tuple[dict[str, Any], Path]:
    from monitor.cadence import STARTUP_SPREAD, jitter_for
    from monitor.config import WatchConfig
    from monitor.scheduler import SHUTDOWN_GRACE

    interval, run = args.interval, args.minutes * 60
    spread = min(interval, STARTUP_SPREAD)
    jitter = jitter_for(WatchConfig(id="x", url="http://x/", interval=interval))
    # A hung answer must end well within an interval, or the next slot finds it running.
    timeout = min(10.0, interval / 4)
    events = build_schedule(args.minutes, args.watches, interval, jitter, spread, timeout)
    workdir = Path(tempfile.mkdtemp(prefix="monitor-soak-"))
    site = Site(args.watches, workdir)
    receiver = Receiver()
    config = workdir / "monitor.toml"
    write_config(config, workdir / "store", site, receiver.url, args.watches, interval, timeout)
    # The daemon imports the monitor this process found, whatever its working directory.
    import monitor

    source = str(Path(monitor.__file__).resolve().parent.parent)
    env = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [source, env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "monitor", "--config", str(config), "run"]
    metrics_url = None
    if args.no_web:
        cmd.append("--no-web")
    else:
        port = free_port()
        cmd += ["--listen", f"127.0.0.1:{port}"]
        metrics_url = f"http://127.0.0.1:{port}/metrics"
    print(
        f"soak: {args.watches} watches every {interval:g}s for {args.minutes:g} min; "
        f"work directory {workdir}"
    )
    for e in events:
        print(f"  at {e.at:>5.0f}s: {e.label}, expect {', '.join(e.alerts) or 'no alert'}")
    readers = None
    if args.ui_clients:
        monitor = [sys.executable, "-m", "monitor", "--config", str(config)]
        subprocess.run(
            [*monitor, "user", "add", "soak", "--role", "viewer"],
            input=UI_PASSWORD, text=True, env=env, check=True, capture_output=True,
        )  # fmt: skip
        readers = UiReaders(f"http://127.0.0.1:{port}", args.ui_clients, args.watches)
    site_cpu = site.cpu_seconds()
    daemon = Daemon(cmd, env, workdir, timeout=run + SHUTDOWN_GRACE + 120)
    samples: list[Sample] = []
    pending = list(events)
    try:
        next_sample = daemon.started
        end = daemon.started + run
        while time.time() < end and daemon.thread.is_alive():
            now = time.time()
            if readers is not None and not readers.started and now >= daemon.started + run / 2:
                readers.start()
                print(f"  {now - daemon.started:>5.0f}s  {args.ui_clients} UI clients", flush=True)
            while pending and now >= daemon.started + pending[0].at:
                event = pending.pop(0)
                fire(site, event)
                print(f"  {now - daemon.started:>5.0f}s  fired: {event.label}", flush=True)
            if now >= next_sample:
                taken = daemon.sample()
                if taken is not None:
                    sample = Sample(now - daemon.started, *taken)
                    sample.metrics = scrape(metrics_url) if metrics_url else {}
                    samples.append(sample)
                    if len(samples) % 6 == 1:
                        print(f"  {sample.t:>5.0f}s  RSS {sample.rss_mib:.1f} MiB", flush=True)
                next_sample += SAMPLE_EVERY
            wake = min([next_sample, end] + [daemon.started + e.at for e in pending[:1]])
            time.sleep(max(0.0, min(wake - time.time(), SAMPLE_EVERY)))
        stopped = time.time()
        if readers is not None:
            readers.stop()
        alive = daemon.thread.is_alive()
        cpu_at_stop = daemon.sample()
        shutdown = daemon.stop(SHUTDOWN_GRACE + 30) if alive else None
        site_stats = site.call("GET", "/__stats")
        site_cpu = site.cpu_seconds() - site_cpu
    finally:
        if daemon.thread.is_alive():
            daemon.proc.kill()
        site.close()
        receiver.close()
    assert daemon.run is not None
    log = daemon.log()
    store = read_store(workdir / "store" / "index.sqlite")
    first_due = scheduler_started(log, daemon.started) + spread
    total_checks = sum(store["outcomes"].values())
    steady = [t for times in store["checks"].values() for t in times if t >= first_due]
    results = {
        "store_confirming_looks": store["confirming_looks"],
        "meta": {
            "watches": args.watches,
            "minutes": args.minutes,
            "interval_s": interval,
            "web": not args.no_web,
            "config": {
                "fetch_timeout_s": timeout,
                "confirm_delay_s": CONFIRM_DELAY,
                "failing_after_s": interval / 2,
                "jitter_s": jitter,
                "startup_spread_s": spread,
            },
            "monitor_revision": git_revision(),
            "monitor_source": source,
            "cpus": os.cpu_count(),
            "load_average_at_start": round(args.load, 2),
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        },
        "events": [
            {**asdict(e), "label": e.label, "pages": [f"p{p}" for p in e.pages]} for e in events
        ],
        "daemon": {
            "ran_s": round(stopped - daemon.started, 1),
            "scheduler_started_after_s": round(first_due - spread - daemon.started, 1),
            "alive_at_end": alive,
            "returncode": daemon.run.returncode,
            "shutdown_s": None if shutdown is None else round(shutdown, 2),
            "cpu_s": round(daemon.run.cpu, 1),
            "cpu_s_at_sigterm": None if cpu_at_stop is None else round(cpu_at_stop[1], 1),
            "peak_rss_mib": round(daemon.run.rss_mib, 1),
            "site_cpu_s": round(site_cpu, 1),
        },
        "checks": {
            "total": total_checks,
            "outcomes": dict(store["outcomes"]),
            "per_s": round(total_checks / (stopped - daemon.started), 2),
            "per_s_after_startup": round(len(steady) / max(1.0, stopped - first_due), 2),
            "per_s_expected": round(args.watches / interval, 2),
            "cpu_ms_per_check": round(1000 * daemon.run.cpu / max(1, total_checks), 2),
            "duration_ms": percentiles([ms for _, ms in store["durations"]]),
            "duration_ms_from_minute_2": percentiles(
                [ms for at, ms in store["durations"] if at - daemon.started >= min(120, run / 5)]
            ),
            **slots(store["checks"], args.watches, interval, first_due, stopped, daemon.started),
        },
        "stray_problems": stray_problems(store["problems"], events, timeout, daemon.started),
        "alerts": compare_alerts(events, store, receiver.received),
        "rss": rss_figures(samples, run),
        "samples": [asdict(s) for s in samples],
        "per_minute": per_minute(samples, store["durations"], daemon.started),
        "site": site_stats,
        "log": log_summary(log),
    }
    if readers is not None:
        half = daemon.started + run / 2
        results["ui_load"] = {
            "clients": args.ui_clients,
            "ui": readers.figures(),
            "without_clients": lateness(store, interval, first_due, half),
            "with_clients": lateness(store, interval, half + interval, stopped),
        }
    return results, workdir


UI_PASSWORD = "soak reader password"


class UiReaders:
    """`clients` threads reading the web UI as fast as it answers: the front page, a
    watch, a search, the table of every watch and a watch's WARC export; each logged in
    through the form."""

    def __init__(self, url: str, clients: int, watches: int) -> None:
        self.url, self.clients, self.watches = url, clients, watches
        self.started = False
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.times: list[float] = []
        self.errors = 0

    def start(self) -> None:
        self.started = True
        for n in range(self.clients):
            thread = threading.Thread(target=self._read, args=(n,), daemon=True)
            thread.start()
            self._threads.append(thread)

    def _read(self, n: int) -> None:
        import httpx

        client = httpx.Client(base_url=self.url, timeout=120)
        # Twenty logins at once may meet the failed-login budget's pause (auth.py): each
        # reader tries until it is in, or its requests would all be redirects to the form.
        for _ in range(20):
            try:
                client.get("/login")
                csrf = client.cookies["monitor_csrf"]
                form = {"username": "soak", "password": UI_PASSWORD, "csrf": csrf}
                if client.post("/login", data=form).status_code == 303:
                    break
            except (httpx.HTTPError, KeyError):
                pass
            time.sleep(1)
        else:
            self.errors += 1
            return
        # The light and the heavy: a watch's export reads every blob it has (in the UI's
        # export worker process).
        watch = f"/watch/p{n % self.watches}"
        pages = ["/", watch, "/search?q=ministry", "/watches/all", f"{watch}/export.warc.gz"]
        for path in itertools.cycle(pages):
            if self._stop.is_set():
                return
            started = time.perf_counter()
            try:
                ok = client.get(path).status_code == 200
            except httpx.HTTPError:
                ok = False
            self.times.append((time.perf_counter() - started) * 1000)
            self.errors += not ok

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(130)

    def figures(self) -> dict[str, Any]:
        return {"requests": len(self.times), "errors": self.errors, **percentiles(self.times)}


def lateness(store: dict[str, Any], interval: float, start: float, end: float) -> dict[str, Any]:
    """How late the checks started in [start, end): each check's gap from the watch's
    previous one, less the interval (the jitter spreads it by a few %), and how long the
    checks took from firing to commit (a busy event loop shows in both)."""
    late = [
        max(0.0, later - earlier - interval)
        for times in store["checks"].values()
        for earlier, later in itertools.pairwise(times)
        if start <= later < end
    ]
    took = [ms for at, ms in store["durations"] if start <= at < end]
    return {"late_s": percentiles(late), "duration_ms": percentiles(took), "checks": len(took)}


def per_minute(
    samples: list[Sample], durations: list[tuple[float, int]], started: float
) -> list[dict[str, Any]]:
    """One row per minute (and one for the last part-minute): RSS at its end, the CPU share
    and the checks started during it (how many, how long they took), the outbox at its end."""
    per_minute = round(60 / SAMPLE_EVERY)
    marks = [s for s in samples if round(s.t / SAMPLE_EVERY) % per_minute == 0]
    if samples and samples[-1] not in marks:
        marks.append(samples[-1])
    table = []
    for before, after in itertools.pairwise(marks):
        ms = [ms for at, ms in durations if before.t <= at - started < after.t]
        table.append(
            {
                "minute": round(after.t / 60, 1),
                "rss_mib": round(after.rss_mib, 1),
                "cpu_percent": round(100 * (after.cpu_s - before.cpu_s) / (after.t - before.t)),
                "checks": len(ms),
                "check_ms": percentiles(ms),
                "outbox": after.metrics.get("monitor_outbox_depth"),
            }
        )
    return table


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# --- report ------------------------------------------------------------------------------------


def verdict(results: dict[str, Any]) -> list[str]:
    """Why the run fails as a gate; empty when it passes."""
    checks, alerts, daemon = results["checks"], results["alerts"], results["daemon"]
    reasons = []
    if checks["missed_slots"]:
        reasons.append(f"{checks['missed_slots']} missed slots")
    if checks["never_checked"]:
        reasons.append(f"{checks['never_checked']} watches never checked")
    if checks["double_checks"]:
        reasons.append(f"{checks['double_checks']} double checks")
    if not alerts["table_matches"]:
        reasons.append("alert table differs from the expected alerts")
    if not alerts["receiver_matches"]:
        reasons.append("alerts at the receiver differ from the expected ones")
    if not daemon["alive_at_end"]:
        reasons.append("the daemon died during the run")
    elif daemon["shutdown_s"] is None or daemon["returncode"] != 0:
        reasons.append(f"unclean stop (exit {daemon['returncode']}, killed if no shutdown time)")
    return reasons


def render_ui_load(results: dict[str, Any]) -> list[str]:
    load = results.get("ui_load")
    if not load:
        return []
    lines = [f"checks with and without {load['clients']} UI clients (second half / first half):"]
    for name in ("without_clients", "with_clients"):
        f = load[name]
        lines.append(
            f"  {name.replace('_', ' '):<16} {f['checks']:>6} checks; late s p50 "
            f"{f['late_s'].get('p50')} p99 {f['late_s'].get('p99')}; duration ms p50 "
            f"{f['duration_ms'].get('p50')} p99 {f['duration_ms'].get('p99')}"
        )
    ui = load["ui"]
    lines.append(
        f"  UI: {ui['requests']} requests, {ui['errors']} errors, ms p50 {ui.get('p50')} "
        f"p99 {ui.get('p99')}"
    )
    return lines


def render(results: dict[str, Any]) -> str:
    meta, daemon, checks = results["meta"], results["daemon"], results["checks"]
    alerts, rss = results["alerts"], results["rss"]
    lines = [
        f"monitor soak — {meta['watches']} watches every {meta['interval_s']:g}s, "
        f"{meta['minutes']:g} min, web {'on' if meta['web'] else 'off'}, monitor "
        f"{meta['monitor_revision']}, {meta['cpus']} CPUs (load {meta['load_average_at_start']} "
        f"at start), {meta['date']}",
        "",
        f"{'minute':>7}{'RSS MiB':>9}{'CPU %':>7}{'checks':>8}{'check ms p50':>14}"
        f"{'p99':>7}{'max':>7}{'outbox':>8}",
    ]
    for row in results["per_minute"]:
        outbox = "" if row["outbox"] is None else f"{row['outbox']:.0f}"
        lines.append(
            f"{row['minute']:>7g}{row['rss_mib']:>9.1f}{row['cpu_percent']:>7}"
            f"{row['checks']:>8}{row['check_ms']['p50'] or 0:>14.0f}"
            f"{row['check_ms']['p99'] or 0:>7.0f}{row['check_ms']['max'] or 0:>7.0f}{outbox:>8}"
        )
    last = results["samples"][-1]["metrics"] if results["samples"] else {}
    # What an operator would alert on: failures by reason and watchdog findings.
    watched = {
        re.sub(r"^monitor_|_total", "", k): v
        for k, v in last.items()
        if k.startswith(("monitor_check_failures", "monitor_watchdog", "monitor_outbox"))
    }
    gap = checks["gap_s"]
    per = checks["checks_per_watch"]
    lines += [
        "",
        f"RSS: first {rss['first_mib']} MiB, last {rss['last_mib']}, max {rss['max_mib']}, "
        f"peak (wait4) {daemon['peak_rss_mib']}; slope after minute 2: "
        + (
            "n/a (under 5 minutes to fit)"
            if rss["slope_mib_per_hour_after_minute_2"] is None
            else f"{rss['slope_mib_per_hour_after_minute_2']} MiB/h"
        ),
        f"checks: {checks['total']} ({', '.join(f'{k} {v}' for k, v in checks['outcomes'].items())}"
        f"); {checks['per_s']}/s overall, {checks['per_s_after_startup']}/s after start-up "
        f"(schedule asks {checks['per_s_expected']}/s); per watch min {per['min']} median "
        f"{per['median']} max {per['max']}; gap p50 {gap['p50']}s p99 {gap['p99']}s "
        f"max {gap['max']}s",
        f"check duration (fired to committed): all {checks['duration_ms']} ms, from minute 2 "
        f"{checks['duration_ms_from_minute_2']} ms",
        f"missed slots: {checks['missed_slots']} (in {checks['watches_with_missed_slots']} "
        f"watches), never checked: {checks['never_checked']}, double checks: "
        f"{checks['double_checks']}; confirming looks: {results['store_confirming_looks']}",
        f"failed checks outside the scripted faults: {results['stray_problems']['count']} "
        f"{results['stray_problems']['reasons'] or ''}",
        f"alerts expected {alerts['expected']}",
        f"       table    {alerts['alert_table']}"
        + ("" if alerts["table_matches"] else f"  DIFFERS {alerts['table_differences']}"),
        f"       receiver {alerts['receiver']}"
        + ("" if alerts["receiver_matches"] else f"  DIFFERS {alerts['receiver_differences']}"),
        f"       repeated deliveries at the receiver: {alerts['receiver_repeated_deliveries']}; "
        f"outbox {alerts['delivery_status']}; raised after cause, max "
        f"{alerts['raised_after_cause_max_s']} s; delivered after raised "
        f"{alerts['delivered_after_raised_s']} s",
        f"edit -> webhook: {alerts['edit_to_webhook_s']} s (interval "
        f"{results['meta']['interval_s']:g} s + confirm_delay {CONFIRM_DELAY:g} s; "
        "target: within interval + 5 s)",
        f"daemon: scheduler up after {daemon['scheduler_started_after_s']}s; CPU "
        f"{daemon['cpu_s']}s ({checks['cpu_ms_per_check']} ms/check), "
        f"{daemon['cpu_s_at_sigterm']}s at SIGTERM; shutdown {daemon['shutdown_s']}s, exit "
        f"{daemon['returncode']}; site CPU {daemon['site_cpu_s']}s, faulty answers "
        f"{results['site'].get('faults')}",
        f"/metrics at the last sample: {watched or 'not sampled'}",
        f"log: {results['log']['levels']}",
    ]
    lines += [f"  {n:>5} × {pattern}" for pattern, n in results["log"]["patterns"].items()]
    lines += [f"  {line}" for line in results["log"]["errors"]]
    for name in ("missed_examples", "never_examples", "double_examples"):
        if checks[name]:
            lines.append(f"{name.replace('_', ' ')}: {checks[name][:8]}")
    if results["stray_problems"]["examples"]:
        lines.append(f"stray failed checks: {results['stray_problems']['examples'][:8]}")
    failed = results["verdict"]
    lines += ["", "FAIL: " + "; ".join(failed) if failed else "PASS"]
    return "\n".join(lines)


def main() -> None:
    check_requirements()  # before monitor is imported for its duration parser
    from monitor.config import parse_duration

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--watches", type=int, default=2000)
    parser.add_argument("--interval", type=parse_duration, default=60.0, help="e.g. 60s, 2m")
    parser.add_argument("--no-web", action="store_true", help="run the daemon with --no-web")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument(
        "--ui-clients",
        type=int,
        default=0,
        metavar="N",
        help="N clients reading the web UI at once through the second half of the run: "
        "the checks' lateness in the first half (no clients) and the second, side by side",
    )
    args = parser.parse_args()
    if args.ui_clients and args.no_web:
        parser.error("--ui-clients needs the web UI (leave out --no-web)")
    # Other work on the machine skews every figure; the load at the start is recorded so a
    # noisy run can be recognised as one.
    args.load = os.getloadavg()[0]
    results, workdir = soak(args)
    results["verdict"] = verdict(results)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(render(results))
    print("\n".join(render_ui_load(results)))
    print(f"\n(written to {RESULTS.relative_to(REPO)})")
    if args.keep or results["verdict"]:
        # A failed run's store and log are the evidence; keep them for whoever looks.
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if results["verdict"] else 0)


if __name__ == "__main__":
    main()
