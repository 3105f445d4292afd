"""Benchmark: `monitor check --once` against a local ministry-like site, urlwatch and a floor.

One command (from the repository root, with monitor installed):

    pip install -r bench/requirements.txt      # aiohttp and psutil, once
    python bench/run.py [--pages 1000] [--quick] [--profile] [--monitor-rev REV]
                        [--skip-urlwatch] [--skip-daemon] [--keep]

It prints a table and writes the same figures to bench/results/latest.json. Default run
(1000 pages) takes a few minutes on 2 cores; `--quick` uses 200 pages and fewer micro
repetitions; `--pages 10000` works too, only longer. Linux only (per-process peak RSS comes
from wait4). What one run measures, against `bench/fakesite.py` on 127.0.0.1 in its own
process:

1. monitor as a user runs it, one whole process per cycle (`python -m monitor --config F
   check --once`) over N generic watches: first cycle (all new), unchanged cycle, a cycle
   after 10 % of pages changed, and an unchanged cycle while the site ignores validators
   (always 200). Wall, checks/s, CPU, peak RSS, 200/304 counted at the site, and the bytes
   the store grew by per unchanged check. An unchanged cycle over a tenth of the watches
   gives, by the slope between the two, the CPU per unchanged check without start-up.
1b. One daemon (`monitor run --no-web`) with all N watches at a 60 s interval, through two
   cycles (about two minutes; `--skip-daemon` leaves it out): its RSS after the first, its
   peak RSS, its CPU per check in the first cycle (from its last look at the idle site to
   the N-th request) and in the second (from the end of the first, the wait included).
2. urlwatch (the peer) in bench/.venv-urlwatch, created on first use, with isolated
   config, jobs, hooks and cache: a first run and an unchanged run.
3. The floor: `bench/floor.py`, a bare aiohttp process doing only the N GETs (conditional,
   then plain), with as many requests in flight as monitor (`CONCURRENCY`).
4. In-process micro figures: word diff of a 50 KB statement with 5 scattered edits,
   `Store.commit_check` of an unchanged check, and, to explain the per-check cost, the
   generic extraction of one page and the store calls of one unchanged check.

`--profile` then runs a first, an unchanged and a no-304 cycle again under cProfile (on a
fresh store for the first) and prints the functions that dominate each; these runs are
slower and never the timed ones.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import io
import json
import os
import platform
import pstats
import random
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
RESULTS = BENCH / "results" / "latest.json"
URLWATCH_VENV = BENCH / ".venv-urlwatch"
# Pinned so that figures from different days compare like with like.
URLWATCH_SPEC = "urlwatch==2.29"
CHANGE_FRACTION = 0.1
EDITS_PER_CHANGE = 5
# The monitor setup the brief asks for: no politeness delays, no retries, no confirmation
# re-fetch, so the cycle measures monitor's own work rather than its waiting.
# Requests in flight, for monitor (`concurrency` and `per_host_concurrency`) and the floor
# alike: monitor's default `concurrency`. Up to the 7th session monitor ran with 50 and the
# floor with 20, which is not the same work: at 50 monitor spent 0.39 ms of CPU per
# unchanged check in one process and 0.33 at 20, the floor 0.18 and 0.16 (bench/README.md).
CONCURRENCY = 20


@dataclass
class ProcessRun:
    wall: float
    cpu: float  # user + system of the process itself
    rss_mib: float  # peak resident set size
    returncode: int
    stdout: str
    timed_out: bool = False


@dataclass
class Phase:
    name: str
    tool: str
    checks: int
    wall: float
    cpu: float
    rss_mib: float
    returncode: int
    site: dict[str, Any]  # counters from the site for this phase only
    site_cpu: float  # seconds the site process spent serving this phase
    outcomes: dict[str, int] = field(default_factory=dict)
    note: str = ""
    # False when the run died or did not check every page: its figures mean nothing, and
    # ratios built on it are left out rather than printed as a flattering number.
    valid: bool = True

    @property
    def rate(self) -> float:
        return self.checks / self.wall if self.wall else 0.0

    def summary(self) -> dict[str, Any]:
        return {**asdict(self), "checks_per_s": round(self.rate, 1)}


def run_process(
    cmd: list[str],
    *,
    env: dict[str, str] | None,
    cwd: Path,
    timeout: float,
    log: Path,
    on_start: Callable[[subprocess.Popen[bytes]], None] | None = None,
) -> ProcessRun:
    """Run one process to the end and take its own wall, CPU and peak RSS.

    os.wait4 gives the rusage of exactly this child, unlike RUSAGE_CHILDREN, whose maxrss is
    the maximum over every child so far and would blur urlwatch's figure with monitor's.
    `on_start` gets the process as soon as it exists, for a caller that samples or signals
    it while this waits (bench/soak.py runs this in a thread).
    """
    out_path = log.with_suffix(".out")
    with out_path.open("wb") as out, log.with_suffix(".err").open("wb") as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env, cwd=cwd)
    if on_start is not None:
        on_start(proc)
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        proc.kill()

    timer = threading.Timer(timeout, kill)
    timer.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    timer.cancel()
    # Already reaped: tell Popen, so it does not wait for the pid again.
    proc.returncode = os.waitstatus_to_exitcode(status)
    return ProcessRun(
        wall=wall,
        cpu=usage.ru_utime + usage.ru_stime,
        rss_mib=usage.ru_maxrss / 1024,  # KiB on Linux
        returncode=proc.returncode,
        stdout=out_path.read_text(errors="replace"),
        timed_out=fired.is_set(),
    )


class Site:
    """bench/fakesite.py in its own process, and its control endpoints."""

    def __init__(self, pages: int, workdir: Path) -> None:
        self.pages = pages
        self._log = (workdir / "fakesite.err").open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, str(BENCH / "fakesite.py"), "--pages", str(pages)],
            stdout=subprocess.PIPE,
            stderr=self._log,
        )
        assert self.proc.stdout is not None
        # The site prints its port once every page is built and the socket listens.
        line = self.proc.stdout.readline().decode()
        if not line.startswith("PORT "):
            self.close()
            log = (workdir / "fakesite.err").read_text(errors="replace")
            raise SystemExit(f"the benchmark site did not start:\n{log}")
        self.base = f"http://127.0.0.1:{int(line.split()[1])}"
        import psutil

        self._ps = psutil.Process(self.proc.pid)

    def url(self, index: int) -> str:
        return f"{self.base}/statement/{index}"

    def call(self, method: str, path: str) -> Any:
        request = urllib.request.Request(self.base + path, method=method)
        with urllib.request.urlopen(request, timeout=60) as response:
            return json.loads(response.read())

    def cpu_seconds(self) -> float:
        times = self._ps.cpu_times()
        return times.user + times.system

    def close(self) -> None:
        stop(self.proc, grace=10)
        self._log.close()


class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.n: int = args.pages
        self.workdir = workdir
        self.timeout = 120 + 0.5 * self.n  # generous: a hung run must still end the bench
        self.site = Site(self.n, workdir)
        # Every monitor process gets the same environment: the user's, without a config
        # override, with an exported revision first on the path when --monitor-rev is used.
        # PYTHONDONTWRITEBYTECODE is dropped: with it, an editable install compiles all of
        # monitor/ from source in every process (0.15 s each), which no installed copy does;
        # `compile_monitor` writes the bytecode once, before any timed run.
        leave_out = {"MONITOR_CONFIG", "PYTHONDONTWRITEBYTECODE"}
        self.monitor_env = {k: v for k, v in os.environ.items() if k not in leave_out}
        if args.monitor_src:
            path = os.pathsep.join(filter(None, [args.monitor_src, os.environ.get("PYTHONPATH")]))
            self.monitor_env["PYTHONPATH"] = path
        self.phases: list[Phase] = []
        self.results: dict[str, Any] = {}

    # --- helpers -----------------------------------------------------------------------

    def measure(
        self,
        name: str,
        tool: str,
        cmd: list[str],
        env: dict[str, str] | None = None,
        checks: int | None = None,
    ) -> tuple[Phase, ProcessRun]:
        """Run one cycle as a whole process, with the site's counters reset around it."""
        print(f"  {name} ...", end="", flush=True)
        self.site.call("POST", "/__reset")
        site_cpu = self.site.cpu_seconds()
        slug = re.sub(r"\W+", "-", name).strip("-")
        run = run_process(
            cmd, env=env, cwd=self.workdir, timeout=self.timeout, log=self.workdir / slug
        )
        phase = Phase(
            name=name,
            tool=tool,
            checks=checks or self.n,
            wall=run.wall,
            cpu=run.cpu,
            rss_mib=run.rss_mib,
            returncode=run.returncode,
            site=self.site.call("GET", "/__stats"),
            site_cpu=self.site.cpu_seconds() - site_cpu,
        )
        if run.timed_out:
            phase.valid, phase.note = False, f"killed after {self.timeout:.0f}s"
        elif run.returncode != 0:
            # monitor exits 1 when a check reports a problem; monitor_cycle decides for it.
            phase.valid = tool == "monitor"
            phase.note = f"exit {run.returncode} (see {self.workdir / slug}.err)"
        print(f" {run.wall:.1f}s", flush=True)
        self.phases.append(phase)
        return phase, run

    # --- monitor -----------------------------------------------------------------------

    def compile_monitor(self) -> None:
        """Byte-compile the monitor package the timed processes import, as pip does when it
        installs a package, so no timed run pays for compiling it."""
        where = "import monitor, sys; print(monitor.__path__[0])"
        package = subprocess.run(
            [sys.executable, "-c", where],
            env=self.monitor_env,
            cwd=self.workdir,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        subprocess.run(
            [sys.executable, "-m", "compileall", "-q", package], env=self.monitor_env, check=True
        )

    def monitor_config(
        self, store: Path, filename: str, watches: int | None = None, interval: str = ""
    ) -> Path:
        lines = [
            f'[store]\npath = "{store}"\n',
            local_fetch_table(timeout=30),
            '[alerts]\nconfirm_delay = "0s"\n',
        ]
        # No channels: alerts are still built and stored (the outbox), just not delivered.
        every = f'interval = "{interval}"\n' if interval else ""
        lines += [
            f'[[watch]]\nid = "p{i}"\nurl = "{self.site.url(i)}"\nprofile = "generic"\n{every}'
            for i in range(watches or self.n)
        ]
        path = self.workdir / filename
        path.write_text("\n".join(lines), encoding="utf-8")
        return path

    def monitor_cycle(
        self, name: str, config: Path, expect: dict[str, int], checks: int | None = None
    ) -> Phase:
        cmd = [sys.executable, "-m", "monitor", "--config", str(config), "check", "--once"]
        phase, run = self.measure(name, "monitor", cmd, self.monitor_env, checks)
        phase.outcomes = dict(
            Counter(re.findall(r"^\S+: (changed|unchanged|problem) ", run.stdout, re.M))
        )
        if sum(phase.outcomes.values()) != phase.checks:
            phase.valid = False
        if phase.outcomes != expect and not phase.note:
            phase.note = f"expected {expect}"
        return phase

    def run_monitor(self) -> None:
        print("monitor:")
        store = self.workdir / "store"
        config = self.monitor_config(store, "monitor.toml")
        n = self.n
        first = self.monitor_cycle("monitor first (all new)", config, {"changed": n})
        before = tree_size(store)
        unchanged = self.monitor_cycle("monitor unchanged", config, {"unchanged": n})
        after = tree_size(store)
        changed = len(
            self.site.call(
                "POST", f"/__change?fraction={CHANGE_FRACTION}&edits={EDITS_PER_CHANGE}"
            )["changed"]
        )
        edited = self.monitor_cycle(
            f"monitor {CHANGE_FRACTION:.0%} changed",
            config,
            {k: v for k, v in (("changed", changed), ("unchanged", n - changed)) if v},
        )
        after_change = tree_size(store)
        self.results["in_loop"] = self.run_in_loop(store, unchanged)
        # The site stops answering 304: what a cycle costs on sites without validators.
        self.site.call("POST", "/__validators?honour=0")
        self.monitor_cycle("monitor unchanged, site sends no 304", config, {"unchanged": n})
        self.site.call("POST", "/__validators?honour=1")
        # A growth figure is only meaningful across cycles that really checked every page.
        grew = first.valid and unchanged.valid
        self.results["store"] = {
            "bytes_after_first_cycle": before[0] if first.valid else None,
            "bytes_per_unchanged_check": (after[0] - before[0]) / n if grew else None,
            "disk_bytes_per_unchanged_check": (after[1] - before[1]) / n if grew else None,
            "bytes_per_changed_page": (
                (after_change[0] - after[0]) / changed if changed and edited.valid else None
            ),
            "pages_changed": changed,
        }
        if self.args.profile:
            self.results["profile"] = self.run_profiles(config)

    def run_in_loop(self, store: Path, unchanged: Phase) -> dict[str, Any]:
        """CPU per unchanged check without the process start-up (imports, configuration,
        store opening): an unchanged cycle over a tenth of the watches, and the slope
        between it and the full unchanged cycle. What a long-running daemon pays per check
        is this marginal figure, not the whole-process one."""
        few = max(1, self.n // 10)
        config = self.monitor_config(store, "monitor-tenth.toml", watches=few)
        small = self.monitor_cycle(
            f"monitor unchanged, {few} watches", config, {"unchanged": few}, checks=few
        )
        if not (small.valid and unchanged.valid) or few == self.n:
            return {"cpu_ms_per_unchanged_check": None, "startup_cpu_s": None}
        per_check = (unchanged.cpu - small.cpu) / (self.n - few)
        return {
            "cpu_ms_per_unchanged_check": round(1000 * per_check, 3),
            "startup_cpu_s": round(unchanged.cpu - per_check * self.n, 2),
        }

    def run_daemon(self) -> None:
        """One daemon (`monitor run --no-web`) holding all N watches at a 60 s interval for
        two cycles: its resident memory after the first, and the CPU it spends per check.

        The previous phases checked every page moments before, so the first cycle comes
        about a minute after start, in a burst; its CPU is counted from the last look at
        the site while it was idle to its N-th request. The watches' jitter (±5 % of the
        interval) then spreads the second cycle a little; its CPU is counted from the end
        of the first cycle to the end of the second, the minute of waiting in between
        included: what the daemon costs per check as it runs."""
        import psutil

        print("monitor daemon:")
        config = self.monitor_config(self.workdir / "store", "monitor-daemon.toml", interval="60s")
        cmd = [sys.executable, "-m", "monitor", "--config", str(config), "run", "--no-web"]
        self.site.call("POST", "/__reset")
        log = self.workdir / "daemon"
        started = time.perf_counter()
        with log.with_suffix(".err").open("wb") as err:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=err, env=self.monitor_env, cwd=self.workdir
            )
        ps = psutil.Process(proc.pid)
        figures: dict[str, Any] = {"watches": self.n, "interval_s": 60}
        # (requests served, daemon CPU s) at: the last look while the site was idle (looks
        # 0.05 s apart: a fast machine runs 1,000 checks in 0.2 s), the end of each cycle.
        idle: tuple[int, float] | None = None
        ends: list[tuple[int, float]] = []
        served = 0
        deadline = started + 210 + 0.05 * self.n
        try:
            while time.perf_counter() < deadline and proc.poll() is None:
                served = self.site.call("GET", "/__stats")["requests"]
                times = ps.cpu_times()
                cpu = times.user + times.system
                if served == 0:
                    idle = (0, cpu)
                elif served >= self.n * (len(ends) + 1):
                    ends.append((served, cpu))
                    if len(ends) == 1:
                        figures["rss_mib_after_cycle"] = round(ps.memory_info().rss / 2**20, 1)
                    else:
                        break
                time.sleep(0.05)
            if idle is not None and ends:
                figures["startup_cpu_s"] = round(idle[1], 2)
                figures["cpu_ms_per_check"] = _ms_per_check(idle, ends[0])
            if len(ends) == 2:
                figures["cpu_ms_per_check_second_cycle"] = _ms_per_check(ends[0], ends[1])
            if "cpu_ms_per_check" not in figures:
                figures["note"] = f"no figure: {served} of {self.n} requests (exit {proc.poll()})"
            figures["peak_rss_mib"] = _peak_rss_mib(proc.pid)
        finally:
            stop(proc, grace=30)
        self.results["daemon"] = figures
        print(f"  {figures}")

    def run_startup(self, watches: int) -> None:
        """One daemon (`monitor run --no-web`) started with `watches` watches, twice: on a
        fresh store (every watch registered), then on the same store after each watch's
        state says it was checked half an hour ago (but a hundredth never), the daemon's
        usual restart. Its RSS at the first request and 20 s later (steady), its peak RSS,
        the seconds from spawn to the first request the site sees, the CPU it took, and
        what it logged at start (lines in all, and lines naming a watch).

        The watches point at the site's pages in turn (`?w=` makes each URL its own), one
        host, `robots = false` (a per-watch warning until session 13), a 1 h interval."""
        print(f"monitor start-up, {watches} watches:")
        store = self.workdir / "store-startup"
        lines = [f'[store]\npath = "{store}"\n', local_fetch_table(timeout=30)]
        lines += [
            f'[[watch]]\nid = "s{i}"\nurl = "{self.site.url(i % self.n)}?w={i}"\n'
            'profile = "generic"\ninterval = "1h"\nrobots = false\n'
            for i in range(watches)
        ]
        config = self.workdir / "monitor-startup.toml"
        config.write_text("\n".join(lines), encoding="utf-8")
        figures = {"watches": watches}
        figures["fresh"] = self._one_start(config, "startup-fresh")
        _mark_checked(store / "index.sqlite", never=0.01)
        figures["restart"] = self._one_start(config, "startup-restart")
        self.results["startup"] = figures
        for name in ("fresh", "restart"):
            print(f"  {name}: {figures[name]}")

    def _one_start(self, config: Path, slug: str, steady_after: float = 20.0) -> dict[str, Any]:
        import psutil

        cmd = [sys.executable, "-m", "monitor", "--config", str(config), "run", "--no-web"]
        self.site.call("POST", "/__reset")
        log = self.workdir / f"{slug}.err"
        started = time.perf_counter()
        with log.open("wb") as err:
            proc = subprocess.Popen(
                cmd, stdout=subprocess.DEVNULL, stderr=err, env=self.monitor_env, cwd=self.workdir
            )
        ps = psutil.Process(proc.pid)
        figures: dict[str, Any] = {}
        try:
            deadline = started + 120
            while time.perf_counter() < deadline and proc.poll() is None:
                if self.site.call("GET", "/__stats")["requests"]:
                    figures["first_request_s"] = round(time.perf_counter() - started, 2)
                    times = ps.cpu_times()
                    figures["cpu_to_first_request_s"] = round(times.user + times.system, 2)
                    figures["rss_mib_at_first_request"] = round(ps.memory_info().rss / 2**20, 1)
                    break
                time.sleep(0.02)
            else:
                figures["note"] = f"no request within 120 s (exit {proc.poll()})"
            time.sleep(steady_after)
            if proc.poll() is None:
                figures["steady_rss_mib"] = round(ps.memory_info().rss / 2**20, 1)
                figures["peak_rss_mib"] = _peak_rss_mib(proc.pid)
        finally:
            stop(proc, grace=60)
        logged = log.read_text(errors="replace").splitlines()
        figures["log_lines"] = len(logged)
        figures["log_lines_naming_a_watch"] = sum(bool(re.search(r"\bs\d+\b", x)) for x in logged)
        return figures

    def run_profiles(self, config: Path) -> dict[str, Any]:
        """The three kinds of cycle again under cProfile, after the timed ones (cProfile
        slows a cycle down about twice, so these runs are never the timed ones)."""
        fresh = self.monitor_config(self.workdir / "store-profile", "monitor-profile.toml")
        profiles = {
            "first (all new)": self.profile_cycle("first", fresh),
            "unchanged (304)": self.profile_cycle("unchanged", config),
        }
        self.site.call("POST", "/__validators?honour=0")
        profiles["unchanged, site sends no 304"] = self.profile_cycle("no-304", config)
        self.site.call("POST", "/__validators?honour=1")
        return profiles

    def profile_cycle(self, name: str, config: Path) -> dict[str, Any]:
        """Top functions by own time, and monitor's own functions by total time."""
        out = self.workdir / f"{name}.prof"
        cmd = [sys.executable, "-m", "cProfile", "-o", str(out), "-m", "monitor"]
        cmd += ["--config", str(config), "check", "--once"]
        print(f"  profiling a {name} cycle ...", flush=True)
        run_process(cmd, env=self.monitor_env, cwd=self.workdir, timeout=self.timeout * 3, log=out)
        stats = pstats.Stats(str(out)).stats

        def top(column: int, only_monitor: bool) -> list[dict[str, Any]]:
            rows = [
                (key, row)
                for key, row in stats.items()
                if not only_monitor or f"{os.sep}monitor{os.sep}" in key[0]
            ]
            rows.sort(key=lambda item: item[1][column], reverse=True)
            # ncalls counts coroutine resumptions too, so it is shown but not interpreted.
            return [
                {
                    "function": f"{short_path(file)}:{line}({func})",
                    "calls": row[1],
                    "own_s": round(row[2], 3),
                    "total_s": round(row[3], 3),
                }
                for (file, line, func), row in rows[:12]
            ]

        return {
            "profiled_seconds": round(sum(row[2] for row in stats.values()), 2),
            "by_own": top(2, only_monitor=False),
            "monitor_by_total": top(3, only_monitor=True),
        }

    # --- urlwatch ----------------------------------------------------------------------

    def run_urlwatch(self) -> None:
        print("urlwatch:")
        executable, version = ensure_urlwatch()
        if executable is None:
            self.results["urlwatch"] = {"skipped": version}
            print(f"  skipped: {version}")
            return
        home = self.workdir / "urlwatch"
        home.mkdir()
        urls = home / "urls.yaml"
        urls.write_text("---\n".join(f"url: {self.site.url(i)}\n" for i in range(self.n)))
        config = home / "urlwatch.yaml"
        # Only stdout is on by default; off, so no reporter runs and nothing is printed.
        config.write_text("report:\n  stdout:\n    enabled: false\n    color: false\n")
        hooks = home / "hooks.py"
        hooks.write_text("")
        cmd = [str(executable), "--urls", str(urls), "--config", str(config)]
        cmd += ["--hooks", str(hooks), "--cache", str(home / "cache.db")]
        # HOME and XDG dirs point into the temp dir: nothing may touch the user's ~/.urlwatch.
        env = {**os.environ, "HOME": str(home), "XDG_CONFIG_HOME": str(home)}
        env["XDG_CACHE_HOME"] = str(home)
        self.measure("urlwatch first", "urlwatch", cmd, env)
        self.measure("urlwatch unchanged", "urlwatch", cmd, env)
        self.results["urlwatch"] = {"version": version, "workers": "10 threads (its default)"}

    # --- floor -------------------------------------------------------------------------

    def floor_cmd(self, conditional: bool, client: str = "aiohttp") -> list[str]:
        cmd = [sys.executable, str(BENCH / "floor.py"), "--base", self.site.base]
        cmd += ["--pages", str(self.n), "--concurrency", str(CONCURRENCY), "--client", client]
        if conditional:
            etags = self.workdir / "etags.json"
            etags.write_text(json.dumps(self.site.call("GET", "/__etags")))
            cmd += ["--etags", str(etags)]
        return cmd

    def floor_cycle(self, name: str, conditional: bool, client: str = "aiohttp") -> Phase:
        phase, run = self.measure(name, "floor", self.floor_cmd(conditional, client))
        if run.returncode == 0:
            loop = json.loads(run.stdout)["loop_seconds"]
            phase.note = f"request loop alone {loop:.2f}s"
        return phase

    def run_floor(self) -> None:
        print("floor:")
        self.floor_cycle("floor: conditional GETs", conditional=True)
        self.floor_cycle("floor: plain GETs", conditional=False)
        # Not the floor: the bare loop of monitor's default transport, libcurl.
        self.floor_cycle("libcurl floor: conditional GETs", conditional=True, client="curl")

    def run_pairs(self, rounds: int) -> None:
        """The unchanged cycle and the floor's conditional GETs again, one right after the
        other, `rounds` times. This machine's speed drifts by ±15 % from one minute to the
        next, and a pair shares the drift: the median of the pairs' ratios is the fairer
        "× the floor" figure; the single phases above are kept as they were."""
        print(f"pairs (monitor unchanged, then the floor), {rounds} rounds:")
        config = self.workdir / "monitor.toml"
        pairs = []
        for number in range(1, rounds + 1):
            ours = self.monitor_cycle(
                f"pair {number}: monitor unchanged", config, {"unchanged": self.n}
            )
            floor = self.floor_cycle(f"pair {number}: floor conditional", conditional=True)
            if ours.valid and floor.valid and floor.wall:
                pairs.append(round(ours.wall / floor.wall, 2))
        self.results["pairs"] = {
            "ratios": pairs,
            "median_x_floor": statistics.median(pairs) if pairs else None,
        }

    # --- micro -------------------------------------------------------------------------

    def run_micro(self) -> None:
        print("micro (in-process):")
        quick = self.args.quick
        micro: dict[str, float | None] = {}
        for key, fn, reps in (
            ("diff_50kb_5_edits_ms", micro_diff, 5 if quick else 20),
            ("commit_check_unchanged_ms", micro_commit, 200 if quick else 1000),
            ("extract_generic_30kb_ms", micro_extract, 10 if quick else 50),
            ("store_calls_unchanged_check_ms", micro_store_round, 200 if quick else 1000),
        ):
            # monitor/ changes under us; one broken interface must not lose the other figures.
            try:
                micro[key] = fn(reps)
            except Exception as err:
                micro[key] = None
                self.results.setdefault("errors", []).append(f"{key}: {err!r}")
                print(f"  {key}: failed: {err!r}")
        self.results["micro"] = micro


# --- measurements in this process ------------------------------------------------------------


def stop(proc: subprocess.Popen[Any], grace: float) -> None:
    """SIGTERM, and SIGKILL if the process has not ended `grace` seconds later."""
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def median_ms(fn: Any, reps: int) -> float:
    times = []
    for _ in range(reps):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return round(statistics.median(times) * 1000, 3)


def micro_diff(reps: int) -> float:
    """Word diff of a 50 KB statement with 5 edits in random paragraphs (scattered)."""
    from fakesite import Corpus, edit_words

    from monitor.diff import compare
    from monitor.extract import Statement

    rng = random.Random(50)
    paragraphs = Corpus().paragraphs(rng, 50_000)
    old = Statement(
        key="page",
        url="http://127.0.0.1/statement/0",
        title="Statement of the Ministry on the benchmark",
        paragraphs=tuple(paragraphs),
        published="2024-05-01T10:00:00+05:00",
    )
    new = replace(old, paragraphs=tuple(edit_words(paragraphs, rng, EDITS_PER_CHANGE)))
    assert compare(old, new).changed, "the edited statement must differ"
    return median_ms(lambda: compare(old, new), reps)


def micro_commit(reps: int) -> float:
    """`commit_check` of an unchanged check as a daemon makes it: inside an event loop,
    where the store writes the unchanged checks of a moment in one transaction (its
    `_BATCH_WINDOW`); per check, the batch's transaction included."""
    return _per_check_in_batches(reps, lambda store, watch_id: None)


def micro_store_round(reps: int) -> float:
    """The store calls of an unchanged check whose page answered 200 with other bytes (a
    rotating banner, say): its versions' heads read to compare with, then the batched
    commit. A 304, or the same bytes again, makes the commit alone (`micro_commit`)."""
    return _per_check_in_batches(reps, lambda store, watch_id: store.heads(watch_id))


def _per_check_in_batches(reps: int, before_commit: Any, batch: int = 100) -> float:
    """Median ms per check of `reps` unchanged checks of `batch` watches with history, in
    batches of `batch` (one transaction each, as in a daemon's tick)."""
    from monitor.store import CheckRecord, NewVersion, Store, now_iso

    async def measure(store: Store, watch_ids: list[str]) -> float:
        states = store.states(set(watch_ids))
        times = []
        for _ in range(max(1, reps // batch)):
            started = time.perf_counter()
            for watch_id in watch_ids:
                before_commit(store, watch_id)
                record = CheckRecord(watch_id, now_iso(), 5, "unchanged", 304)
                store.commit_check(record, states[watch_id])
            store.flush()
            times.append((time.perf_counter() - started) / batch)
        return round(statistics.median(times) * 1000, 3)

    with tempfile.TemporaryDirectory(prefix="monitor-bench-store-") as tmp, Store(tmp) as store:
        watch_ids = [f"w{i}" for i in range(batch)]
        for watch_id in watch_ids:
            url = f"http://127.0.0.1/statement/{watch_id}"
            store.sync_watch(watch_id, url, "generic")
            baseline = NewVersion("page", url, "t", None, None, "baseline", b'{"k":1}')
            record = CheckRecord(watch_id, now_iso(), 5, "changed", 200)
            store.commit_check(record, store.state(watch_id), versions=[baseline])
        return asyncio.run(measure(store, watch_ids))


def micro_extract(reps: int) -> float:
    """The generic profile reading one ~30 KB page (HTML parse, furniture removal, text)."""
    from fakesite import Corpus, make_page

    from monitor.extract import Target
    from monitor.fetch import FetchRequest, FetchResult
    from monitor.sites import get_profile

    page = make_page(0, Corpus())
    url = "http://127.0.0.1/statement/0"
    result = FetchResult(
        request=FetchRequest(url),
        url=url,
        requested_at=datetime.now(UTC),
        status=200,
        headers=[("Content-Type", "text/html; charset=utf-8")],
        body=page.body,
    )
    profile, target = get_profile("generic", url), Target(url)
    assert profile.extract(result, target).statements, "the page must extract"
    return median_ms(lambda: profile.extract(result, target), reps)


# --- small utilities -------------------------------------------------------------------------


def local_fetch_table(timeout: float) -> str:
    """monitor's [fetch] table for the one local site: no politeness delays and no retries,
    so what is measured is monitor's own work rather than its waiting."""
    return (
        "[fetch]\nallow_private = true\n"
        f"concurrency = {CONCURRENCY}\nper_host_concurrency = {CONCURRENCY}\n"
        f'per_host_delay = "0s"\nretries = 0\ntimeout = "{timeout:g}s"\n'
    )


def tree_size(root: Path) -> tuple[int, int]:
    """(apparent bytes, allocated bytes) of every file under root: the SQLite file, its
    WAL if left behind, and the blobs."""
    apparent = allocated = 0
    for path in root.rglob("*"):
        if path.is_file():
            info = path.stat()
            apparent += info.st_size
            allocated += info.st_blocks * 512
    return apparent, allocated


def _ms_per_check(start: tuple[int, float], end: tuple[int, float]) -> float:
    """CPU ms per request between two (requests served, CPU seconds) looks."""
    return round(1000 * (end[1] - start[1]) / (end[0] - start[0]), 3)


def _mark_checked(database: Path, never: float) -> None:
    """Every watch's state: checked half an hour ago (due again at some point of the next
    half hour), but for a fraction `never` of them, which were never checked (due now)."""
    import sqlite3

    now = time.time()

    def stamp(seconds: float) -> str:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")

    with sqlite3.connect(database) as db:
        ids = [row[0] for row in db.execute("SELECT watch_id FROM watch_state")]
        every = max(1, round(1 / never)) if never else 0
        db.executemany(
            "UPDATE watch_state SET last_check_at = ?, last_ok_at = ?, next_run_at = ? "
            "WHERE watch_id = ?",
            [
                (stamp(now - 1800), stamp(now - 1800), stamp(now + random.uniform(60, 1800)), i)
                for n, i in enumerate(ids)
                if not (every and n % every == 0)
            ],
        )


def _peak_rss_mib(pid: int) -> float | None:
    """The process's peak resident set so far (VmHWM), while it still runs."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    return round(int(match.group(1)) / 1024, 1) if match else None


def short_path(file: str) -> str:
    for marker in ("site-packages/", "/monitor/", "lib/python3"):
        if marker in file:
            return file[file.index(marker) :].removeprefix("site-packages/").lstrip("/")
    return file


def ensure_urlwatch() -> tuple[Path | None, str]:
    """(urlwatch executable, version), creating the venv on first use; (None, why) if not."""
    executable = URLWATCH_VENV / "bin" / "urlwatch"
    if not executable.exists():
        print(f"  installing {URLWATCH_SPEC} into {URLWATCH_VENV} (first run only) ...")
        try:
            subprocess.run([sys.executable, "-m", "venv", str(URLWATCH_VENV)], check=True)
            pip = [str(URLWATCH_VENV / "bin" / "pip"), "install", "--quiet", URLWATCH_SPEC]
            subprocess.run(pip, check=True, capture_output=True, timeout=600)
        except (subprocess.SubprocessError, OSError) as err:
            return None, f"could not install urlwatch: {err}"
    done = subprocess.run([str(executable), "--version"], capture_output=True, text=True)
    return executable, done.stdout.strip() or "unknown"


def export_revision(revision: str, workdir: Path) -> tuple[str, str]:
    """Put monitor/ as committed at `revision` under workdir; (its directory, short hash).

    The working tree may be mid-edit (several people work on monitor/ at once); a committed
    revision gives figures that can be reproduced and compared across commits.
    """
    git = ["git", "-C", str(REPO)]
    try:
        short = subprocess.run(
            [*git, "rev-parse", "--short", f"{revision}^{{commit}}"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        archive = subprocess.run(
            [*git, "archive", "--format=tar", short, "monitor"], capture_output=True, check=True
        ).stdout
    except subprocess.CalledProcessError as err:
        sys.exit(f"--monitor-rev {revision}: {err.stderr.strip() or err}")
    destination = workdir / f"monitor-{short}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(destination, filter="data")
    return str(destination), short


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO), "status", "--porcelain", "--", "monitor"],
            capture_output=True,
            text=True,
        ).stdout.strip()
    except (subprocess.SubprocessError, OSError):
        return "unknown"
    return rev + ("+dirty monitor/" if dirty else "")


# --- report ----------------------------------------------------------------------------------


def ratios(phases: list[Phase]) -> dict[str, float | None]:
    by_name = {p.name: p for p in phases}

    def ratio(a: str, b: str, attribute: str) -> float | None:
        if a not in by_name or b not in by_name:
            return None
        if not (by_name[a].valid and by_name[b].valid):
            return None
        x, y = getattr(by_name[a], attribute), getattr(by_name[b], attribute)
        return round(x / y, 2) if y else None

    return {
        "monitor_vs_urlwatch_checks_per_s_unchanged": ratio(
            "monitor unchanged", "urlwatch unchanged", "rate"
        ),
        "monitor_unchanged_wall_x_floor_conditional": ratio(
            "monitor unchanged", "floor: conditional GETs", "wall"
        ),
        "monitor_unchanged_wall_x_floor_plain": ratio(
            "monitor unchanged", "floor: plain GETs", "wall"
        ),
        "monitor_unchanged_wall_x_libcurl_floor": ratio(
            "monitor unchanged", "libcurl floor: conditional GETs", "wall"
        ),
    }


def number(value: float | None, unit: float = 1) -> str:
    """A figure scaled to its unit, or 'n/a' when the phase it comes from failed."""
    return "n/a" if value is None else f"{value / unit:.1f}" if unit > 1 else f"{value:.0f}"


def render(results: dict[str, Any], phases: list[Phase]) -> str:
    meta = results["meta"]
    lines = [
        f"monitor benchmark — {meta['pages']} pages (~{meta['page_kib']:.0f} KiB each), "
        f"monitor {meta['monitor_revision']}, {meta['cpus']} CPUs "
        f"(load {meta['load_average_at_start']} at start), {meta['date']}",
        "",
        f"{'phase':<38}{'wall s':>8}{'checks/s':>10}{'CPU s':>8}{'CPU ms/chk':>11}"
        f"{'RSS MiB':>9}{'200s':>7}{'304s':>7}{'site CPU s':>11}  outcome / note",
    ]
    for p in phases:
        status = p.site.get("by_status", {})
        outcome = ", ".join(f"{k} {v}" for k, v in sorted(p.outcomes.items()))
        lines.append(
            f"{p.name:<38}{p.wall:>8.2f}{p.rate:>10.1f}{p.cpu:>8.2f}"
            f"{1000 * p.cpu / p.checks:>11.2f}{p.rss_mib:>9.1f}{status.get('200', 0):>7}"
            f"{status.get('304', 0):>7}{p.site_cpu:>11.2f}  "
            + ("" if p.valid else "FAILED: ")
            + "; ".join(x for x in (outcome, p.note) if x)
        )
    store = results.get("store")
    if store:
        monitor_unchanged = next((p for p in phases if p.name == "monitor unchanged"), None)
        conditional = monitor_unchanged.site.get("conditional", 0) if monitor_unchanged else 0
        lines += [
            "",
            f"store after first cycle: {number(store['bytes_after_first_cycle'], 2**20)} MiB; "
            f"added per unchanged check: {number(store['bytes_per_unchanged_check'])} B "
            f"({number(store['disk_bytes_per_unchanged_check'])} B on disk); "
            f"per changed page: {number(store['bytes_per_changed_page'], 1024)} KiB",
            f"monitor conditional requests in unchanged cycle: {conditional} of {meta['pages']}",
        ]
    in_loop = results.get("in_loop")
    if in_loop and in_loop["cpu_ms_per_unchanged_check"] is not None:
        lines.append(
            "monitor CPU per unchanged check without start-up (slope between the tenth and "
            f"the full cycle): {in_loop['cpu_ms_per_unchanged_check']:.2f} ms; "
            f"start-up ≈ {in_loop['startup_cpu_s']:.2f} s CPU"
        )
    daemon = results.get("daemon")
    if daemon:
        lines.append(
            f"daemon (monitor run --no-web, {daemon['watches']} watches, two cycles): "
            + (
                f"RSS after the first cycle {daemon['rss_mib_after_cycle']} MiB "
                f"(peak {daemon['peak_rss_mib']} MiB), CPU per check "
                f"{daemon['cpu_ms_per_check']:.2f} ms in the first cycle (a burst), "
                f"{daemon.get('cpu_ms_per_check_second_cycle', float('nan')):.2f} ms in the "
                f"second (the minute between them included), start-up "
                f"{daemon['startup_cpu_s']} s CPU"
                if "cpu_ms_per_check" in daemon
                else daemon.get("note", "no figures")
            )
        )
    r = results["ratios"]
    lines.append("")
    if r["monitor_vs_urlwatch_checks_per_s_unchanged"] is not None:
        lines.append(
            "monitor / urlwatch checks/s, unchanged cycle: "
            f"{r['monitor_vs_urlwatch_checks_per_s_unchanged']:.2f}"
        )
    if r["monitor_unchanged_wall_x_floor_conditional"] is not None:
        lines.append(
            "monitor unchanged cycle = "
            f"{r['monitor_unchanged_wall_x_floor_conditional']:.1f}x the floor (conditional "
            f"GETs), {r['monitor_unchanged_wall_x_floor_plain']:.1f}x the floor (plain GETs)"
        )
    if r.get("monitor_unchanged_wall_x_libcurl_floor") is not None:
        lines.append(
            "monitor unchanged cycle = "
            f"{r['monitor_unchanged_wall_x_libcurl_floor']:.1f}x a bare libcurl loop (the "
            "transport monitor uses by default; not the issue's floor)"
        )
    pairs = results.get("pairs")
    if pairs and pairs["median_x_floor"] is not None:
        lines.append(
            f"paired, back to back: monitor unchanged = {pairs['median_x_floor']:.2f}x the "
            f"floor (median of {', '.join(f'{r:.2f}' for r in pairs['ratios'])})"
        )
    labels = {
        "diff_50kb_5_edits_ms": "word diff (compare), 50 KB statement, 5 scattered edits",
        "commit_check_unchanged_ms": "Store.commit_check, unchanged check (batched)",
        "extract_generic_30kb_ms": "generic profile extract, one ~30 KB page",
        "store_calls_unchanged_check_ms": "heads + commit, unchanged 200 (batched)",
    }
    micro = results.get("micro", {})
    if micro:
        lines += ["", "micro, in-process (median ms):"]
        lines += [
            f"  {labels[key]:<58}" + ("failed" if value is None else f"{value:>8.3f}")
            for key, value in micro.items()
        ]
    for cycle, profile in results.get("profile", {}).items():
        lines += ["", f"profile, {cycle} cycle ({profile['profiled_seconds']} s profiled):"]
        lines.append(f"  {'own s':>7} {'total s':>7}  by own time | monitor's functions by total")
        for own, mine in zip(profile["by_own"][:8], profile["monitor_by_total"][:8], strict=False):
            lines.append(
                f"  {own['own_s']:>7.2f} {own['total_s']:>7.2f}  {own['function'][:52]:<52}"
                f" | {mine['total_s']:>6.2f}  {mine['function']}"
            )
    return "\n".join(lines)


def run_startup_only(args: argparse.Namespace) -> None:
    """`--watches N`: the start-up case alone, against a site of `--pages` pages (200);
    with `--monitor-rev REV`, monitor as committed at REV first, then the working tree,
    side by side from the same run."""
    args.pages = args.pages or 200
    check_requirements()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    print(f"{args.watches} watches on {args.pages} pages; {workdir}")
    runs: dict[str, Any] = {}
    targets = [(None, git_revision())]
    if args.monitor_rev:
        targets.insert(0, export_revision(args.monitor_rev, workdir))
    try:
        for source, revision in targets:
            args.monitor_src = source
            bench = Bench(args, workdir)
            try:
                bench.compile_monitor()
                print(f"monitor {revision}:")
                bench.run_startup(args.watches)
                runs[revision] = bench.results["startup"]
            finally:
                bench.site.close()
            shutil.rmtree(workdir / "store-startup", ignore_errors=True)
    finally:
        if args.keep:
            print(f"work directory kept: {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    results = RESULTS.with_name("startup.json")
    results.parent.mkdir(exist_ok=True)
    results.write_text(json.dumps(runs, indent=2) + "\n")
    keys = ["first_request_s", "cpu_to_first_request_s", "steady_rss_mib", "peak_rss_mib"]
    keys += ["log_lines", "log_lines_naming_a_watch"]
    print(
        f"{'':<28}"
        + "".join(
            f"{rev + ' ' + start:>24}" for rev in runs for start in runs[rev] if start != "watches"
        )
    )
    for key in keys:
        cells = [
            f"{runs[rev][start].get(key, '-')!s:>24}"
            for rev in runs
            for start in runs[rev]
            if start != "watches"
        ]
        print(f"{key:<28}" + "".join(cells))
    current = runs[targets[-1][1]]
    target = all(
        current[start].get("first_request_s", 99) <= 3
        and (current[start].get("peak_rss_mib") or 999) < 250
        for start in ("fresh", "restart")
    )
    print(f"first request within 3 s and peak RSS under 250 MiB: {'yes' if target else 'NO'}")


def check_requirements() -> None:
    missing = [name for name in ("aiohttp", "psutil") if importlib.util.find_spec(name) is None]
    if importlib.util.find_spec("monitor") is None:
        missing.append("monitor (pip install -e '.[test]')")
    if missing:
        sys.exit(
            f"missing: {', '.join(missing)}\n"
            f"install the benchmark's requirements: pip install -r {BENCH / 'requirements.txt'}"
        )
    if not hasattr(os, "wait4"):
        sys.exit("this benchmark needs os.wait4 (Linux) for per-process peak RSS")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, help="number of pages and watches (default 1000)")
    parser.add_argument("--quick", action="store_true", help="200 pages, fewer micro repetitions")
    parser.add_argument(
        "--profile", action="store_true", help="cProfile a first, unchanged and no-304 cycle"
    )
    parser.add_argument(
        "--monitor-rev",
        metavar="REV",
        help="benchmark monitor/ as committed at REV (e.g. HEAD) instead of the working tree",
    )
    parser.add_argument("--skip-urlwatch", action="store_true")
    parser.add_argument(
        "--skip-daemon", action="store_true", help="skip the two-minute `monitor run` phase"
    )
    parser.add_argument(
        "--pairs",
        type=int,
        default=3,
        metavar="N",
        help="rounds of unchanged cycle + floor back to back for the median ratio (0: none)",
    )
    parser.add_argument(
        "--watches",
        type=int,
        metavar="N",
        help="only the start-up case: one daemon with N watches (e.g. 100000), fresh and "
        "restarted: RSS at the first request, steady and peak, time to the first request",
    )
    parser.add_argument("--keep", action="store_true", help="keep the temporary work directory")
    args = parser.parse_args()
    if args.watches:
        return run_startup_only(args)
    args.pages = args.pages or (200 if args.quick else 1000)
    check_requirements()
    workdir = Path(tempfile.mkdtemp(prefix="monitor-bench-"))
    args.monitor_src = None
    revision = git_revision()
    if args.monitor_rev:
        args.monitor_src, revision = export_revision(args.monitor_rev, workdir)
        # Before anything imports monitor, so the micro figures measure the same code.
        sys.path.insert(0, args.monitor_src)
    print(f"{args.pages} pages; monitor {revision}; work directory {workdir}")
    started = time.perf_counter()
    # Other work on the machine skews every figure; the load at the start is recorded so a
    # noisy run can be recognised as one.
    load = os.getloadavg()[0]
    bench = Bench(args, workdir)
    try:
        bench.compile_monitor()
        bench.run_monitor()
        if not args.skip_daemon:
            bench.run_daemon()
        if not args.skip_urlwatch:
            bench.run_urlwatch()
        bench.run_floor()
        if args.pairs:
            bench.run_pairs(args.pairs)
        first = bench.phases[0].site
        page_kib = first.get("bytes_sent", 0) / max(1, first.get("by_status", {}).get("200", 1))
    finally:
        bench.site.close()
    bench.run_micro()
    results = bench.results
    results["meta"] = {
        "pages": args.pages,
        "quick": args.quick,
        "page_kib": page_kib / 1024,
        "monitor_revision": revision,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "load_average_at_start": round(load, 2),
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "bench_seconds": round(time.perf_counter() - started, 1),
    }
    results["phases"] = [p.summary() for p in bench.phases]
    results["ratios"] = ratios(bench.phases)
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    print()
    print(render(results, bench.phases))
    print(f"\n(written to {RESULTS.relative_to(REPO)}; {results['meta']['bench_seconds']} s)")
    if args.keep:
        print(f"work directory kept: {workdir}")
    else:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
