"""The monitor a bench script measures: this checkout's, or with `--monitor-src DIR` the one in
DIR (a `git archive REV monitor | tar -x -C DIR` export, to compare revisions). Imported
before `monitor` is: it puts bench/, the checkout and that monitor first on `sys.path`.

    BENCH = Path(__file__).resolve().parent
    sys.path.insert(0, str(BENCH))
    from monitor_source import REPO
"""

from __future__ import annotations

import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
MONITOR_SRC = str(REPO)
if "--monitor-src" in sys.argv:
    MONITOR_SRC = sys.argv[sys.argv.index("--monitor-src") + 1]
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(REPO))
sys.path.insert(0, MONITOR_SRC)
