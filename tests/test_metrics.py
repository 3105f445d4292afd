"""metrics.py: the Prometheus metrics are made when first asked for; what was observed before
shows in them exactly as if they had been made first (`monitor check` exports nothing and
never imports prometheus_client; the daemon and the web UI make them at their start)."""

from __future__ import annotations

import re
import subprocess
import sys

from tests.conftest import REPO

# In a fresh process (the module's state is per process): some checks (two failures among
# them), the copies waiting, three versions; the metrics made at MADE_AT ("first": before any of
# it, "last": after all of it), then the exposition, without the `_created` lines (the
# moment each metric was made).
_OBSERVE = """
import sys
from monitor import metrics

def made():
    return metrics.REGISTRY

made_at = sys.argv[1]
if made_at == "first":
    made()
metrics.want_copies_waiting()
for n, outcome in enumerate(["unchanged"] * 5 + ["changed", "problem", "problem"]):
    reason = {6: "timeout after 30s", 7: "HTTP 503"}.get(n)
    metrics.observe_check(outcome, 0.004 * n * n, reason)
metrics.set_copies_waiting(3)
metrics.set_copies_waiting(2)
for kind in ("baseline", "edited", "baseline"):
    metrics.count_change(kind)
print("prometheus_client imported before the end:", "prometheus_client" in sys.modules)
from prometheus_client import generate_latest

print(generate_latest(made()).decode())
"""


def _exposition(made_at: str) -> tuple[str, str]:
    run = subprocess.run(
        [sys.executable, "-c", _OBSERVE, made_at],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    imported, _, text = run.stdout.partition("\n")
    return imported, "\n".join(
        line for line in text.splitlines() if not re.match(r"\w+_created[{ ]", line)
    )


def test_metrics_made_late_show_what_was_observed_before() -> None:
    imported_first, first = _exposition("first")
    imported_last, last = _exposition("last")
    assert imported_first.endswith("True")
    assert imported_last.endswith("False")  # nothing asked for a metric until the end
    assert last == first
    for sample in (
        'monitor_checks_total{outcome="unchanged"} 5.0',
        'monitor_checks_total{outcome="problem"} 2.0',
        'monitor_check_failures_total{reason="timeout"} 1.0',
        'monitor_check_failures_total{reason="http_5xx"} 1.0',
        'monitor_check_seconds_bucket{le="0.01"} 2.0',
        "monitor_check_seconds_count 8.0",
        "monitor_independent_copies_waiting 2.0",
        'monitor_changes_total{kind="edited"} 1.0',
        'monitor_changes_total{kind="baseline"} 2.0',
    ):
        assert sample in first


def test_the_copies_gauge_shows_only_where_wayback_asked_for_it() -> None:
    """`monitor serve` never imports wayback.py: its /metrics has no such gauge, as before."""
    code = (
        "from monitor import metrics\n"
        "from prometheus_client import generate_latest\n"
        "print(b'independent_copies' in generate_latest(metrics.REGISTRY))\n"
        "import monitor.wayback\n"
        "print(b'independent_copies' in generate_latest(metrics.REGISTRY))\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True
    )
    assert run.stdout.split() == ["False", "True"]
