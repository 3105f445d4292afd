"""Imported by the workers' forkserver alone (`isolate._PRELOAD`), last: its import makes that
process end, when the daemon or command it serves has ended, without Python's teardown of
the modules it preloaded (trafilatura, lxml, pydantic, the site profiles: 85 M instructions
by callgrind, 20 ms of CPU, after its parent's end). The forkserver holds its parent's
standard output and error, so a caller that reads them (a script, a pipe, CI) waited for
that teardown too: it ended 0.14 s after a `check --once` on a busy machine, 7 ms now.
Nothing of the forkserver's needs it: it writes nothing, and its workers, forked from it,
end by `os._exit` (multiprocessing's) and never run this.

Never import it anywhere else: a process that does ends as soon as its `atexit` functions
registered after this one have run (those registered before it do not run).

Last of the preload, it also leaves what the preload loaded to the cyclic collector no more
(`gc.freeze`, see isolate_preload.py): the forkserver makes no garbage, and a worker forked
from it would otherwise walk all of it at each of its full collections."""

from __future__ import annotations

import atexit
import gc
import os
import sys


def _end_now(pid: int) -> None:
    if os.getpid() != pid:  # a child forked from it that ended by way of Python's exit
        return
    for stream in (sys.stdout, sys.stderr):
        if stream is not None:
            try:
                stream.flush()
            except Exception:  # its parent's streams: nothing left to tell
                continue
    os._exit(0)


atexit.register(_end_now, os.getpid())
gc.freeze()
