"""The labelled corpus through monitor's real compare stage: every substantive edit alerts and
names what changed, no noise alerts, and every stand-in page is a problem.

The corpus (see README.md here) holds pages written here in the style of each site (cases.toml),
real pages nobody here wrote with synthetic edits and injected noise (synthetic.toml, made by
make_synthetic.py) and real pages of other projects' fixtures (real.toml). Every case is
asserted. A case the code does not pass yet carries `xfail_reason`: it is an expected failure,
strictly (a case that starts passing fails the run until its mark is removed), so the score
stays visible here and `python bench/quality.py` prints the real numbers, held-out third apart.

Verdicts come from `compare_pages`, the function `monitor compare` runs, in-process (200-odd
CLI processes would take minutes); test_the_cli_gives_the_same_verdicts runs the real CLI on
one case of every group and kind.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from monitor.compare import compare_pages
from tests.conftest import monitor_cli
from tests.quality.corpus import PAGES, load_cases, read_page

HERE = Path(__file__).resolve().parent
CASES = load_cases()
EXTERNAL = [c for c in CASES if c["group"] != "written-here"]


def _compare(case: dict[str, Any]) -> dict[str, Any]:
    return compare_pages(read_page(case["old"]), read_page(case["new"]), case["url"])


@pytest.fixture(scope="module")
def verdicts() -> dict[str, dict[str, Any]]:
    # Two processes: the machines have two cores.
    with ProcessPoolExecutor(max_workers=2) as pool:
        return dict(zip((c["id"] for c in CASES), pool.map(_compare, CASES), strict=True))


def _param(case: dict[str, Any]) -> Any:
    marks = []
    if case.get("xfail_reason"):
        marks.append(pytest.mark.xfail(reason=case["xfail_reason"], strict=True))
    return pytest.param(case, marks=marks, id=case["id"])


def check_verdict(case: dict[str, Any], verdict: dict[str, Any]) -> None:
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


@pytest.mark.slow
@pytest.mark.parametrize("case", [_param(c) for c in CASES])
def test_verdict_matches_the_label(case: dict[str, Any], verdicts: dict[str, Any]) -> None:
    check_verdict(case, verdicts[case["id"]])


@pytest.mark.slow  # the whole corpus, as test_verdict_matches_the_label
def test_the_cli_gives_the_same_verdicts(tmp_path: Path, verdicts: dict[str, Any]) -> None:
    # One case of every group and kind through the real `monitor compare` command.
    chosen = {(c["group"], c["kind"]): c for c in CASES}
    for case in chosen.values():
        paths = []
        for side in ("old", "new"):
            path = tmp_path / f"{case['id']}-{side}"
            path.write_bytes(read_page(case[side]))
            paths.append(str(path))
        result = monitor_cli(None, "compare", *paths, "--url", case["url"], "--format", "json")
        assert result.returncode == 0, f"{case['id']}: {result.stderr}"
        # Through JSON, as the command prints it (tuples become lists).
        expected = json.loads(json.dumps(verdicts[case["id"]], ensure_ascii=False))
        assert json.loads(result.stdout) == expected, case["id"]


def test_every_pair_really_differs() -> None:
    # A pair whose files are equal would pass as "noise" without testing anything.
    for case in CASES:
        assert read_page(case["old"]) != read_page(case["new"]), case["id"]


def test_the_corpus_covers_every_source_and_kind() -> None:
    assert len({c["id"] for c in CASES}) == len(CASES) >= 150
    hosts = {urlsplit(c["url"]).hostname for c in CASES}
    assert {"www.gov.kz", "mid.ru", "www.state.gov", "mfa.gov.example"} <= hosts
    assert len(hosts) >= 30
    kinds = [c["kind"] for c in CASES]
    assert kinds.count("edited") >= 60 and kinds.count("unchanged") >= 40
    assert kinds.count("problem") >= 8
    for case in CASES:
        assert case["alert"] is (case["kind"] == "edited"), case["id"]
        assert case["kind"] != "edited" or case.get("fragments"), case["id"]


def test_external_cases_say_where_they_come_from_and_a_third_is_held_out() -> None:
    for case in EXTERNAL:
        assert case["source"] and case["licence"] and case["language"], case["id"]
        # The rule README.md states: held out iff sha256(id) is divisible by 3.
        digest = int(hashlib.sha256(case["id"].encode()).hexdigest(), 16)
        assert case["heldout"] is (digest % 3 == 0), case["id"]
    share = sum(c["heldout"] for c in EXTERNAL) / len(EXTERNAL)
    assert 0.25 < share < 0.42, share
    assert not any(c["heldout"] for c in CASES if c["group"] == "written-here")


def test_every_page_file_is_used() -> None:
    used = {c[side] for c in CASES for side in ("old", "new")}
    on_disk = {str(p.relative_to(PAGES)) for p in PAGES.rglob("*") if p.is_file()}
    # listing.html is read by tests/test_sites.py, not as a before/after pair.
    assert on_disk - used == {"midru/listing.html"}
    assert used <= on_disk


@pytest.mark.slow
def test_the_synthetic_cases_are_what_the_generator_makes() -> None:
    # Deterministic generator, committed output: a re-run must reproduce every file and case.
    benchmark = HERE.parent.parent.parent / "shared" / "benchmarks" / "article-extraction"
    if not benchmark.is_dir():
        pytest.skip(f"the shared benchmark is not at {benchmark}")
    result = subprocess.run(
        [sys.executable, str(HERE / "make_synthetic.py"), "--check", "--benchmark", benchmark],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
