"""Who this daemon is, and its leases on checks when several daemons share one archive.

Several daemons on one PostgreSQL archive claim each check (see store/schedule.py): the
claim holds a lease the claimant renews while the check runs, so only a dead daemon's
lease lapses. A daemon is named host:pid@machine; a lease held by a process that died on
this very machine is taken over at once instead of waiting for it to lapse.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import random
import socket
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

from monitor.cadence import jitter_for
from monitor.config import WatchConfig
from monitor.store import Store

logger = logging.getLogger("monitor.scheduler")


def _machine() -> str | None:
    """This kernel and PID namespace, so a lease holder's pid is known to mean a process
    here (containers share a hostname and a kernel but not pids); None off Linux."""
    try:
        with open("/proc/sys/kernel/random/boot_id", "rb") as boot:
            seed = boot.read().strip() + b":%d" % os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return hashlib.sha256(seed).hexdigest()[:8]


MACHINE = _machine()


def instance_name() -> str:
    """Names this daemon in leases and check runs: host:pid, and the machine it runs on."""
    name = f"{socket.gethostname()}:{os.getpid()}"
    return f"{name}@{MACHINE}" if MACHINE else name


def died_here(instance: str) -> bool:
    """Whether `instance` was a daemon on this machine whose process is gone."""
    name, _, machine = instance.rpartition("@")
    pid = name.rpartition(":")[2]
    if not MACHINE or machine != MACHINE or not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except OSError:  # alive, someone else's
        return False
    return False


class Leases:
    """This daemon's claims on checks of a shared archive."""

    def __init__(self, store: Store, instance: str, lease: float) -> None:
        self.store = store
        self.instance = instance
        self.lease = lease

    def claim(self, watch: WatchConfig, now: datetime) -> tuple[bool, datetime | None]:
        """Claim this slot of the watch: whether it is ours, and if not, when to look again
        (None: when next due, as usual)."""
        # A slot fires up to its jitter early; "due" allows for that, and no more, so a
        # slot another daemon has just checked is not checked again.
        early = jitter_for(watch) + 1
        claim = self.store.claim_check(watch.id, self.instance, now, early, self.lease)
        if claim.holder is not None and died_here(claim.holder):
            # Its holder was killed on this very machine (a restart after a crash, or a
            # sibling daemon): no need to wait for its lease to lapse.
            logger.info("%s: taking over from %s, which died mid-check", watch.id, claim.holder)
            self.store.release_lease(watch.id, claim.holder)
            claim = self.store.claim_check(watch.id, self.instance, now, early, self.lease)
        if claim.ok:
            return True, None
        if claim.retry_at is None:
            return False, None
        # Stand by just after the slot's holder should be done: if it died, take over.
        grace = min(watch.interval * 0.1, 30.0) + random.uniform(0, 2)
        retry = max(claim.retry_at, now) + timedelta(seconds=grace)
        return False, min(retry, now + timedelta(seconds=watch.interval))

    def release(self, watch_id: str) -> None:
        self.store.release_lease(watch_id, self.instance)

    async def keep(
        self, running: Callable[[], Iterable[str]], each_round: Callable[[], None]
    ) -> None:
        """Renew the leases of the running checks, so only a dead daemon's lapse; then
        `each_round` (the daemon adopts what other daemons discovered)."""
        while True:
            await asyncio.sleep(self.lease / 3)
            try:
                until = datetime.now(UTC) + timedelta(seconds=self.lease)
                self.store.renew_leases(self.instance, list(running()), until)
                each_round()
            except Exception:
                logger.exception("renewing leases failed")
