"""Start-up: what a user waits for before monitor does anything, beside an older revision.

    python bench/startup.py [--watches 100000] [--rounds 2] [--monitor-rev main]
                            [--skip-daemon] [--skip-commands] [--keep]

Against `bench/fakesite.py` on 127.0.0.1 (its own process), with this checkout's monitor
and, with `--monitor-rev REV`, monitor as committed at REV (`git archive`), the two taking
turns round by round so that both see the same machine:

1. The daemon (`monitor run --no-web`) with N watches (issue 28 part 3: 100,000 watches,
   the first request within 3 s of the start, under 250 MiB), started on a fresh store and
   again on the same store once each watch's state says it was checked half an hour ago
   (the usual restart; a hundredth were never checked, so they are due at once). Wall
   seconds from the spawn to the first request the site sees; the daemon's CPU by then and
   its workers' (the forkserver and the workers forked from it, on the other core); RSS at
   the first request, 20 s later (steady) and its peak; the lines it logged. Then the same
   start's stages, each as wall and CPU seconds from the spawn, from marks a small wrapper
   around `python -m monitor` writes (see `_MARKED`): where a start waits rather than works.
2. Commands: the CPU of `python -m monitor --help` (imports, the parser) and of `monitor
   check --once` over a few watches, a first (new pages) and an unchanged run: the whole
   process tree's, from rusage (the bench is the subreaper of the forkserver and workers).

Figures are medians over the rounds. CPU is the honest figure on a shared machine; the
load average is printed with each round.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))

from changed_bench import run_tree  # noqa: E402 (the bench's own modules, once on the path)
from run import (  # noqa: E402
    Site,
    _mark_checked,
    _peak_rss_mib,
    export_revision,
    git_revision,
    local_fetch_table,
    stop,
)

RESULTS = BENCH / "results" / "startup_stages.json"
_PR_SET_CHILD_SUBREAPER = 36
SMALL = 20  # watches of the `check --once` runs

# `python -m monitor …` with marks on stderr (`MARK <stage> <time.time()> <process CPU>`) at
# the stages of a daemon's start. Only functions are wrapped, none is replaced, so the start
# is the same one; `monitor.isolate` is imported a little earlier than by `monitor run`.
_MARKED = r"""
import sys, time
def mark(stage):
    sys.stderr.write(f"MARK {stage} {time.time():.4f} {time.process_time():.4f}\n")
mark("interpreter")
import monitor.cli as cli
mark("import monitor.cli")
import monitor.isolate as isolate
def after(owner, name, stage, first=None):
    original = getattr(owner, name)
    def wrapped(*args, **kwargs):
        if first:
            mark(first)
        result = original(*args, **kwargs)
        mark(stage)
        return result
    setattr(owner, name, wrapped)
def started():
    import monitor.check as check, monitor.scheduler as scheduler
    after(scheduler.Daemon, "__init__", "daemon made (the watches in force)")
    after(scheduler, "tell_robots_ignored", "robots summary logged")
    after(check.Checker, "__init__", "checker made")
    after(scheduler.Daemon, "_start_scheduler", "timetable made, first checks started")
start_forkserver = isolate.start_forkserver
def marked_start_forkserver():
    mark("imports of `monitor run`")
    start_forkserver()
    mark("forkserver started")
    started()
isolate.start_forkserver = marked_start_forkserver
after(cli, "_config", "config read")
after(cli, "_store", "store opened")
sys.argv[0] = "monitor"
import runpy
runpy.run_module("monitor", run_name="__main__", alter_sys=True)
"""


def load() -> float:
    return round(os.getloadavg()[0], 2)


class Sources:
    """The monitors compared: {label: PYTHONPATH entry}, this checkout's first."""

    def __init__(self, rev: str | None, workdir: Path) -> None:
        self.paths = {f"this ({git_revision()})": str(BENCH.parent)}
        if rev:
            path, short = export_revision(rev, workdir)
            self.paths[f"{rev} ({short})"] = path
        base = {k: v for k, v in os.environ.items() if k != "MONITOR_CONFIG"}
        base.pop("PYTHONDONTWRITEBYTECODE", None)  # compiled once below, as pip would
        self.envs = {
            label: {
                **base,
                "PYTHONPATH": os.pathsep.join(filter(None, [path, base.get("PYTHONPATH")])),
            }
            for label, path in self.paths.items()
        }
        for path in self.paths.values():
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", f"{path}/monitor"], check=True
            )


