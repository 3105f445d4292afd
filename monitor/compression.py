"""How the archive compresses its blobs: one zstd level wherever the bytes are compressed,
in the worker that read the page (isolate.py) or in the store (store/blobs.py). A leaf: a
worker imports it without the store (SQLAlchemy) behind it.

Level 3 (zstd's default): a 30 KB statement page compresses 4.2x in 0.2 ms of CPU, where
level 9 gave 4.3x for 0.8 ms, on every new version (bench/changed_bench.py)."""

from __future__ import annotations

import threading

import zstandard

LEVEL = 3

_local = threading.local()


def compress(data: bytes) -> bytes:
    """`data` zstd-compressed at the archive's level (a compressor per thread: zstd's are
    not to be shared between threads)."""
    compressor = getattr(_local, "compressor", None)
    if compressor is None:
        compressor = _local.compressor = zstandard.ZstdCompressor(level=LEVEL)
    return bytes(compressor.compress(data))
