"""CPU instructions of an unchanged cycle: `monitor check --once` against the bare floor.

    python bench/instructions.py [--pages 1000]

Time on a shared two-core machine drifts ±15 % between minutes, more than most changes
worth measuring; the number of instructions a process executes does not (two runs agree
within 0.1 %). This counts them with valgrind (`apt-get install valgrind`), about 50 times
slower than a plain run, so 1,000 pages take a few minutes:

- the whole `monitor check --once` process over N unchanged pages (all 304s), start-up
  included, and the whole `bench/floor.py` process doing the same conditional GETs;
- the floor's cost per request (N requests less none), and monitor's per check beyond its
  start-up (N checks less a run over one watch, whose config and store are the same size
  but for the watch list).

It prints the figures and the ratio monitor / floor, and writes them to
`bench/results/instructions.json`. Instructions are not time (a cache miss costs more than
an add), but for the same work on the same machine they move together.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
from run import CONCURRENCY, Site, local_fetch_table  # noqa: E402  (bench/ is not a package)

REPO = BENCH.parent


def instructions(cmd: list[str], env: dict[str, str]) -> int:
    """Instructions the command's process executed (valgrind's callgrind, no output file)."""
    run = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *cmd],
        capture_output=True,
        text=True,
        env=env,
    )
    found = re.search(r"Collected : (\d+)", run.stderr)
    if run.returncode != 0 or found is None:
        raise SystemExit(f"{' '.join(cmd)} failed under valgrind:\n{run.stderr[-2000:]}")
    return int(found.group(1))


def config_for(site: Site, store: Path, watches: int, path: Path) -> Path:
    lines = [f'[store]\npath = "{store}"\n', local_fetch_table(timeout=30)]
    lines.append('[alerts]\nconfirm_delay = "0s"\n')
    lines += [
        f'[[watch]]\nid = "p{i}"\nurl = "{site.url(i)}"\nprofile = "generic"\n'
        for i in range(watches)
    ]
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pages", type=int, default=1000)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("instructions.py needs valgrind: apt-get install valgrind")
    # As bench/run.py: bytecode compiled once, so no process counts compiling monitor.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "monitor")], check=True)
    n = args.pages
    with tempfile.TemporaryDirectory(prefix="monitor-instr-") as tmp:
        work = Path(tmp)
        site = Site(n, work)
        try:
            store = work / "store"
            every = config_for(site, store, n, work / "all.toml")
            one = config_for(site, store, 1, work / "one.toml")
            check = [sys.executable, "-m", "monitor", "--config"]
            # The first cycle stores every page; the measured ones are all 304s.
            subprocess.run(
                [*check, str(every), "check", "--once"],
                env=env,
                check=True,
                capture_output=True,
                cwd=REPO,
            )
            etags = work / "etags.json"
            etags.write_text(json.dumps(site.call("GET", "/__etags")))
            floor = [sys.executable, str(BENCH / "floor.py"), "--base", site.base]
            floor += ["--etags", str(etags), "--concurrency", str(CONCURRENCY), "--pages"]
            print(f"counting instructions over {n} unchanged pages (a few minutes)...")
            counts = {
                "monitor": instructions([*check, str(every), "check", "--once"], env),
                "monitor_one_watch": instructions([*check, str(one), "check", "--once"], env),
                "floor": instructions([*floor, str(n)], env),
                "floor_no_request": instructions([*floor, "0"], env),
            }
        finally:
            site.close()
    results = {
        "pages": n,
        "instructions": counts,
        "monitor_per_check": (counts["monitor"] - counts["monitor_one_watch"]) / (n - 1),
        "floor_per_request": (counts["floor"] - counts["floor_no_request"]) / n,
        "monitor_x_floor": counts["monitor"] / counts["floor"],
    }
    print(f"monitor check --once, whole process: {counts['monitor'] / 1e9:.2f} G instructions")
    print(f"floor, whole process:                {counts['floor'] / 1e9:.2f} G instructions")
    print(f"monitor / floor:                     {results['monitor_x_floor']:.2f}x")
    print(f"monitor per unchanged check (beyond start-up): {results['monitor_per_check']:,.0f}")
    print(f"floor per conditional GET:                     {results['floor_per_request']:,.0f}")
    out = BENCH / "results" / "instructions.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
