"""The device directory: everything in memory after one load; a device registered later costs one
query on its first message (OwnTracks pair included), none after; unknown ids are remembered."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest
import redis
from sqlalchemy.exc import OperationalError

from backend.cases.changes import RedisChangeCounter
from backend.cases.models import Case
from backend.devices.directory import DeviceDirectory
from backend.devices.models import Device
from tests.conftest import REDIS_URL
from tests.support.changes import FakeCounter, guarded_redis
from tests.support.db import sqlite_sessions, statements
from tests.support.waiting import wait_until


@pytest.fixture
def sessions(tmp_path: Path):
    yield from sqlite_sessions(tmp_path)


def _register(sessions, device_id: str, owntracks: tuple[str, str] | None = None) -> None:
    with sessions.begin() as s:
        case = Case(reference=f"C-{device_id}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id=device_id, case_id=case.id, role="victim",
                     owntracks_user=owntracks[0] if owntracks else None,
                     owntracks_device=owntracks[1] if owntracks else None))


def test_late_registration_costs_one_query_then_none(sessions) -> None:
    _register(sessions, "d-early", ("anna", "phone"))
    directory = DeviceDirectory(sessions)
    assert directory.load_all() == 1
    _register(sessions, "d-late", ("bea", "watch"))
    queries = statements(sessions)

    assert directory.get("d-early") is not None and queries == []
    assert directory.by_owntracks("anna", "phone").id == "d-early"
    assert queries == []
    directory.prefetch(["d-late", "d-early"])
    assert len(queries) == 1  # the device and its OwnTracks pair in one round trip
    assert directory.get("d-late").case_reference == "C-d-late"
    assert directory.by_owntracks("bea", "watch").id == "d-late"
    assert len(queries) == 1


def test_unknown_ids_are_remembered_for_a_while(sessions) -> None:
    directory = DeviceDirectory(sessions, miss_ttl_s=60)
    directory.load_all()
    queries = statements(sessions)
    assert directory.get("nobody") is None
    assert directory.get("nobody") is None
    directory.prefetch(["nobody"])
    assert len(queries) == 1


def test_made_up_owntracks_names_are_remembered_within_bounds(sessions) -> None:
    """A signed-in OwnTracks user may publish under any device name: the directory remembers
    at most `miss_max` unknown names, the newest, and forgets those whose while is over."""
    _register(sessions, "d-1", ("anna", "phone"))
    directory = DeviceDirectory(sessions, miss_ttl_s=60, miss_max=3)
    directory.load_all()
    queries = statements(sessions)
    for i in range(10):
        assert directory.by_owntracks("anna", f"x{i}") is None
    assert len(queries) == 10 and directory.remembered_unknown() == 3
    assert directory.by_owntracks("anna", "x9") is None and len(queries) == 10  # remembered
    assert directory.by_owntracks("anna", "x0") is None and len(queries) == 11  # forgotten
    assert directory.by_owntracks("anna", "phone").id == "d-1" and len(queries) == 11


def test_unknown_names_whose_while_is_over_are_forgotten(sessions) -> None:
    directory = DeviceDirectory(sessions, miss_ttl_s=1e-9)
    directory.load_all()
    for i in range(100):
        directory.by_owntracks("anna", f"x{i}")
        directory.get(f"nobody-{i}")
    assert directory.remembered_unknown() <= 1
    directory.refresh_once()  # a flood that stopped leaves nothing behind either
    assert directory.remembered_unknown() == 0


def _deactivate(sessions, device_id: str) -> None:
    with sessions.begin() as s:
        s.get(Device, device_id).active = False


def test_refresh_reloads_when_the_change_counter_moves_and_not_before(sessions) -> None:
    _register(sessions, "d-1")
    counter = FakeCounter()
    directory = DeviceDirectory(sessions, refresh_s=3600, changes=counter, check_s=0.02)
    directory.load_all()
    reloads = []
    directory.start_refresh(on_reload=lambda: reloads.append(1))
    try:
        _deactivate(sessions, "d-1")  # by another process: nothing tells this one yet
        time.sleep(0.3)
        assert directory.get("d-1").active is True and reloads == []
        counter.bump()
        wait_until(lambda: directory.get("d-1").active is False, timeout=5)
        wait_until(lambda: reloads == [1], timeout=5)
    finally:
        directory.stop_refresh()


def test_a_change_naming_its_case_reads_that_cases_devices_alone(sessions, caplog) -> None:
    """At 150,000 devices a full reload is 1-6 s of a worker's interpreter; a change through
    the API names its case, and the directory reads that case's devices again: one query."""
    for i in range(3):
        _register(sessions, f"d-{i}")
    counter = FakeCounter()
    directory = DeviceDirectory(sessions, refresh_s=3600, changes=counter)
    directory.load_all()
    directory.refresh_once()
    before = {i: directory.get(f"d-{i}") for i in range(3)}
    _deactivate(sessions, "d-1")
    _deactivate(sessions, "d-2")  # changed by hand: not named, not seen until a full reload
    counter.bump([before[1].case_id])
    queries = statements(sessions)
    caplog.set_level("INFO", logger="backend.devices.directory")
    assert directory.refresh_once() is True
    assert len(queries) == 1
    assert "cases changed: 1 devices of 1 cases read again" in caplog.text
    assert directory.get("d-1").active is False
    assert directory.get("d-0") is before[0] and directory.get("d-2").active is True
    counter.bump()  # a raise that names no case: every device
    assert directory.refresh_once() is True
    assert directory.get("d-2").active is False