# --- the daemon --------------------------------------------------------------------------------


def daemon_start(site: Site, env: dict[str, str], config: Path, log: Path) -> dict[str, Any]:
    import psutil

    site.call("POST", "/__reset")
    cmd = [sys.executable, "-c", _MARKED, "--config", str(config), "run", "--no-web"]
    spawned = time.time()
    with log.open("wb") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=log.parent)
    ps = psutil.Process(proc.pid)
    figures: dict[str, Any] = {"load": load()}
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if site.call("GET", "/__stats")["requests"]:
                figures["first_request_s"] = round(time.time() - spawned, 2)
                times = ps.cpu_times()
                figures["cpu_s"] = round(times.user + times.system, 2)
                workers = 0.0
                for child in ps.children(recursive=True):
                    try:
                        times = child.cpu_times()
                    except psutil.NoSuchProcess:
                        continue
                    workers += times.user + times.system
                figures["workers_cpu_s"] = round(workers, 2)
                figures["rss_mib"] = round(ps.memory_info().rss / 2**20, 1)
                break
            time.sleep(0.02)
        else:
            figures["note"] = f"no request within 120 s (exit {proc.poll()})"
        time.sleep(20)
        if proc.poll() is None:
            figures["steady_rss_mib"] = round(ps.memory_info().rss / 2**20, 1)
            figures["peak_rss_mib"] = _peak_rss_mib(proc.pid)
    finally:
        stop(proc, grace=60)
    text = log.read_text(errors="replace")
    lines = [x for x in text.splitlines() if not x.startswith("MARK ")]
    figures["log_lines"] = len(lines)
    figures["log_lines_naming_a_watch"] = sum(bool(re.search(r"\bs\d+\b", x)) for x in lines)
    figures["stages"] = {
        stage: [round(float(wall) - spawned, 2), round(float(cpu), 2)]
        for stage, wall, cpu in re.findall(r"^MARK (.*) (\S+) (\S+)$", text, re.M)
    }
    if "first_request_s" in figures:
        figures["stages"]["first request (at the site)"] = [
            figures["first_request_s"],
            figures["cpu_s"],
        ]
    return figures


def daemons(site: Site, sources: Sources, watches: int, rounds: int, work: Path) -> dict[str, Any]:
    lines = [f'[store]\npath = "{work / "store"}"\n', local_fetch_table(timeout=30)]
    lines += [
        f'[[watch]]\nid = "s{i}"\nurl = "{site.url(i % site.pages)}?w={i}"\n'
        'profile = "generic"\ninterval = "1h"\nrobots = false\n'
        for i in range(watches)
    ]
    config = work / "daemon.toml"
    config.write_text("\n".join(lines), encoding="utf-8")
    runs: dict[str, dict[str, list[dict[str, Any]]]] = {
        label: {"fresh": [], "restart": []} for label in sources.paths
    }
    print(f"daemon (monitor run --no-web), {watches} watches:")
    for n in range(rounds):
        for label, env in sources.envs.items():
            shutil.rmtree(work / "store", ignore_errors=True)
            for start in ("fresh", "restart"):
                if start == "restart":
                    _mark_checked(work / "store" / "index.sqlite", never=0.01)
                figures = daemon_start(site, env, config, work / f"{start}-{n}.err")
                runs[label][start].append(figures)
                short = {k: v for k, v in figures.items() if k != "stages"}
                print(f"  round {n + 1}, {label}, {start}: {short}", flush=True)
    print()
    keys = ["first_request_s", "cpu_s", "workers_cpu_s", "rss_mib", "steady_rss_mib"]
    keys += ["peak_rss_mib", "log_lines", "log_lines_naming_a_watch"]
    columns = [(label, start) for label in runs for start in ("fresh", "restart")]
    print(
        f"{'median of ' + str(rounds):<28}" + "".join(f"{lb + ' ' + st:>30}" for lb, st in columns)
    )
    for key in keys:
        cells = [_median([r.get(key) for r in runs[lb][st]]) for lb, st in columns]
        print(f"{key:<28}" + "".join(f"{c!s:>30}" for c in cells))
    print("stages, wall / CPU s from the spawn:")
    for stage in runs[next(iter(runs))]["fresh"][0]["stages"]:
        cells = []
        for lb, st in columns:
            marks = [r["stages"].get(stage) for r in runs[lb][st] if stage in r["stages"]]
            wall = _median([m[0] for m in marks])
            cpu = _median([m[1] for m in marks])
            cells.append(f"{wall} / {cpu}")
        print(f"  {stage[:26]:<26}" + "".join(f"{c:>30}" for c in cells))
    label = next(iter(runs))
    met = all(
        (_median([r.get("first_request_s", 99) for r in runs[label][st]]) or 99) <= 3
        and (_median([r.get("peak_rss_mib") or 999 for r in runs[label][st]]) or 999) < 250
        for st in ("fresh", "restart")
    )
    print(f"{label}: first request within 3 s and peak RSS under 250 MiB: {'yes' if met else 'NO'}")
    return runs


