"""`monitor demo`: the whole pipeline, offline, in under a minute.

Starts the bundled gov.kz replica on 127.0.0.1, runs the real daemon against it as the
shipped config runs against gov.kz (three discovering listings: en, ru, kk, each statement
its own watch), quietly rewrites one sentence of a statement the way ministries do, and
waits until the alert has been delivered; then prints the stored diff. Its data and
config stay in `snapshots/demo/` for `monitor --config snapshots/demo/monitor.toml history …`.
"""

from __future__ import annotations

import asyncio
import shutil
import time
from pathlib import Path

from monitor.config import MonitorConfig, load_config
from monitor.diff import render_inline
from monitor.scheduler import Daemon
from monitor.sites import profile_catalog
from monitor.store import Store
from monitor.store.records import DeliveryWithAlertRow

DEMO_DIR = Path("snapshots/demo")
DEMO_STATEMENT = 1048252
DEMO_WATCH = f"mfa-en.en-{DEMO_STATEMENT}"
DEMO_OLD = "stands ready to provide further assistance if necessary"
DEMO_NEW = "will consider further assistance upon a formal request"

_CONFIG = """\
# Written by `monitor demo`: three discovering listings on the local gov.kz replica.
[store]
path = "{store}"

[fetch]
allow_private = true        # the replica listens on 127.0.0.1
per_host_delay = "0s"

[alerts]
confirm_delay = "1s"
failing_after = "30s"

[channels.console]
type = "log"
{watches}"""

_WATCH = """
[[watch]]
id = "mfa-{lang}"
name = "MFA of Kazakhstan (replica, {lang})"
url = "{base}/memleket/entities/mfa/press/news?lang={lang}"
profile = "govkz"
language = "{lang}"
interval = "4s"
channels = ["console"]
discover = true
options = {{ size = 8 }}
discover_schedule = ["4s"]
"""


def write_demo_config(directory: Path, base_url: str) -> Path:
    watches = "".join(_WATCH.format(lang=lang, base=base_url) for lang in ("en", "ru", "kk"))
    path = directory / "monitor.toml"
    # Absolute store path: the config works from any working directory.
    store = (directory / "store").resolve()
    path.write_text(_CONFIG.format(store=store, watches=watches), encoding="utf-8")
    return path


def run_demo(timeout: float = 60.0, directory: Path = DEMO_DIR) -> int:
    from monitor.replica import ReplicaSite

    shutil.rmtree(directory, ignore_errors=True)
    directory.mkdir(parents=True)
    with ReplicaSite() as site:
        print(f"Replica of gov.kz serving on {site.url}")
        config = load_config(write_demo_config(directory, site.url), profile_catalog())
        with Store.from_config(config.store) as store:
            ok = asyncio.run(_demo(site, config, store, timeout))
    print(f"\nData and config kept in {directory}/ — try:")
    print(f"  monitor --config {directory}/monitor.toml history {DEMO_WATCH}")
    print(f"  monitor --config {directory}/monitor.toml diff {DEMO_WATCH}")
    return 0 if ok else 1


async def _demo(site, config: MonitorConfig, store: Store, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    until = asyncio.Event()
    daemon = asyncio.create_task(Daemon(config, store, serve_web=False).run(until))
    try:
        print("Taking the first snapshot of every statement in en, ru and kk …")
        # Eight statements in three languages, each archived by its own watch.
        if not await _wait(lambda: store.version_count() >= 24, deadline):
            print("demo: the first snapshots did not arrive in time")
            return False
        print(f"Baseline stored: {store.version_count()} statement versions.")
        print(f"\nThe ministry quietly edits statement {DEMO_STATEMENT} (en):")
        print(f"  «…{DEMO_OLD}…» → «…{DEMO_NEW}…»")
        site.replace_text(DEMO_STATEMENT, "en", DEMO_OLD, DEMO_NEW)
        if not await _wait(lambda: _sent_edit(store) is not None, deadline):
            print("demo: no alert within the time limit")
            return False
        _print_diff(_sent_edit(store))
        return True
    finally:
        until.set()
        await daemon


async def _wait(condition, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.2)
    return condition()


def _sent_edit(store: Store) -> DeliveryWithAlertRow | None:
    """The delivery of the demo's "edited" alert, once a channel has sent it."""
    return next((d for d in store.deliveries(status="sent") if d["kind"] == "edited"), None)


def _print_diff(row) -> None:
    import json

    payload = json.loads(row["payload"])
    print("\nStored diff (word level):")
    for change in payload["changes"]:
        print(f"  {change['where']}: {render_inline(change['before'], change['after'])}")
