"""SIGHUP: the config file read again, and what changed among the watches.

The daemon keeps running on the configuration it has when the file no longer loads. Watch
and channel changes apply at once; [fetch] and [store] need a restart (the fetcher's
pools and the open database are made from them), so the running ones stay.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from monitor.config import MonitorConfig, WatchConfig, load_config
from monitor.sites import profile_catalog

logger = logging.getLogger("monitor.scheduler")


def reread(file: MonitorConfig, running: MonitorConfig) -> MonitorConfig:
    """The file `file` was loaded from, loaded again, with `running`'s [fetch] and [store].
    Raises ConfigError when it no longer loads."""
    fresh = load_config(file.source or "", known_profiles=profile_catalog())
    if fresh.fetch != running.fetch or fresh.store != running.store:
        logger.warning("reload: [fetch] and [store] changes take effect after a restart")
    return fresh.model_copy(update={"fetch": running.fetch, "store": running.store})


@dataclass(frozen=True)
class WatchChanges:
    """Watch ids added, removed and changed by a reload, each sorted."""

    added: list[str]
    removed: list[str]
    changed: list[str]

    @classmethod
    def between(cls, old: Iterable[WatchConfig], new: Iterable[WatchConfig]) -> WatchChanges:
        before = {w.id: w for w in old}
        after = {w.id: w for w in new}
        return cls(
            added=sorted(after.keys() - before.keys()),
            removed=sorted(before.keys() - after.keys()),
            changed=sorted(k for k in after.keys() & before.keys() if after[k] != before[k]),
        )
