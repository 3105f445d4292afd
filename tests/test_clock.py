"""The one time module: the archive's timestamp format, written and read back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from monitor.clock import iso, now, now_iso, parse_iso


def test_iso_is_utc_milliseconds_z_and_fixed_width() -> None:
    almaty = timezone(timedelta(hours=5))
    moment = datetime(2026, 11, 25, 21, 56, 28, 480_999, tzinfo=almaty)
    assert iso(moment) == "2026-11-25T16:56:28.480Z"
    assert iso(datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)) == "2026-01-02T03:04:05.000Z"
    assert len(now_iso()) == len("2026-11-25T16:56:28.480Z") and now_iso().endswith("Z")
    assert now().tzinfo is UTC


def test_parse_iso_reads_back_what_iso_writes_and_other_offsets() -> None:
    moment = datetime(2026, 11, 25, 16, 56, 28, 480_000, tzinfo=UTC)
    assert parse_iso(iso(moment)) == moment
    assert parse_iso(" 2026-11-25T21:56:28.480+05:00\n") == moment
    assert parse_iso("2026-11-25").tzinfo is None  # no offset given: none invented
    # Text order is time order, the reason for the fixed width.
    earlier, later = iso(moment), iso(moment + timedelta(milliseconds=1))
    assert earlier < later
    with pytest.raises(ValueError):
        parse_iso("yesterday")
