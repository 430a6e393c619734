"""Case snapshots: one query per miss, every case up front (a query per `LOAD_CHUNK` cases),
and freshness by a change counter (kept until it moves; only the cases it names when it names
them) or, without a readable counter, by age."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from backend.cases.models import Case, CaseContact
from backend.cases.changes import EVERYTHING, NOTHING
from backend.cases.snapshots import CaseSnapshots, SnapshotWatch
from backend.devices.models import Device
from tests.support.changes import FakeCounter as Counter
from tests.support.db import sqlite_sessions, statements


@pytest.fixture
def sessions(tmp_path: Path):
    yield from sqlite_sessions(tmp_path)


def _case(sessions, reference: str) -> uuid.UUID:
    with sessions.begin() as s:
        case = Case(reference=reference, home_police_unit="RE07", home_vr_code="VR17")
        s.add(case)
        s.flush()
        s.add_all([
            Device(id=f"{reference}-v", case_id=case.id, role="victim"),
            Device(id=f"{reference}-o", case_id=case.id, role="offender"),
            CaseContact(case_id=case.id, organisation="veilig_thuis", name="Desk",
                        phone="+31201234567"),
        ])
        return case.id


def test_a_snapshot_is_one_query_and_carries_the_case(sessions) -> None:
    case_id = _case(sessions, "R-1")
    snapshots = CaseSnapshots()
    queries = statements(sessions)
    with sessions() as s:
        snap = snapshots.get(s, case_id)
        again = snapshots.get(s, case_id)
    assert len(queries) == 1 and again is snap
    assert snap.device_roles == {"R-1-v": "victim", "R-1-o": "offender"}
    assert snap.facts.victim_device_ids == ("R-1-v",)
    assert [c["organisation"] for c in snap.context["contacts"]] == ["veilig_thuis"]
    assert snap.home_vr_code == "VR17"


def test_load_all_reads_every_case_a_chunk_per_query(sessions) -> None:
    ids = [_case(sessions, f"R-{i}") for i in range(5)]
    snapshots = CaseSnapshots()
    queries = statements(sessions)
    with sessions() as s:
        assert snapshots.load_all(s) == 5
        assert all(snapshots.get(s, i) is not None for i in ids)
    assert len(queries) == 2  # the one chunk, and the query that finds no more


def test_a_full_load_goes_a_chunk_at_a_time_and_drops_deleted_cases(sessions) -> None:
    """Cases come `LOAD_CHUNK` at a time, each chunk freed before the next (an alarm in the
    same process is not held up by one long read or free); a case deleted since the last
    load loses its snapshot."""
    from backend.cases import snapshots as module
    from loadtests.stack import register

    count = 2 * module.LOAD_CHUNK + 3
    case_of = register(sessions.kw["bind"], [f"dev-{i:05d}" for i in range(count)], "victim")
    snapshots = CaseSnapshots()
    queries = statements(sessions)
    with sessions() as s:
        assert snapshots.load_all(s) == count
    assert len(queries) == 4  # three chunks, and the query that finds no more
    deleted = case_of.pop("dev-00007")
    with sessions.begin() as s:
        s.delete(s.get(Device, "dev-00007"))
        s.delete(s.get(Case, deleted))
    queries.clear()
    with sessions() as s:
        assert snapshots.load_all(s) == count - 1
        assert all(snapshots.get(s, c).device_roles for c in case_of.values())
        assert queries[4:] == []  # every case is in memory
    assert deleted not in snapshots._cache


def test_without_a_counter_a_snapshot_ages_out(sessions) -> None:
    case_id = _case(sessions, "R-1")
    snapshots = CaseSnapshots(ttl_s=0.1)
    queries = statements(sessions)
    with sessions() as s:
        snapshots.get(s, case_id)
        time.sleep(0.15)
        snapshots.get(s, case_id)
    assert len(queries) == 2


def test_with_a_counter_a_snapshot_lives_until_the_counter_moves(sessions) -> None:
    case_id = _case(sessions, "R-1")
    counter = Counter()
    snapshots = CaseSnapshots(ttl_s=0.1, changes=counter)
    queries = statements(sessions)
    with sessions() as s:
        assert snapshots.watch() == NOTHING
        snapshots.get(s, case_id)
        time.sleep(0.15)
        assert snapshots.watch() == NOTHING  # confirmed unchanged: still good past the TTL
        snapshots.get(s, case_id)
        assert len(queries) == 1
        counter.bump()  # another process changed a case
        assert snapshots.watch() == EVERYTHING
        snapshots.get(s, case_id)
        assert len(queries) == 2


def test_an_unreadable_counter_falls_back_to_the_ttl(sessions) -> None:
    case_id = _case(sessions, "R-1")
    counter = Counter()
    snapshots = CaseSnapshots(ttl_s=0.1, changes=counter)
    queries = statements(sessions)
    with sessions() as s:
        snapshots.watch()
        snapshots.get(s, case_id)
        counter.broken = True
        time.sleep(0.15)
        assert snapshots.watch() == NOTHING
        snapshots.get(s, case_id)
    assert len(queries) == 2


def test_a_change_here_drops_snapshots_and_tells_the_others(sessions) -> None:
    case_id = _case(sessions, "R-1")
    counter = Counter()
    here, there = CaseSnapshots(changes=counter), CaseSnapshots(changes=counter)
    with sessions() as s:
        there.watch()
        old = there.get(s, case_id)
        here.get(s, case_id)
        with sessions.begin() as w:
            w.get(Case, case_id).home_vr_code = "VR13"
        here.changed()
        assert here.get(s, case_id).home_vr_code == "VR13"
        assert there.watch() == EVERYTHING
        assert there.get(s, case_id) is not old


def test_the_watch_reloads_every_case_after_a_change(sessions) -> None:
    ids = [_case(sessions, f"R-{i}") for i in range(3)]
    counter = Counter()
    snapshots = CaseSnapshots(changes=counter)
    reloads = []
    watch = SnapshotWatch(snapshots, sessions, on_reload=lambda: reloads.append(1))
    assert watch.load() == 3
    watch.run_once()
    assert reloads == []  # nothing changed
    counter.bump()
    watch.run_once()
    assert reloads == [1]
    queries = statements(sessions)
    with sessions() as s:
        assert all(snapshots.get(s, i) is not None for i in ids)
    assert queries == []


def test_a_change_while_the_counter_was_away_reaches_the_others(sessions) -> None:
    """The counter can neither be raised nor read for a moment (Redis away): the change made
    meanwhile is raised once it answers, and a worker that could not read it takes that as a
    move and reloads, whichever of the two comes first."""
    case_id = _case(sessions, "R-1")
    counter = Counter()
    here, there = CaseSnapshots(changes=counter), CaseSnapshots(changes=counter)
    with sessions() as s:
        there.watch()
        assert there.get(s, case_id).home_vr_code == "VR17"
        counter.broken = True
        with sessions.begin() as w:
            w.get(Case, case_id).home_vr_code = "VR13"
        here.changed()  # not raised: Redis away
        assert there.watch() == NOTHING
        counter.broken = False
        assert there.watch() == EVERYTHING  # it could not read: a change may have been missed
        assert there.get(s, case_id).home_vr_code == "VR13"
        assert here.watch() == NOTHING and counter.value == 1  # the owed raise, for the others


def test_a_change_naming_its_case_reloads_that_case_alone(sessions) -> None:
    ids = [_case(sessions, f"R-{i}") for i in range(3)]
    counter = Counter()
    here, there = CaseSnapshots(changes=counter), CaseSnapshots(changes=counter)
    reloads = []
    watch = SnapshotWatch(there, sessions, on_reload=lambda: reloads.append(1))
    watch.load()
    with sessions() as s:
        before = {i: there.get(s, i) for i in ids}
    with sessions.begin() as w:
        w.get(Case, ids[1]).home_vr_code = "VR13"
    here.changed([ids[1]])
    queries = statements(sessions)
    watch.run_once()
    assert reloads == [1] and len(queries) == 1  # that case, in one query
    with sessions() as s:
        assert there.get(s, ids[1]).home_vr_code == "VR13"
        assert there.get(s, ids[0]) is before[ids[0]] and there.get(s, ids[2]) is before[ids[2]]
    assert len(queries) == 1


def test_a_case_read_again_after_it_was_deleted_loses_its_snapshot(sessions) -> None:
    case_id = _case(sessions, "R-1")
    snapshots = CaseSnapshots(changes=Counter())
    SnapshotWatch(snapshots, sessions).load()
    with sessions.begin() as w:
        for device in w.query(Device).filter(Device.case_id == case_id):
            w.delete(device)
        w.query(CaseContact).filter(CaseContact.case_id == case_id).delete()
        w.delete(w.get(Case, case_id))
    with sessions() as s:
        assert snapshots.load_cases(s, [case_id]) == 0
        assert snapshots.get(s, case_id) is None


def test_the_watch_reads_every_case_again_every_refresh_s(sessions) -> None:
    """A case changed by hand moves no counter: the watch reads every case again every
    `refresh_s` all the same, as the device directory does (before, never, until a restart)."""
    case_id = _case(sessions, "R-1")
    now = [1_000.0]
    snapshots = CaseSnapshots(changes=Counter())
    watch = SnapshotWatch(snapshots, sessions, refresh_s=300.0, clock=lambda: now[0])
    watch.load()
    with sessions.begin() as w:
        w.get(Case, case_id).home_vr_code = "VR13"  # by hand: no counter raised
    now[0] += 299.0
    watch.run_once()
    with sessions() as s:
        assert snapshots.get(s, case_id).home_vr_code == "VR17"
    now[0] += 1.0
    watch.run_once()
    with sessions() as s:
        assert snapshots.get(s, case_id).home_vr_code == "VR13"
