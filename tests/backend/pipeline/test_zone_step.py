"""The zone step alone, with a live engine over SQLite, the in-memory state store and a
recording notes sink: drafts for alerting events, notes for the others, unrelated devices
skipped, zone states kept in the store and resumed by a restarted step."""

from __future__ import annotations

import uuid
from pathlib import Path

import redis
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from backend.cases.models import Case
from backend.db.migrate import upgrade
from backend.devices.directory import DeviceInfo
from backend.devices.models import Device
from backend.measures import flows
from backend.measures.live import LiveMeasures
from backend.pipeline.context import Context, RawMessage
from backend.pipeline.zones import ZoneStep
from backend.state.store import InMemoryState, LastFix, PendingState, RedisState
from device_protocol import Fix
from backend import metrics
from geofences import Engine, GeofenceConfig
from tests.backend.measures.places import ROTTERDAM, offset, zone_feature


class Notes:
    def __init__(self) -> None:
        self.events = []

    def record(self, events, at) -> None:
        self.events += events


def _setup(tmp_path: Path, state: InMemoryState | PendingState | None = None):
    url = f"sqlite:///{tmp_path}/sw.db"
    upgrade(url)
    sessions = sessionmaker(create_engine(url))
    with sessions.begin() as s:
        case = Case(reference="C-step", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-s", case_id=case.id, role="offender"))
        s.flush()
        flows.create(s, case.id, zone_feature("off-s", measure_id="zone-s"), GeofenceConfig())
        case_id = case.id
    notes = Notes()
    return _step(sessions, state or InMemoryState(), notes), notes, case_id


def _step(sessions, state, notes) -> ZoneStep:
    return ZoneStep(LiveMeasures(sessions, GeofenceConfig(), poll_s=3600), state, notes)


def _ctx(device_id: str, case_id: uuid.UUID, point, tst: float) -> Context:
    ctx = Context(RawMessage("t", b"", 1, 1, tst + 1))
    ctx.device = DeviceInfo(device_id, case_id, "offender", True, 60, "C-step", "RE07", False)
    ctx.fresh_fixes = [Fix(tst=tst, lat=point[0], lon=point[1], acc=5.0)]
    return ctx


def test_breach_draft_and_cleared_note(tmp_path: Path):
    step, notes, case_id = _setup(tmp_path)
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = 1_800_000_000.0
    assert _ctx_alerts(step, "off-s", case_id, outside, t) == []
    [draft] = _ctx_alerts(step, "off-s", case_id, inside, t + 30)
    assert draft.type == "zone_breach" and draft.message_id == f"geo-zone-s-zone_breach-{int(t + 30)}"
    assert (draft.lat, draft.lon, draft.location_source) == (inside[0], inside[1], "fix")
    assert draft.detail["geofence"]["measure_id"] == "zone-s" and draft.case_id == case_id
    assert _ctx_alerts(step, "off-s", case_id, inside, t + 60) == []  # still inside: no repeat
    assert _ctx_alerts(step, "off-s", case_id, outside, t + 90) == []  # leaving: no alert ...
    assert [e.kind for e in notes.events] == ["zone_breach_cleared"]  # ... but a note


def test_unrelated_device_is_skipped(tmp_path: Path):
    step, notes, case_id = _setup(tmp_path)
    assert _ctx_alerts(step, "someone-else", case_id, ROTTERDAM, 1_800_000_000.0) == []
    assert "someone-else" not in step._live.engine.snapshot_state()["devices"]


def _ctx_alerts(step, device_id, case_id, point, tst):
    ctx = _ctx(device_id, case_id, point, tst)
    step(ctx)
    return ctx.alerts


def test_a_restarted_step_resumes_the_kept_states(tmp_path: Path):
    """A worker restarted while the offender is in the zone raises no second breach for it,
    and clears the first when he leaves; without the kept states it raised a new breach."""
    state = InMemoryState()
    step, notes, case_id = _setup(tmp_path, state)
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = 1_800_000_000.0
    [draft] = _ctx_alerts(step, "off-s", case_id, inside, t)
    assert draft.type == "zone_breach"
    kept = state.zone_states()["off-s"]["zone-s"]
    assert kept["status"] == "inside" and kept["last_tst"] == t

    restarted = _step(step._live._sessions, state, notes)
    assert _ctx_alerts(restarted, "off-s", case_id, inside, t + 30) == []
    assert _ctx_alerts(restarted, "off-s", case_id, outside, t + 60) == []
    assert [e.kind for e in notes.events] == ["zone_breach_cleared"]
    assert "off-s" not in state.zone_states()  # idle again: nothing kept

    fresh = _step(step._live._sessions, InMemoryState(), Notes())  # nothing kept
    [again] = _ctx_alerts(fresh, "off-s", case_id, inside, t + 90)
    assert again.type == "zone_breach" and again.message_id != draft.message_id


def test_states_of_a_measure_gone_during_the_restart_are_dropped(tmp_path: Path):
    state = InMemoryState()
    state.set_zone_states({"off-s": {"zone-gone": {"status": "inside", "last_tst": 1.0}}})
    step, _notes, case_id = _setup(tmp_path, state)
    _ctx_alerts(step, "off-s", case_id, offset(*ROTTERDAM, 2_000, 0), 1_800_000_000.0)
    assert state.zone_states() == {}


class DefectiveEngine(Engine):
    """An engine with a defect: every evaluation raises."""

    def on_fix(self, *args, **kwargs):
        raise RuntimeError("defect")


def test_a_failing_evaluation_is_logged_and_the_fix_goes_on(tmp_path: Path, caplog):
    step, _notes, case_id = _setup(tmp_path)
    step._live.engine = DefectiveEngine((), GeofenceConfig())  # the measures load into it
    before = metrics.GEOFENCE_ERRORS._value.get()
    ctx = _ctx("off-s", case_id, ROTTERDAM, 1_800_000_000.0)
    step(ctx)
    assert ctx.rejection is None and ctx.alerts == []  # stored as a ping all the same
    assert metrics.GEOFENCE_ERRORS._value.get() == before + 1
    [record] = [r for r in caplog.records if "geofence evaluation failed" in r.getMessage()]
    assert record.getMessage() == "geofence evaluation failed device=off-s"  # no position


def test_a_restarted_step_checks_its_first_fix_for_a_crossing(tmp_path: Path):
    """Before the restart the offender was west of the zone; his first fix after it is east of
    it: the straight line between them crosses the zone, a possible breach. The worker's view
    of the store already holds that first fix (staleness ran before), which must not stand in
    for the one before it."""
    state = InMemoryState()
    t = 1_800_000_000.0
    west, east = offset(*ROTTERDAM, -1_500, 0), offset(*ROTTERDAM, 1_500, 0)
    state.set_last_fixes({"off-s": LastFix(t, west[0], west[1], 5.0)})
    step, _notes, case_id = _setup(tmp_path, PendingState(state))
    pending = step._state
    pending.set_last_fixes({"off-s": LastFix(t + 60, east[0], east[1], 5.0)})
    [draft] = _ctx_alerts(step, "off-s", case_id, east, t + 60)
    assert draft.type == "zone_breach" and draft.flags == ["geofence_possible"]
    assert draft.detail["geofence"]["basis"] == "segment"


def test_with_the_store_away_states_start_idle_and_evaluation_goes_on(tmp_path: Path):
    unreachable = RedisState(redis.Redis(port=1, socket_connect_timeout=0.2), "sw")
    step, _notes, case_id = _setup(tmp_path, PendingState(unreachable))
    [draft] = _ctx_alerts(step, "off-s", case_id, ROTTERDAM, 1_800_000_000.0)
    assert draft.type == "zone_breach"
