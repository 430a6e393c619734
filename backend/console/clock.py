"""The times the console shows: all in one time zone (`console.timezone`, Europe/Amsterdam by
default), each with the zone's abbreviation (CET or CEST), so no dispatcher reads a UTC time
as local or compares times of two zones. The browser's script gets the same zone (the page's
`data-timezone`)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DATE_TIME = "%Y-%m-%d %H:%M"


def zone(name: str) -> ZoneInfo:
    """The zone of an IANA name; ValueError for a name this machine does not know."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


def local_time(value: datetime | None, fmt: str = DATE_TIME, *, tz: ZoneInfo) -> str:
    """`value` in `tz` as `fmt` and the zone's abbreviation; a naive value is UTC (as SQLite
    returns stored times); "-" for no time."""
    if value is None:
        return "-"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    local = value.astimezone(tz)
    return f"{local.strftime(fmt)} {local.tzname()}"
