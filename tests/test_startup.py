"""What start-up costs: modules that only a parsed page needs are not imported before one is."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import REPO

# A fresh interpreter, as `monitor check --once` and `monitor run` start: the commands'
# modules and every site profile (the CLI lists them in its help, a check picks one per
# watch), but no page parsed yet — a cycle where every page answers 304 never parses one.
_SCRIPT = """
import sys

import monitor.check, monitor.cli, monitor.scheduler
import pytest

from monitor.compare import _as_result
from monitor.extract import Target
from monitor.sites import get_profile, profile_names

for name in profile_names():
    get_profile(name, "https://mfa.gov.example/en/press/news/1")
print(sorted(m for m in ("bs4", "soupsieve") if m in sys.modules))

url = "https://mfa.gov.example/en/press/news/1"
html = b"<html><body><h1>Statement</h1><p>The Ministry notes that it agrees.</p></body></html>"
[statement] = get_profile("generic", url).extract(_as_result(html, url), Target(url)).statements
print(statement.paragraphs)
"""


@pytest.mark.process
def test_bs4_is_imported_only_when_a_page_is_parsed() -> None:
    run = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, cwd=REPO, check=True
    )
    before_parsing, paragraphs = run.stdout.splitlines()
    assert before_parsing == "[]"
    assert paragraphs == "('The Ministry notes that it agrees.',)"
