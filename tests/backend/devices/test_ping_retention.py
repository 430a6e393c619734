"""The pings' upkeep on the real PostgreSQL (in a database of its own: it drops and creates the
partitions other tests share) and on SQLite: partitions made ahead, rows that landed in the
default partition moved or deleted, expired months dropped, and a step that cannot get its lock
left for the next pass."""

from __future__ import annotations

import os
import threading
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from backend.db.migrate import upgrade
from backend.devices import ping_retention
from backend.devices.models import Ping
from backend.devices.partition_plan import add_months, partition_name
from backend.devices.pings import PingRow, store_pings
from backend.settings import PingSettings
from backend.state.store import InMemoryState, LastFix, RedisState
from tests.support.db import own_postgresql
from tests.support.unreachable import unreachable_redis
from tests.support.waiting import wait_until

SETTINGS = PingSettings(retention_days=90, partitions_ahead_months=3, lock_timeout_ms=50)
# The month the migration ran in: it made the partitions of the month before it to three after.
THIS_MONTH = datetime.now(UTC).date().replace(day=1)


def _at(first: date, day: int) -> datetime:
    return datetime(first.year, first.month, day, 12, tzinfo=UTC)


def _store(engine: Engine, *times: datetime, device: str = "d1",
           received: datetime | None = None) -> None:
    with Session(engine) as session, session.begin():
        store_pings(session, [PingRow(device, t.timestamp(), (received or t).timestamp(), 51.92,
                                      4.48, 5.0, None, 80) for t in times])


def _partitions(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(text(
            "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
            "WHERE i.inhparent = 'pings'::regclass")))


def _count(engine: Engine, table: str = "pings") -> int:
    with engine.connect() as conn:
        return conn.scalar(text(f'SELECT count(*) FROM "{table}"'))


@pytest.fixture(scope="module")
def pg_engine(pg_url: str):
    name = f"{pg_url.rsplit('/', 1)[-1]}_pings_{os.getpid()}"
    with own_postgresql(pg_url, name) as url:
        engine = create_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture
def engine(pg_engine: Engine):
    """The database as the migration left it, pings emptied."""
    yield pg_engine
    with pg_engine.begin() as conn:
        conn.execute(text("TRUNCATE pings"))
    for name in _partitions(pg_engine) - {"pings_default"}:
        with pg_engine.begin() as conn:
            conn.execute(text(f'DROP TABLE "{name}"'))
    # As the migration made them: the month before this one to three after it.
    ping_retention.maintain(pg_engine, SETTINGS, _at(add_months(THIS_MONTH, -1), 15))
    ping_retention.maintain(pg_engine, SETTINGS, datetime.now(UTC))


def test_the_upkeep_names_the_partitions_as_the_migration_does(engine: Engine) -> None:
    made = {partition_name("pings", add_months(THIS_MONTH, i)) for i in range(-1, 4)}
    assert _partitions(engine) == made | {"pings_default"}

    done = ping_retention.maintain(engine, SETTINGS, datetime.now(UTC))

    assert (done.created, done.dropped, done.deleted, done.failed) == ((), (), 0, ())


def test_after_a_long_pause_months_are_made_old_ones_dropped_and_the_default_cleared(
        engine: Engine) -> None:
    later = add_months(THIS_MONTH, 14)
    now = _at(later, 11)
    _store(engine, _at(add_months(THIS_MONTH, -1), 3))  # in the migration's partitions
    _store(engine, _at(THIS_MONTH, 2))
    _store(engine, _at(later, 4), _at(later, 5), _at(later, 6))  # the default: no partition yet
    _store(engine, _at(add_months(THIS_MONTH, 6), 1))  # the default, past the retention
    _store(engine, _at(add_months(later, -1), 20))  # the default, within the retention
    assert _count(engine, "pings_default") == 5

    done = ping_retention.maintain(engine, SETTINGS, now)

    ahead = [partition_name("pings", add_months(later, i)) for i in range(4)]
    expired = sorted(partition_name("pings", add_months(THIS_MONTH, i)) for i in range(-1, 4))
    assert done.created == tuple(ahead)
    assert done.moved == 3
    assert done.dropped == tuple(expired)
    assert (done.deleted, done.failed, done.skipped) == (1, (), False)
    assert _partitions(engine) == {*ahead, "pings_default"}
    assert _count(engine, ahead[0]) == 3
    assert _count(engine, "pings_default") == 1
    with Session(engine) as session:
        kept = session.scalars(select(Ping.fix_time).order_by(Ping.fix_time)).all()
    assert kept == [_at(add_months(later, -1), 20), _at(later, 4), _at(later, 5), _at(later, 6)]

    _store(engine, _at(later, 4), _at(later, 7))  # a redelivery: the new partition has the key
    assert _count(engine, ahead[0]) == 4
    again = ping_retention.maintain(engine, SETTINGS, now)
    assert (again.created, again.dropped, again.deleted, again.failed) == ((), (), 0, ())


def _failures() -> float:
    return REGISTRY.get_sample_value("schildwacht_ping_upkeep_failures_total") or 0.0


