"""Upkeep of the stored fixes: monthly partitions made ahead of time, and fixes deleted once
they are past the retention (`PingSettings`).

Where victims and offenders were is the most sensitive data Schildwacht holds: it is kept
`pings.retention_days`, no longer. On PostgreSQL `pings` is partitioned by month; one pass
(`maintain`) carries out `plan_partitions`:

- creates the partitions of the current month and the next `partitions_ahead_months`. Rows of
  such a month that already landed in the default partition (the upkeep did not run in time)
  are moved into the new partition in the same transaction;
- drops the partitions whose whole month is past the retention, and deletes the rows past it
  from the default partition (fixes from before the first partition, from a month the upkeep
  missed, and fixes a device's clock dated beyond the partitions made ahead: those go once they
  were received longer ago than the retention; one dated within them, with its month's
  partition, at most `partitions_ahead_months` later);
- and the loop has the hot state forget the last position of every device whose newest fix is
  past the retention (`StateStore.forget_fixes_before`).

Creating and dropping a partition lock `pings` briefly; each step waits at most
`lock_timeout_ms` for its lock and, when it does not get it, is left for the next pass, so the
ingest workers' inserts are never held up for longer. One process does the upkeep at a time
(an advisory lock); the loops run it every `maintenance_interval_s`, the first time at start.
On SQLite (the demo) there are no partitions: the rows past the retention (by their time or by
when they were received) are deleted.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

import redis
from sqlalchemy import Connection, Engine, delete, or_, text
from sqlalchemy.exc import DBAPIError

from backend.devices.models import Ping
from backend.devices.partition_plan import (
    add_months,
    partition_name,
    plan_partitions,
    retention_cutoff,
)
from backend.metrics import PING_UPKEEP_FAILURES
from backend.periodic import Periodic
from backend.settings import PingSettings

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

TABLE = "pings"
DEFAULT_PARTITION = f"{TABLE}_default"
ADVISORY_LOCK_KEY = 0x5C41D_0007
# Rows past the retention deleted from the default partition per transaction: each well within
# the statement timeout, however many a long pause of the upkeep left there.
DELETE_BATCH = 10_000


@dataclass(frozen=True, slots=True)
class Upkeep:
    """What one pass did."""

    created: tuple[str, ...] = ()
    moved: int = 0  # rows moved from the default partition into a partition created
    dropped: tuple[str, ...] = ()
    deleted: int = 0  # rows past the retention deleted (default partition; SQLite: the table)
    failed: tuple[str, ...] = ()  # steps left for the next pass
    skipped: bool = False  # another process was doing the upkeep
    forgotten: int = 0  # devices whose last position the hot state forgot (the loop)


def utc_now() -> datetime:
    return datetime.now(UTC)


def maintain(engine: Engine, settings: PingSettings, now: datetime, *,
             delete_batch: int = DELETE_BATCH) -> Upkeep:
    """One pass of the upkeep at `now` (see the module's docstring); a database that cannot be
    reached raises, for the loop to log and try again at its next pass."""
    if engine.dialect.name != "postgresql":
        with engine.begin() as conn:
            cutoff = retention_cutoff(now, settings.retention_days)
            deleted = conn.execute(delete(Ping).where(
                or_(Ping.fix_time < cutoff, Ping.received_at < cutoff))).rowcount
        return Upkeep(deleted=deleted)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as lock:
        if not lock.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": ADVISORY_LOCK_KEY}):
            return Upkeep(skipped=True)
        try:
            return _maintain_partitions(engine, settings, now, delete_batch)
        finally:
            lock.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": ADVISORY_LOCK_KEY})


def _maintain_partitions(engine: Engine, settings: PingSettings, now: datetime,
                         delete_batch: int) -> Upkeep:
    with engine.connect() as conn:
        existing = list(conn.scalars(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = CAST(:table AS regclass)"), {"table": TABLE}))
    plan = plan_partitions(TABLE, existing, now, months_ahead=settings.partitions_ahead_months,
                           retention_days=settings.retention_days)
    has_default = DEFAULT_PARTITION in existing
    created, dropped, failed, moved, deleted = [], [], [], 0, 0
    for first in plan.create:
        name = partition_name(TABLE, first)
        rows = _step(engine, settings, name, failed,
                     lambda conn, first=first, name=name: _create(conn, first, name, has_default))
        if rows is not None:
            created.append(name)
            moved += rows
            log.info("ping partition created name=%s moved_from_default=%d", name, rows)
    for name in plan.drop:
        if _step(engine, settings, name, failed,
                 lambda conn, name=name: _drop(conn, name)) is not None:
            dropped.append(name)
            log.info("ping partition dropped name=%s retention_days=%d", name,
                     settings.retention_days)
    if has_default:
        # In transactions of `delete_batch` rows: one that finds fewer has found them all.
        while (rows := _step(engine, settings, DEFAULT_PARTITION, failed, lambda conn: (
                _delete_expired(conn, plan.cutoff, delete_batch)))) is not None:
            deleted += rows
            if rows < delete_batch:
                break
        if deleted:
            log.info("pings past retention deleted from %s rows=%d", DEFAULT_PARTITION, deleted)
    return Upkeep(tuple(created), moved, tuple(dropped), deleted, tuple(failed))


def _step(engine: Engine, settings: PingSettings, name: str, failed: list[str],
          work: Callable[[Connection], int]) -> int | None:
    """Run one step in a transaction of its own that waits at most `lock_timeout_ms` for a
    lock; returns its count of rows, or None when it failed: logged, counted and left for the
    next pass."""
    try:
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = {int(settings.lock_timeout_ms)}"))
            return work(conn)
    except DBAPIError as exc:
        failed.append(name)
        PING_UPKEEP_FAILURES.inc()
        log.warning("ping upkeep step failed name=%s error=%s: left for the next pass", name,
                    type(exc.orig).__name__)
        return None


def _create(conn: Connection, first: date, name: str, has_default: bool) -> int:
    """Create the month's partition; rows of that month in the default partition move into it
    first (else attaching it would fail: they would be in the wrong partition). Returns the
    number of rows moved."""
    end = add_months(first, 1)
    conn.execute(text(f'CREATE TABLE "{name}" (LIKE {TABLE} INCLUDING ALL)'))
    moved = 0
    if has_default:
        moved = conn.execute(text(
            f'WITH moved AS (DELETE FROM "{DEFAULT_PARTITION}" WHERE fix_time >= :start '
            f'AND fix_time < :end RETURNING *) INSERT INTO "{name}" SELECT * FROM moved'),
            {"start": first, "end": end}).rowcount
    conn.execute(text(  # dates from `plan_partitions`, not from input
        f"ALTER TABLE {TABLE} ATTACH PARTITION \"{name}\" FOR VALUES FROM ('{first}') TO "
        f"('{end}')"))
    return moved


def _delete_expired(conn: Connection, cutoff: datetime, batch: int) -> int:
    return conn.execute(text(
        f'DELETE FROM "{DEFAULT_PARTITION}" WHERE ctid IN (SELECT ctid FROM '
        f'"{DEFAULT_PARTITION}" WHERE fix_time < :cutoff OR received_at < :cutoff '
        f'LIMIT :batch)'),
        {"cutoff": cutoff, "batch": batch}).rowcount


def _drop(conn: Connection, name: str) -> int:
    conn.execute(text(f'DROP TABLE "{name}"'))
    return 0


class PingRetentionLoop(Periodic):
    name = "ping-retention"

    def __init__(self, rt: Runtime, clock=utc_now) -> None:
        self.rt = rt
        self.clock = clock
        self.interval_s = rt.settings.pings.maintenance_interval_s

    def run_once(self, now: datetime | None = None) -> Upkeep:
        now = now or self.clock()
        settings = self.rt.settings.pings
        done = maintain(self.rt.engine, settings, now)
        if done.skipped:
            return done
        cutoff = retention_cutoff(now, settings.retention_days).timestamp()
        try:
            forgotten = self.rt.state.forget_fixes_before(cutoff)
        except redis.RedisError as exc:
            PING_UPKEEP_FAILURES.inc()
            log.warning("hot state not cleared of positions past the retention (%s): left for "
                        "the next pass", type(exc).__name__)
            return replace(done, failed=(*done.failed, "hot state"))
        if forgotten:
            log.info("hot state forgot the last position of devices=%d past the retention",
                     forgotten)
        return replace(done, forgotten=forgotten)