def test_refresh_falls_back_to_the_period_while_the_counter_cannot_be_read(sessions) -> None:
    _register(sessions, "d-1")
    counter = FakeCounter()
    counter.broken = True
    directory = DeviceDirectory(sessions, refresh_s=0.3, changes=counter, check_s=0.02)
    directory.load_all()
    directory.start_refresh()
    try:
        _deactivate(sessions, "d-1")
        wait_until(lambda: directory.get("d-1").active is False, timeout=5)
    finally:
        directory.stop_refresh()


def test_a_change_made_while_redis_was_away_is_reloaded_once_it_answers(sessions) -> None:
    """A device deactivated while Redis does not answer: its process cannot raise the counter,
    and the directory cannot read it. Once Redis answers, the directory reloads, although the
    counter reads what it read before (real Redis, the runtime's client with its breaker);
    before, the change waited for the full reload (`refresh_s`, 5 minutes)."""
    _register(sessions, "d-1")
    client = guarded_redis(REDIS_URL)
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    counter = RedisChangeCounter(client, key)
    directory = DeviceDirectory(sessions, refresh_s=3600, changes=counter)
    try:
        directory.load_all()
        assert directory.refresh_once() is False
        client.breaker.trip(redis.ConnectionError("away"))  # Redis away
        _deactivate(sessions, "d-1")
        with pytest.raises(redis.ConnectionError):
            counter.bump()  # the process that changed it cannot tell the others
        assert directory.refresh_once() is False  # keeps what it has
        assert directory.get("d-1").active is True
        client.breaker.close()  # Redis answers again
        assert directory.refresh_once() is True
        assert directory.get("d-1").active is False
        assert directory.refresh_once() is False  # once
    finally:
        client.delete(key, f"{key}:log")
        client.close()


def test_a_reload_that_failed_is_tried_again_on_the_next_pass(sessions) -> None:
    _register(sessions, "d-1")
    counter = FakeCounter()
    database = Database(sessions)
    directory = DeviceDirectory(database, refresh_s=3600, changes=counter)
    directory.load_all()
    _deactivate(sessions, "d-1")
    counter.bump()
    database.away = True
    with pytest.raises(OperationalError):
        directory.refresh_once()
    database.away = False
    assert directory.refresh_once() is True  # the counter has not moved again since
    assert directory.get("d-1").active is False


class Database:
    """The session factory, with a switch for a database that does not answer."""

    def __init__(self, sessions) -> None:
        self._sessions = sessions
        self.away = False

    def __call__(self):
        if self.away:
            raise OperationalError("SELECT", {}, ConnectionError("database away"))
        return self._sessions()


def test_a_full_load_comes_in_chunks_and_keeps_the_entries_of_unchanged_devices(
        sessions) -> None:
    """A reload streams its rows (`LOAD_CHUNK` at a time) and leaves an unchanged device's
    entry in place, so that it frees only what changed: an alarm in the same process is never
    held up by one long fetch or by freeing the whole old directory at once."""
    from backend.devices import directory as module
    from loadtests.stack import register

    count = 2 * module.LOAD_CHUNK + 7
    ids = [f"d-{i:05d}" for i in range(count)]
    register(sessions.kw["bind"], ids, "victim")
    _register(sessions, "d-owntracks", ("anna", "phone"))
    directory = DeviceDirectory(sessions)
    assert directory.load_all() == count + 1
    before = {i: directory.get(i) for i in (ids[0], ids[-1], "d-owntracks")}
    _deactivate(sessions, ids[-1])
    with sessions.begin() as s:
        s.delete(s.get(Device, ids[0]))

    assert directory.load_all() == count
    assert directory.get("d-owntracks") is before["d-owntracks"]  # the same entry, kept
    assert directory.by_owntracks("anna", "phone").id == "d-owntracks"
    changed = directory.get(ids[-1])
    assert changed is not before[ids[-1]] and changed.active is False
    assert directory.get(ids[0]) is None  # gone with its row
    assert directory.get(ids[1]).case_reference  # every chunk read