def _hold_pings(engine: Engine):
    """A reader in the middle of a transaction on pings: a drop of a partition waits for it."""
    reader = engine.connect()
    reader.execute(text("SELECT count(*) FROM pings"))
    return reader


# Every partition the upkeep wants exists; the month before this one is past a short retention.
SHORT = PingSettings(retention_days=8, partitions_ahead_months=3, lock_timeout_ms=50)
NOW_SHORT = _at(THIS_MONTH, 20)


def test_a_drop_that_cannot_get_its_lock_is_left_for_the_next_pass(engine: Engine) -> None:
    oldest = partition_name("pings", add_months(THIS_MONTH, -1))
    failures = _failures()
    reader = _hold_pings(engine)

    done = ping_retention.maintain(engine, SHORT, NOW_SHORT)

    assert (done.failed, done.dropped) == ((oldest,), ())
    assert oldest in _partitions(engine)
    assert _failures() == failures + 1
    reader.rollback()
    reader.close()
    assert ping_retention.maintain(engine, SHORT, NOW_SHORT).dropped == (oldest,)


def test_an_insert_waits_for_a_waiting_drop_no_longer_than_its_lock_timeout(
        engine: Engine) -> None:
    settings = SHORT.model_copy(update={"lock_timeout_ms": 1_000})
    reader = _hold_pings(engine)
    upkeep = threading.Thread(target=ping_retention.maintain, args=(engine, settings, NOW_SHORT))
    upkeep.start()
    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted AND mode = "
                   "'AccessExclusiveLock' AND relation = 'pings'::regclass")
    with engine.connect() as watcher:
        wait_until(lambda: watcher.execute(waiting).scalar() == 1, timeout=10)
    insert = threading.Thread(target=_store, args=(engine, datetime.now(UTC)))
    insert.start()  # queued behind the drop's request until the drop gives up

    insert.join(10)
    upkeep.join(10)
    reader.rollback()
    reader.close()
    assert not insert.is_alive() and not upkeep.is_alive()
    assert _count(engine) == 1


def test_one_process_at_a_time_does_the_upkeep(engine: Engine) -> None:
    with engine.connect() as other:
        other.execute(text("SELECT pg_advisory_lock(:key)"),
                      {"key": ping_retention.ADVISORY_LOCK_KEY})
        try:
            assert ping_retention.maintain(engine, SETTINGS, datetime.now(UTC)).skipped
        finally:
            other.execute(text("SELECT pg_advisory_unlock(:key)"),
                          {"key": ping_retention.ADVISORY_LOCK_KEY})
    assert not ping_retention.maintain(engine, SETTINGS, datetime.now(UTC)).skipped


def test_the_default_partition_is_cleared_in_batches(engine: Engine) -> None:
    old = _at(add_months(THIS_MONTH, -6), 1)
    _store(engine, *(old + timedelta(minutes=i) for i in range(5)))

    done = ping_retention.maintain(engine, SETTINGS, datetime.now(UTC), delete_batch=2)

    assert (done.deleted, done.failed) == (5, ())
    assert _count(engine, "pings_default") == 0


def test_a_fix_dated_far_ahead_goes_once_it_was_received_past_the_retention(
        engine: Engine) -> None:
    far = datetime(2280, 1, 1, tzinfo=UTC)  # a device clock gone wrong: the default partition
    now = datetime.now(UTC)
    _store(engine, far, received=now - timedelta(days=91))
    _store(engine, far + timedelta(days=1), received=now - timedelta(days=89))

    done = ping_retention.maintain(engine, SETTINGS, now)

    assert (done.deleted, done.failed) == (1, ())
    assert _count(engine, "pings_default") == 1


def test_on_sqlite_rows_past_the_retention_are_deleted(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pings.db"
    upgrade(url)
    engine = create_engine(url)
    now = datetime(2026, 12, 6, 12, tzinfo=UTC)
    _store(engine, now - timedelta(days=91), now - timedelta(days=89), now)
    _store(engine, datetime(2280, 1, 1, tzinfo=UTC), received=now - timedelta(days=91))
    state = InMemoryState()
    state.write({"old": LastFix((now - timedelta(days=91)).timestamp(), 51.9, 4.5, None),
                 "new": LastFix(now.timestamp(), 51.9, 4.5, None)}, {})
    loop = ping_retention.PingRetentionLoop(
        SimpleNamespace(engine=engine, settings=SimpleNamespace(pings=SETTINGS), state=state),
        clock=lambda: now)

    done = loop.run_once()

    assert (done.deleted, done.forgotten) == (2, 1)
    assert state.get_last_fix("old") is None and state.get_last_fix("new") is not None

    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ping)) == 2
    engine.dispose()


def test_a_hot_state_away_is_left_for_the_next_pass(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/pings.db"
    upgrade(url)
    engine = create_engine(url)
    loop = ping_retention.PingRetentionLoop(SimpleNamespace(
        engine=engine, settings=SimpleNamespace(pings=SETTINGS),
        state=RedisState(unreachable_redis(), "sw")))

    assert loop.run_once().failed == ("hot state",)
    engine.dispose()
