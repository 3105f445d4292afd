"""The labelled corpus as one list: cases.toml (written here), synthetic.toml (made by
make_synthetic.py from the shared benchmark's real pages) and real.toml (real pages of other
projects' fixtures, edited by hand as each case says). Shared by test_quality.py and
bench/quality.py, so both score exactly the same cases.
"""

from __future__ import annotations

import gzip
import tomllib
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
CASE_FILES = ("cases.toml", "synthetic.toml", "real.toml")

# The cases of cases.toml were written here and tuned to for sessions: never held out.
WRITTEN_HERE = {
    "group": "written-here",
    "source": "written for this project (tests/quality/pages)",
    "licence": "MIT (this project)",
    "heldout": False,
}


def load_cases() -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []
    for name in CASE_FILES:
        path = HERE / name
        if not path.exists():
            continue
        for case in tomllib.loads(path.read_text("utf-8"))["case"]:
            if name == "cases.toml":
                case = {**WRITTEN_HERE, **case}
            case["file"] = name
            cases.append(case)
    return cases


def read_page(path: str) -> bytes:
    """A page's bytes as served; pages of other sites are stored gzipped (.gz) to keep the
    repository small, and handed to monitor unzipped, as a fetch would."""
    data = (PAGES / path).read_bytes()
    return gzip.decompress(data) if path.endswith(".gz") else data