# --- commands ----------------------------------------------------------------------------------


def commands(site: Site, sources: Sources, rounds: int, work: Path) -> dict[str, Any]:
    """CPU of `--help` and of `check --once` (first, unchanged) over SMALL watches."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    keep = {site.proc.pid}
    runs: dict[str, dict[str, list[dict[str, float]]]] = {label: {} for label in sources.paths}
    print(f"commands (CPU of the process tree; check --once over {SMALL} watches):")
    for n in range(rounds * 3):
        for label, env in sources.envs.items():
            store = work / f"small-{n}"
            config = work / f"small-{n}.toml"
            lines = [f'[store]\npath = "{store}"\n', local_fetch_table(timeout=30)]
            lines += [
                f'[[watch]]\nid = "w{i}"\nurl = "{site.url(i)}"\nprofile = "generic"\n'
                for i in range(SMALL)
            ]
            config.write_text("\n".join(lines), encoding="utf-8")
            monitor = [sys.executable, "-m", "monitor"]
            cases = {
                "--help": [*monitor, "--help"],
                "check --once, first": [*monitor, "--config", str(config), "check", "--once"],
                "check --once, unchanged": [*monitor, "--config", str(config), "check", "--once"],
            }
            for case, cmd in cases.items():
                run = run_tree(cmd, env, keep, work)
                if run["returncode"] not in (0, 1):
                    raise SystemExit(f"{label} {case}: exit {run['returncode']}\n{run['stderr']}")
                runs[label].setdefault(case, []).append({"wall": run["wall"], "cpu": run["cpu"]})
            shutil.rmtree(store, ignore_errors=True)
        print(f"  round {n + 1} done (load {load()})", flush=True)
    labels = list(runs)
    print(f"{'median CPU (wall) s':<28}" + "".join(f"{lb:>30}" for lb in labels))
    for case in runs[labels[0]]:
        cells = [
            f"{_median([r['cpu'] for r in runs[lb][case]])} "
            f"({_median([r['wall'] for r in runs[lb][case]])})"
            for lb in labels
        ]
        print(f"{case:<28}" + "".join(f"{c:>30}" for c in cells))
    return runs


def _median(values: list[Any]) -> float | None:
    numbers = [v for v in values if isinstance(v, int | float)]
    return round(statistics.median(numbers), 2) if numbers else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--watches", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--monitor-rev", metavar="REV", help="also measure monitor as at REV")
    parser.add_argument("--skip-daemon", action="store_true")
    parser.add_argument("--skip-commands", action="store_true")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="monitor-startup-"))
    when = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    print(f"work directory {work}; load {load()}; {when}")
    sources = Sources(args.monitor_rev, work)
    site = Site(200, work)
    results: dict[str, Any] = {"load_at_start": load()}
    try:
        if not args.skip_commands:
            results["commands"] = commands(site, sources, args.rounds, work)
        if not args.skip_daemon:
            results["daemon"] = daemons(site, sources, args.watches, args.rounds, work)
    finally:
        site.close()
        if args.keep:
            print(f"work directory kept: {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
    results["load_at_end"] = load()
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(f"(written to {RESULTS}; load {load()})")


if __name__ == "__main__":
    main()
