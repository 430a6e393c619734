"""Weekly time windows (e.g. Mon-Fri 08:00-18:00 local time) during which a measure applies."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from geofences.errors import InvalidField, Problem

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_HHMM = re.compile(r"^([01]\d|2[0-4]):([0-5]\d)$")
_SHORT = re.compile(
    r"^\s*([A-Za-z]{3})(?:\s*-\s*([A-Za-z]{3}))?\s+(\d\d:\d\d)\s*-\s*(\d\d:\d\d)\s*$"
)


def _minute(text: str, path: str) -> int:
    m = _HHMM.match(text) if isinstance(text, str) else None
    if m is None:
        raise InvalidField(
            [Problem("invalid_field", path, "expected HH:MM")]
        )
    value = int(m.group(1)) * 60 + int(m.group(2))
    if value > 1440:
        raise InvalidField(
            [Problem("invalid_field", path, "a time is at most 24:00")]
        )
    return value


def _day(name: str, path: str) -> int:
    key = name.lower()[:3] if isinstance(name, str) else ""
    if key not in DAY_NAMES:
        raise InvalidField([Problem(
            "invalid_field", path, "unknown day: expected mon, tue, wed, thu, fri, sat or sun"
        )])
    return DAY_NAMES.index(key)


@dataclass(frozen=True)
class TimeWindow:
    """A weekly window: on `days` (0 = Monday) from `start_minute` to `end_minute` local time.

    A window whose end is not after its start runs overnight: "fri 22:00-06:00" covers Friday
    22:00 to Saturday 06:00 (the day is the day the window starts).
    """

    days: frozenset[int]
    start_minute: int
    end_minute: int

    def __post_init__(self) -> None:
        if not self.days or any(d not in range(7) for d in self.days):
            raise InvalidField(
                [Problem("invalid_field", "days", "days must be 0..6, at least one")]
            )
        if not (0 <= self.start_minute < 1440 and 0 <= self.end_minute <= 1440):
            raise InvalidField(
                [Problem("invalid_field", "start", "times must lie within a day")]
            )
        if self.start_minute == self.end_minute:
            raise InvalidField(
                [Problem("invalid_field", "end", "window of zero length")]
            )

    @staticmethod
    def parse(text: str) -> TimeWindow:
        """Parse "Mon-Fri 08:00-18:00" or "Sat 22:00-06:00"."""
        m = _SHORT.match(text) if isinstance(text, str) else None
        if m is None:
            raise InvalidField(
                [
                    Problem(
                        "invalid_field",
                        "time_windows",
                        "expected 'Mon-Fri 08:00-18:00'",
                    )
                ]
            )
        first = _day(m.group(1), "time_windows")
        last = _day(m.group(2), "time_windows") if m.group(2) else first
        days = {(first + i) % 7 for i in range(((last - first) % 7) + 1)}
        return TimeWindow(
            frozenset(days), _minute(m.group(3), "start"), _minute(m.group(4), "end")
        )

    @staticmethod
    def from_dict(data: dict, path: str = "time_windows") -> TimeWindow:
        if not isinstance(data, dict):
            raise InvalidField([Problem("invalid_field", path, "expected an object")])
        days = data.get("days")
        if not isinstance(days, list) or not days:
            raise InvalidField(
                [
                    Problem(
                        "invalid_field", f"{path}.days", "expected a list of day names"
                    )
                ]
            )
        return TimeWindow(
            frozenset(_day(d, f"{path}.days") for d in days),
            _minute(data.get("start"), f"{path}.start"),
            _minute(data.get("end"), f"{path}.end"),
        )

    def as_dict(self) -> dict:
        def hhmm(v: int) -> str:
            return f"{v // 60:02d}:{v % 60:02d}"

        return {
            "days": [DAY_NAMES[d] for d in sorted(self.days)],
            "start": hhmm(self.start_minute),
            "end": hhmm(self.end_minute),
        }

    def contains(self, weekday: int, minute: float) -> bool:
        """Whether local `weekday` (0 = Monday) and `minute` of the day fall in this window."""
        if self.start_minute < self.end_minute:
            return (
                weekday in self.days and self.start_minute <= minute < self.end_minute
            )
        return (weekday in self.days and minute >= self.start_minute) or (
            (weekday - 1) % 7 in self.days and minute < self.end_minute
        )


def windows_allow(windows: Iterable[TimeWindow], tst: float, tz: ZoneInfo) -> bool:
    """True when no windows are set, or `tst` falls in at least one of them (local time)."""
    windows = tuple(windows)
    if not windows:
        return True
    local = datetime.fromtimestamp(tst, tz)
    minute = local.hour * 60 + local.minute + local.second / 60.0
    weekday = local.weekday()
    return any(w.contains(weekday, minute) for w in windows)
