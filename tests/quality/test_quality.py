"""The labelled corpus through the real `monitor compare … --format json`: every substantive
edit alerts and names what changed, no noise alerts, and every stand-in page is a problem.

The corpus (cases.toml + pages/) is hand-written in the style of each site: gov.kz API
answers, mid.ru and state.gov statement pages following their real markup, and generic
ministry pages. `python bench/quality.py` prints the same verdicts with precision and recall.
"""

from __future__ import annotations

import json
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from tests.conftest import monitor_cli

HERE = Path(__file__).resolve().parent
PAGES = HERE / "pages"
CASES: list[dict[str, Any]] = tomllib.loads((HERE / "cases.toml").read_text("utf-8"))["case"]


def _compare(case: dict[str, Any]) -> dict[str, Any]:
    result = monitor_cli(
        None,
        "compare",
        str(PAGES / case["old"]),
        str(PAGES / case["new"]),
        "--url",
        case["url"],
        "--format",
        "json",
    )
    assert result.returncode == 0, f"{case['id']}: {result.stderr}"
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[str, Any]]:
    # One CLI process per pair, two at a time (the machines have two cores).
    with ThreadPoolExecutor(max_workers=2) as pool:
        return dict(zip((c["id"] for c in CASES), pool.map(_compare, CASES), strict=True))


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_verdict_matches_the_label(case: dict[str, Any], verdicts: dict[str, Any]) -> None:
    verdict = verdicts[case["id"]]
    context = f"{case['id']} ({case['why']}): got {verdict['kind']}, {verdict['summary']!r}"
    assert verdict["alert"] is case["alert"], context
    assert verdict["kind"] == case["kind"], context
    if case["kind"] == "edited":
        assert 0 < verdict["score"] <= 1, context
    else:
        assert verdict["score"] == 0 and verdict["removed"] == verdict["added"] == [], context
    # A moved paragraph removes and adds nothing; its summary quotes it.
    named = [*verdict["removed"], *verdict["added"], verdict["summary"]]
    for fragment in case.get("fragments", []):
        assert any(fragment in text for text in named), f"{context}: {fragment!r} not named"


def test_every_pair_really_differs() -> None:
    # A pair whose files are equal would pass as "noise" without testing anything.
    for case in CASES:
        old, new = (PAGES / case["old"]).read_bytes(), (PAGES / case["new"]).read_bytes()
        assert old != new, case["id"]


def test_the_corpus_covers_every_source_and_kind() -> None:
    assert len({c["id"] for c in CASES}) == len(CASES) >= 30
    hosts = {urlsplit(c["url"]).hostname for c in CASES}
    assert {"www.gov.kz", "mid.ru", "www.state.gov", "mfa.gov.example"} <= hosts
    kinds = [c["kind"] for c in CASES]
    assert kinds.count("edited") >= 10 and kinds.count("unchanged") >= 10
    assert kinds.count("problem") >= 8
    for case in CASES:
        assert case["alert"] is (case["kind"] == "edited"), case["id"]
        assert case["kind"] != "edited" or case.get("fragments"), case["id"]


def test_every_page_file_is_used() -> None:
    used = {c[side] for c in CASES for side in ("old", "new")}
    on_disk = {str(p.relative_to(PAGES)) for p in PAGES.rglob("*") if p.is_file()}
    # listing.html is read by tests/test_sites.py, not as a before/after pair.
    assert on_disk - used == {"midru/listing.html"}
    assert used <= on_disk
