"""Times on the console: one zone, said so, whatever the season or the database."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from backend.console.clock import local_time, zone
from backend.settings import ConsoleSettings

AMSTERDAM = zone("Europe/Amsterdam")


def test_winter_and_summer_times_carry_their_zone() -> None:
    winter = datetime(2026, 12, 6, 0, 20, tzinfo=UTC)
    assert local_time(winter, tz=AMSTERDAM) == "2026-12-06 01:20 CET"
    summer = datetime(2026, 7, 6, 0, 20, 5, tzinfo=UTC)
    assert local_time(summer, "%H:%M:%S", tz=AMSTERDAM) == "02:20:05 CEST"


def test_a_naive_time_is_utc_and_no_time_is_a_dash() -> None:
    """SQLite returns stored times without their zone; they were stored in UTC."""
    assert local_time(datetime(2026, 12, 6, 23, 30), tz=AMSTERDAM) == "2026-12-07 00:30 CET"
    assert local_time(None, tz=AMSTERDAM) == "-"


def test_an_unknown_zone_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="unknown time zone 'Europe/Rotterdam'"):
        ConsoleSettings(timezone="Europe/Rotterdam")
    assert ConsoleSettings().timezone == "Europe/Amsterdam"
