"""Which monthly partitions of pings must exist and which have outlived the retention."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from backend.devices.partition_plan import (
    add_months,
    partition_month,
    plan_partitions,
    retention_cutoff,
)

NOW = datetime(2026, 12, 6, 20, 0, tzinfo=UTC)


def test_months_are_counted_across_years() -> None:
    assert add_months(date(2026, 11, 1), 2) == date(2027, 1, 1)
    assert add_months(date(2026, 1, 1), -1) == date(2025, 12, 1)
    assert add_months(date(2026, 12, 1), 0) == date(2026, 12, 1)


def test_only_this_tables_month_partitions_are_months() -> None:
    assert partition_month("pings", "pings_202612") == date(2026, 12, 1)
    assert partition_month("pings", "pings_default") is None
    assert partition_month("pings", "pings_202613") is None
    assert partition_month("pings", "pings_x_202612") is None
    assert partition_month("pings", "alerts_202612") is None


def test_the_current_month_and_the_months_ahead_are_created_when_missing() -> None:
    existing = ["pings_default", "pings_202611", "pings_202612"]

    plan = plan_partitions("pings", existing, NOW, months_ahead=3, retention_days=90)

    assert plan.create == (date(2027, 1, 1), date(2027, 2, 1), date(2027, 3, 1))
    assert plan.drop == ()


def test_a_month_is_dropped_only_once_all_of_it_is_past_the_retention() -> None:
    existing = [f"pings_2026{m:02d}" for m in range(1, 13)]

    plan = plan_partitions("pings", existing, NOW, months_ahead=0, retention_days=90)

    # Cutoff 7 September 20:00: August ended more than a day before it, September did not.
    assert plan.cutoff == NOW - timedelta(days=90)
    assert plan.drop == tuple(f"pings_2026{m:02d}" for m in range(1, 9))


def test_a_month_ending_within_a_day_of_the_cutoff_is_kept() -> None:
    # The cutoff is 1 December 12:00 UTC: November's last rows (in a database whose time zone is
    # west of UTC) may be younger than that.
    now = datetime(2026, 12, 1, 12, 0, tzinfo=UTC) + timedelta(days=30)
    plan = plan_partitions("pings", ["pings_202611"], now, months_ahead=0, retention_days=30)
    assert plan.drop == ()
    later = plan_partitions("pings", ["pings_202611"], now + timedelta(days=1), months_ahead=0,
                            retention_days=30)
    assert later.drop == ("pings_202611",)


def test_the_current_month_is_never_dropped_even_with_the_shortest_retention() -> None:
    last_moment = datetime(2026, 12, 31, 23, 59, tzinfo=UTC)
    plan = plan_partitions("pings", ["pings_202612"], last_moment, months_ahead=0,
                           retention_days=1)
    assert plan.drop == ()


def test_the_clock_is_read_in_utc() -> None:
    amsterdam = timezone(timedelta(hours=1))
    first_hour = datetime(2027, 1, 1, 0, 30, tzinfo=amsterdam)  # still 2026 in UTC
    plan = plan_partitions("pings", [], first_hour, months_ahead=0, retention_days=90)
    assert plan.create == (date(2026, 12, 1),)


def test_a_clock_without_a_time_zone_is_refused() -> None:
    with pytest.raises(ValueError, match="time-zone aware"):
        plan_partitions("pings", [], datetime(2026, 12, 6), months_ahead=3, retention_days=90)
    with pytest.raises(ValueError, match="retention_days"):
        retention_cutoff(NOW, 0)
    with pytest.raises(ValueError, match="months_ahead"):
        plan_partitions("pings", [], NOW, months_ahead=-1, retention_days=90)
