"""What the web UI and the API keep between requests: values made of the archive, each
with the data mark it was made at (`Overview.data_mark`), given back only while it holds."""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class KeptByMark(Generic[V]):
    """Values by key, each kept with the archive's data mark and, where it also depends on
    them, the snapshot of the watches (compared by identity: a save or a reload makes a new
    one). Past `size` values every one is dropped at once: distinct keys in a burst (a
    crawler's queries) cannot grow it, and the pages read often are made again at once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._kept: dict[Hashable, tuple[Any, object, V]] = {}

    def get(self, key: Hashable, mark: Any, snapshot: object = None) -> V | None:
        """The value kept for `key` while `mark` and `snapshot` are those it was made at."""
        kept = self._kept.get(key)
        if kept is None or kept[0] != mark or kept[1] is not snapshot:
            return None
        return kept[2]

    def put(self, key: Hashable, mark: Any, value: V, snapshot: object = None) -> None:
        if len(self._kept) >= self.size:
            self._kept.clear()
        self._kept[key] = (mark, snapshot, value)
