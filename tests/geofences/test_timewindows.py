"""Weekly time windows in Europe/Amsterdam local time, across midnight and DST."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from geofences import InvalidField, TimeWindow
from geofences.timewindows import windows_allow

AMS = ZoneInfo("Europe/Amsterdam")


def ts(*args) -> float:
    return datetime(*args, tzinfo=AMS).timestamp()


def test_weekday_window():
    w = (TimeWindow.parse("Mon-Fri 08:00-18:00"),)
    assert windows_allow(w, ts(2026, 3, 2, 8, 0), AMS)  # Monday
    assert not windows_allow(w, ts(2026, 3, 2, 18, 0), AMS)
    assert not windows_allow(w, ts(2026, 3, 7, 12, 0), AMS)  # Saturday


def test_overnight_window_belongs_to_its_start_day():
    w = (TimeWindow.parse("Fri 22:00-06:00"),)
    assert windows_allow(w, ts(2026, 3, 6, 23, 0), AMS)  # Friday night
    assert windows_allow(w, ts(2026, 3, 7, 5, 59), AMS)  # Saturday early
    assert not windows_allow(w, ts(2026, 3, 7, 23, 0), AMS)


def test_local_time_across_daylight_saving():
    w = (TimeWindow.parse("Sun 08:00-09:00"),)
    # 29 March 2026 is the switch to summer time: 08:30 local is 06:30 UTC, not 07:30.
    assert windows_allow(w, ts(2026, 3, 29, 8, 30), AMS)
    assert not windows_allow(w, ts(2026, 3, 29, 9, 30), AMS)


def test_bad_windows():
    for text in (
        "Mon-Fri 8-18",
        "Xyz 08:00-09:00",
        "Mon 08:00-08:00",
        "Mon 25:00-26:00",
    ):
        with pytest.raises(InvalidField):
            TimeWindow.parse(text)
