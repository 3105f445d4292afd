"""The watches in force, known in one place.

Three sources, merged in this order, a later one winning over an earlier watch of the same id:

1. the config file's `[[watch]]` tables (the operator's);
2. the store's watches: those added or edited in the web UI (see overrides.py: a UI row
   replaces the file's watch of its id, or adds one). Imported watches (issue 24) live where
   the UI's do, and join here, in `stored_watch_rows`;
3. the statement watches the discovering listings found (see discover.py), except where one
   of the former already has their id: that is how one statement gets its own settings.

`load_watches` builds one `Watches` snapshot from them per (re)load: the daemon at start and
on SIGHUP, `monitor check` once, `monitor serve` after a save in its UI (and when the
snapshot has aged, since a daemon elsewhere keeps discovering). Everything else reads the
snapshot instead of merging again: building it validates every watch of the UI and of the
discovered statements, which cost `monitor serve` 40 % of a diff request when it was done
on every look at the config.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from monitor.config import MonitorConfig, WatchConfig
from monitor.discover import StatementWatch, statement_watches
from monitor.overrides import WatchError, validate_watch
from monitor.store import Store
from monitor.store.records import UiWatchRow

logger = logging.getLogger("monitor.watches")


@dataclass(frozen=True)
class Watches:
    """One snapshot of the watches in force; a change makes a new snapshot."""

    # The file's watches with the store's merged over them: what discovery extends.
    base: MonitorConfig
    # `base` plus the discovered statements' watches: every watch to check.
    config: MonitorConfig
    # The discovered statements' watches by id, with what their interval depends on.
    statements: Mapping[str, StatementWatch] = field(default_factory=dict)

    @property
    def watch(self) -> list[WatchConfig]:
        return self.config.watch

    def adopt(
        self, store: Store, now: datetime | None = None
    ) -> tuple[Watches, list[StatementWatch]]:
        """This snapshot plus the statements discovered since it was made (by this process
        or another), and those statements; itself when there are none."""
        fresh = statement_watches(self.base, store, now, exclude=self.statements.keys())
        if not fresh:
            return self, []
        statements = {**self.statements, **{item.watch.id: item for item in fresh}}
        config = _with(self.config, [*self.config.watch, *(item.watch for item in fresh)])
        return Watches(self.base, config, statements), fresh

    def replace(self, watch: WatchConfig) -> Watches:
        """This snapshot with `watch` in place of the watch of its id (a statement watch
        moved to its next age step)."""
        watches = [watch if w.id == watch.id else w for w in self.config.watch]
        return Watches(self.base, _with(self.config, watches), self.statements)


def load_watches(config: MonitorConfig, store: Store, discovered: bool = True) -> Watches:
    """The watches in force: `config`'s, the store's over them, and (unless `discovered` is
    false) the statement watches of its discovering listings."""
    base = merge_watches(config, stored_watch_rows(store))
    if not discovered:
        return Watches(base, base)
    found = statement_watches(base, store)
    if not found:
        return Watches(base, base)
    statements = {item.watch.id: item for item in found}
    return Watches(base, _with(base, [*base.watch, *(item.watch for item in found)]), statements)


def stored_watch_rows(store: Store) -> list[UiWatchRow]:
    """The watches the store holds over the file's, as rows of `id` and `config` (the keys
    of a `[[watch]]`): those saved in the web UI and those imported (`monitor watches
    import`, the API), which are stored the same way, so every reader of watches sees them."""
    return list(store.ui_watches())


def merge_watches(config: MonitorConfig, rows: Iterable[UiWatchRow]) -> MonitorConfig:
    """The config with the store's watches merged in. A row that no longer validates (its
    channel was removed from the file, say) is skipped with a warning: a stale UI edit
    must never keep the daemon from starting."""
    rows = list(rows)
    if not rows:  # the file's watches as they are (100,000 of them not copied again)
        return config
    watches = {watch.id: watch for watch in config.watch}
    for row in rows:
        try:
            watches[row["id"]] = validate_watch(config, {**row["config"], "id": row["id"]})
        except WatchError as err:
            logger.warning("watch %s from the web UI ignored: %s", row["id"], err)
    return _with(config, list(watches.values()))


def _with(config: MonitorConfig, watches: list[WatchConfig]) -> MonitorConfig:
    return config.model_copy(update={"watch": watches})
