"""Which monthly partitions of a table partitioned by time should exist, and which have outlived
the retention: a decision over partition names and the clock (`ping_retention` carries it out).

A partition named `<table>_YYYYMM` holds the rows of that calendar month (from its first day to
the next month's, in the database's time zone, as the migration created the first ones). The
months from the current one to `months_ahead` after it must exist before their rows arrive: a
row no partition takes lands in the default partition, where it stays until the retention
deletes it. A partition is dropped once its whole month lies more than a day before the
retention's cutoff (the day covers any time zone of the database), so rows are kept at least
`retention_days` and at most about a month longer.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

_MONTH = re.compile(r"_(\d{4})(\d{2})$")


def add_months(first: date, months: int) -> date:
    """The first day of the month `months` after the month of `first` (negative: before)."""
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def partition_name(table: str, first: date) -> str:
    return f"{table}_{first:%Y%m}"


def partition_month(table: str, name: str) -> date | None:
    """The month a partition of `table` holds (its first day), or None for any other name (the
    default partition, a table someone else made)."""
    if not name.startswith(table + "_"):
        return None
    match = _MONTH.search(name)
    if match is None or match.start() != len(table):
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return date(year, month, 1) if 1 <= month <= 12 else None


def retention_cutoff(now: datetime, retention_days: int) -> datetime:
    """Rows older than this are past the retention."""
    if now.tzinfo is None:
        raise ValueError("now must be time-zone aware")
    if retention_days < 1:
        raise ValueError("retention_days must be >= 1")
    return now.astimezone(UTC) - timedelta(days=retention_days)


@dataclass(frozen=True, slots=True)
class PartitionPlan:
    create: tuple[date, ...]  # first days of the months whose partitions are missing, in order
    drop: tuple[str, ...]  # partitions whose whole month lies before the cutoff, oldest first
    cutoff: datetime  # rows older than this are past the retention


def plan_partitions(table: str, existing: Iterable[str], now: datetime, *, months_ahead: int,
                    retention_days: int) -> PartitionPlan:
    """The partitions to create and to drop at `now` (time-zone aware), given the names of the
    partitions `table` has."""
    cutoff = retention_cutoff(now, retention_days)
    if months_ahead < 0:
        raise ValueError("months_ahead must be >= 0")
    months = {m: name for name in existing if (m := partition_month(table, name)) is not None}
    current = now.astimezone(UTC).date().replace(day=1)
    wanted = (add_months(current, i) for i in range(months_ahead + 1))
    expired_before = (cutoff - timedelta(days=1)).date()
    return PartitionPlan(
        create=tuple(m for m in wanted if m not in months),
        drop=tuple(months[m] for m in sorted(months) if add_months(m, 1) <= expired_before),
        cutoff=cutoff,
    )
