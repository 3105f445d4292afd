"""Time, the archive's way: aware UTC datetimes in code, one text format in storage.

Every stored timestamp is `iso(moment)`: UTC, milliseconds, "Z", fixed width, so that
timestamps compare correctly as text on SQLite and PostgreSQL alike. `parse_iso` reads it
back (and any other ISO 8601 text: an offset, "Z", surrounding blanks). A leaf module: it
imports nothing of monitor's, so any module may use it.
"""

from __future__ import annotations

from datetime import UTC, datetime


def now() -> datetime:
    """This moment, aware, in UTC."""
    return datetime.now(UTC)


def iso(moment: datetime) -> str:
    """The one timestamp format of the archive: '2026-11-25T16:56:28.480Z'."""
    # isoformat, not strftime: a third of the cost, and every check writes two of these.
    # Its fixed width needs a year of four digits, as every timestamp here has.
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds") + "Z"


def now_iso() -> str:
    """This moment in the archive's format."""
    return iso(now())


def parse_iso(value: str) -> datetime:
    """ISO 8601 text ('2026-11-25T16:56:28.480Z', '…+05:00') -> datetime, its offset kept
    (naive when the text has none); ValueError when it is not a timestamp."""
    return datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
