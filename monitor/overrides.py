"""Watches added or edited in the web UI: what it accepts, and how it stores one.

They live in the store's `ui_watch` table rather than being written back to the TOML file:
the file is the operator's, with comments and layout a rewrite would lose, and a hardened
daemon cannot write it at all (deploy/monitor.service makes /etc read-only); the table is
transactional, shared by every daemon on one PostgreSQL archive, and records who changed
what. A UI row replaces the file's [[watch]] with the same id, or adds a watch; watches.py
merges them with the others (the daemon at start and on SIGHUP, which the UI sends itself
when it runs in the daemon). Here: what the UI accepts as a watch.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from monitor.config import MonitorConfig, WatchConfig
from monitor.sites import profile_names


class WatchError(ValueError):
    """A watch the UI cannot accept: `problems` maps a field to what is wrong with it."""

    def __init__(self, problems: dict[str, str]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{k}: {v}" for k, v in problems.items()))


def validate_watch(config: MonitorConfig, settings: dict[str, Any]) -> WatchConfig:
    """The same checks as a [[watch]] of the file: the pydantic model, then the channels
    and profile it names."""
    try:
        watch = WatchConfig.model_validate(settings)
    except ValidationError as err:
        problems: dict[str, str] = {}
        for error in err.errors():
            field = ".".join(str(part) for part in error["loc"]) or "watch"
            problems.setdefault(field, error["msg"].removeprefix("Value error, "))
        raise WatchError(problems) from None
    problems = {}
    unknown = [name for name in watch.channels if name not in config.channels]
    if unknown:
        known = ", ".join(sorted(config.channels)) or "none defined"
        problems["channels"] = f"unknown channel {unknown[0]!r} (known: {known})"
    profiles = profile_names()
    if watch.profile and watch.profile not in profiles:
        problems["profile"] = f"unknown profile {watch.profile!r} (known: {', '.join(profiles)})"
    if problems:
        raise WatchError(problems)
    return watch


def watch_settings(watch: WatchConfig) -> dict[str, Any]:
    """A watch as the keys one would write in the TOML (defaults left out)."""
    return watch.model_dump(mode="json", exclude_defaults=True, by_alias=True) | {"id": watch.id}
