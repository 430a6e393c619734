"""The zone step alone, with a live engine over SQLite, the in-memory state store and a
recording notes sink: drafts for alerting events, notes for the others, unrelated devices
skipped, zone states kept in the store and taken over from it by a restarted step, by steps
of workers sharing a subscription, and by a batch handled again."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
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
from backend.pipeline.pipeline import build_pipeline
from backend.pipeline.zones import ZoneStep
from backend.settings import ProtocolSettings
from backend.state.store import InMemoryState, LastFix, PendingState, RedisState
from device_protocol import Fix, Topics, codec
from backend import metrics
from geofences import Engine, GeofenceConfig
from tests.backend.measures.places import ROTTERDAM, ban_feature, offset, zone_feature
from tests.backend.state.test_store import CountingRoundTrips
from tests.conftest import REDIS_URL
from tests.support.unreachable import unreachable_redis


class Notes:
    def __init__(self) -> None:
        self.events = []

    def record(self, events, at) -> None:
        self.events += events


def _setup(tmp_path: Path, state: InMemoryState | PendingState | None = None,
           ban: bool = False):
    """A case with offender "off-s" banned from zone "zone-s" and, with `ban`, from coming
    within 300 m of victim "vic-s"."""
    url = f"sqlite:///{tmp_path}/sw.db"
    upgrade(url)
    sessions = sessionmaker(create_engine(url))
    with sessions.begin() as s:
        case = Case(reference="C-step", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-s", case_id=case.id, role="offender"))
        s.add(Device(id="vic-s", case_id=case.id, role="victim"))
        s.flush()
        flows.create(s, case.id, zone_feature("off-s", measure_id="zone-s"), GeofenceConfig())
        if ban:
            flows.create(s, case.id, ban_feature("off-s", "vic-s", radius_m=300.0,
                                                 measure_id="ban-s"), GeofenceConfig())
        case_id = case.id
    notes = Notes()
    return _step(sessions, state or InMemoryState(), notes), notes, case_id


def _step(sessions, state, notes) -> ZoneStep:
    return ZoneStep(LiveMeasures(sessions, GeofenceConfig(), poll_s=3600), state, notes)


def _ctx(device_id: str, case_id: uuid.UUID, point, tst: float, acc: float = 5.0) -> Context:
    ctx = Context(RawMessage("t", b"", 1, 1, tst + 1))
    role = "victim" if device_id.startswith("vic") else "offender"
    ctx.device = DeviceInfo(device_id, case_id, role, True, 60, "C-step", "RE07", False)
    ctx.fresh_fixes = [Fix(tst=tst, lat=point[0], lon=point[1], acc=acc)]
    return ctx


def test_breach_draft_and_cleared_note(tmp_path: Path):
    step, notes, case_id = _setup(tmp_path)
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = 1_800_000_000.0
    assert _ctx_alerts(step, "off-s", case_id, outside, t) == []
    [draft] = _ctx_alerts(step, "off-s", case_id, inside, t + 30)
    assert draft.type == "zone_breach"
    assert draft.message_id == f"geo-zone-s-zone_breach-confirmed-{int(t + 30)}"
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
    """One message in a batch of its own, without taking over what the store knows."""
    step.refresh()
    return _evaluated(step, device_id, case_id, point, tst)


def _evaluated(step, device_id, case_id, point, tst, acc: float = 5.0):
    ctx = _ctx(device_id, case_id, point, tst, acc)
    step(ctx)
    return ctx.alerts


def _batch(step, state, device_id, case_id, point, tst, again: bool = False,
           acc: float = 5.0):
    """One message in a batch of its own, as the worker handles it: the step takes over what
    the store knows, the staleness step records the fix, the zone step evaluates it, and the
    batch is stored (a `PendingState` flushed)."""
    if isinstance(state, PendingState):
        state.begin()
    step.refresh()
    step.begin_batch([device_id, *step.related_devices([device_id])], again)
    state.set_last_fixes({device_id: LastFix(tst, point[0], point[1], acc)})
    alerts = _evaluated(step, device_id, case_id, point, tst, acc)
    if isinstance(state, PendingState):
        state.flush()
    return alerts


def test_a_restarted_step_takes_over_the_kept_states(tmp_path: Path):
    """A worker restarted while the offender is in the zone raises no second breach for it,
    and clears the first when he leaves; without the kept states it raised a new breach."""
    state = InMemoryState()
    step, notes, case_id = _setup(tmp_path, state)
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = 1_800_000_000.0
    [draft] = _batch(step, state, "off-s", case_id, inside, t)
    assert draft.type == "zone_breach"
    kept = state.read_many(["off-s"]).zones["off-s"]["zone-s"]
    assert kept["status"] == "inside" and kept["last_tst"] == t

    restarted = _step(step._live._sessions, state, notes)
    assert _batch(restarted, state, "off-s", case_id, inside, t + 30) == []
    assert _batch(restarted, state, "off-s", case_id, outside, t + 60) == []
    assert [e.kind for e in notes.events] == ["zone_breach_cleared"]
    assert state.read_many(["off-s"]).zones == {}  # idle again: nothing kept

    fresh = InMemoryState()  # nothing kept
    [again] = _batch(_step(step._live._sessions, fresh, Notes()), fresh, "off-s", case_id,
                     inside, t + 90)
    assert again.type == "zone_breach" and again.message_id != draft.message_id


def test_states_of_a_measure_gone_during_the_restart_are_dropped(tmp_path: Path):
    state = InMemoryState()
    far = offset(*ROTTERDAM, 2_000, 0)
    state.write({"off-s": LastFix(1.0, far[0], far[1], 5.0)}, {},
                {"off-s": {"zone-gone": {"status": "inside", "last_tst": 1.0}}})
    step, _notes, case_id = _setup(tmp_path, state)
    _batch(step, state, "off-s", case_id, far, 1_800_000_000.0)
    assert state.read_many(["off-s"]).zones == {}


def test_steps_of_two_workers_go_on_from_each_others_states(tmp_path: Path):
    """Workers on a shared subscription: the offender enters at worker A, leaves at worker B
    and enters again at A. A must know he left (B cleared the breach), or it would take the
    second entry for the same stay and raise nothing."""
    state = PendingState(InMemoryState())
    a, notes, case_id = _setup(tmp_path, state)
    b_state = PendingState(state.store)
    b = _step(a._live._sessions, b_state, notes)
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = 1_800_000_000.0
    [first] = _batch(a, state, "off-s", case_id, inside, t)
    assert _batch(b, b_state, "off-s", case_id, outside, t + 30) == []
    assert [e.kind for e in notes.events] == ["zone_breach_cleared"]
    [second] = _batch(a, state, "off-s", case_id, inside, t + 60)
    assert second.type == "zone_breach" and second.message_id != first.message_id
    assert _batch(b, b_state, "off-s", case_id, inside, t + 90) == []  # B knows he is in


def test_a_contact_ban_works_when_its_fixes_reach_different_workers(tmp_path: Path):
    state = PendingState(InMemoryState())
    a, _notes, case_id = _setup(tmp_path, state, ban=True)
    b_state = PendingState(state.store)
    b = _step(a._live._sessions, b_state, Notes())
    far, near = offset(*ROTTERDAM, 5_000, 0), offset(*ROTTERDAM, 100, 0)
    t = 1_800_000_000.0
    assert _batch(a, state, "vic-s", case_id, ROTTERDAM, t) == []
    assert _batch(b, b_state, "off-s", case_id, far, t + 10) == []
    [draft] = _batch(b, b_state, "off-s", case_id, near, t + 20)  # B knows the victim's fix
    assert draft.type == "proximity" and draft.device_id == "off-s"
    assert _batch(a, state, "vic-s", case_id, ROTTERDAM, t + 30) == []  # A knows: no repeat


def test_a_possible_proximity_confirmed_for_its_own_time_gets_its_own_message_id(tmp_path: Path):
    """The victim's better fix, older than the offender's last, confirms a possible proximity
    for the same time (that of the newer fix of the pair): the confirmed alert has its own
    message id, or the database took it for the possible one again and dropped it."""
    state = PendingState(InMemoryState())
    step, _notes, case_id = _setup(tmp_path, state, ban=True)
    near = offset(*ROTTERDAM, 0, 250)  # 50 m within the ban's 300 m, the zone's 50 m north
    t = 1_800_000_000.0
    assert _batch(step, state, "vic-s", case_id, ROTTERDAM, t, acc=60.0) == []
    assert _batch(step, state, "off-s", case_id, near, t + 30, acc=10.0) == []
    [possible] = _batch(step, state, "off-s", case_id, near, t + 60, acc=10.0)
    [confirmed] = _batch(step, state, "vic-s", case_id, ROTTERDAM, t + 55)
    assert (possible.type, possible.flags) == ("proximity", ["geofence_possible"])
    assert (confirmed.type, confirmed.flags) == ("proximity", ["geofence_confirmed"])
    assert confirmed.device_time == possible.device_time == t + 60
    assert possible.message_id == f"geo-ban-s-proximity-possible-{int(t + 60)}"
    assert confirmed.message_id == f"geo-ban-s-proximity-confirmed-{int(t + 60)}"


def test_a_batch_handled_again_raises_its_alert_again(tmp_path: Path):
    """A batch whose try failed after the evaluation (nothing stored) is handled again: the
    engine goes back to what the store holds, so the breach is found again, with the same
    message id (the database keeps one alert per id). Without `again` it was not."""
    state = PendingState(InMemoryState())
    step, _notes, case_id = _setup(tmp_path, state)
    t = 1_800_000_000.0

    def unstored_try(again: bool):
        state.begin()
        step.refresh()
        step.begin_batch(["off-s"], again)
        state.set_last_fixes({"off-s": LastFix(t, *ROTTERDAM, 5.0)})
        return _evaluated(step, "off-s", case_id, ROTTERDAM, t)  # ... and the try fails

    [draft] = unstored_try(again=False)
    assert unstored_try(again=False) == []  # the engine took it for a fix it had seen
    [again] = unstored_try(again=True)
    assert again.message_id == draft.message_id


def test_with_the_store_emptied_the_engine_keeps_what_it_knows(tmp_path: Path):
    """Redis flushed: the store knows no fix of the offender, the engine still knows he is
    inside, so his next fix inside is no second breach."""
    state = PendingState(InMemoryState())
    step, _notes, case_id = _setup(tmp_path, state)
    t = 1_800_000_000.0
    [_breach] = _batch(step, state, "off-s", case_id, ROTTERDAM, t)
    state.store = InMemoryState()
    assert _batch(step, state, "off-s", case_id, ROTTERDAM, t + 30) == []


class DefectiveEngine(Engine):
    """An engine with a defect: every evaluation raises."""

    def on_fix(self, *args, **kwargs):
        raise RuntimeError("defect")


def test_a_failing_evaluation_is_logged_and_the_fix_goes_on(tmp_path: Path, caplog):
    step, _notes, case_id = _setup(tmp_path)
    step._live.engine = DefectiveEngine((), GeofenceConfig())  # the measures load into it
    step.refresh()
    before = metrics.GEOFENCE_ERRORS._value.get()
    ctx = _ctx("off-s", case_id, ROTTERDAM, 1_800_000_000.0)
    step(ctx)
    assert ctx.rejection is None and ctx.alerts == []  # stored as a ping all the same
    assert metrics.GEOFENCE_ERRORS._value.get() == before + 1
    [record] = [r for r in caplog.records if "geofence evaluation failed" in r.getMessage()]
    assert record.getMessage() == "geofence evaluation failed device=off-s"  # no position


def test_a_restarted_step_checks_its_first_fix_for_a_crossing(tmp_path: Path):
    """Before the restart the offender was west of the zone; his first fix after it is east of
    it: the straight line between them crosses the zone, a possible breach."""
    state = InMemoryState()
    t = 1_800_000_000.0
    west, east = offset(*ROTTERDAM, -1_500, 0), offset(*ROTTERDAM, 1_500, 0)
    state.set_last_fixes({"off-s": LastFix(t, west[0], west[1], 5.0)})
    pending = PendingState(state)
    step, _notes, case_id = _setup(tmp_path, pending)
    [draft] = _batch(step, pending, "off-s", case_id, east, t + 60)
    assert draft.type == "zone_breach" and draft.flags == ["geofence_possible"]
    assert draft.detail["geofence"]["basis"] == "segment"


def test_with_the_store_away_the_engine_goes_on_with_what_it_knows(tmp_path: Path, caplog):
    pending = PendingState(RedisState(unreachable_redis(), "sw"))
    step, _notes, case_id = _setup(tmp_path, pending)
    t = 1_800_000_000.0
    [draft] = _batch(step, pending, "off-s", case_id, ROTTERDAM, t)
    assert draft.type == "zone_breach"
    assert "zone states as this worker knows them" in caplog.text
    assert _batch(step, pending, "off-s", case_id, ROTTERDAM, t + 30) == []  # no second one


def test_an_offender_weaving_across_workers_is_counted_in_the_store(tmp_path: Path):
    """In and out of the zone along its border, his fixes taken by two workers in turn (on
    real Redis): the count of his fixes in the zone lives in the stored state, so the third of
    them raises the breach wherever it lands, once."""
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"swtest{uuid.uuid4().hex[:8]}"
    try:
        state = PendingState(RedisState(client, prefix))
        a, _notes, case_id = _setup(tmp_path, state)
        b_state = PendingState(state.store)
        b = _step(a._live._sessions, b_state, _notes)
        inside = offset(*ROTTERDAM, 160, 0)  # 40 m within the zone's eastern border
        outside = offset(*ROTTERDAM, 240, 0)  # 40 m beyond it
        t = 1_800_000_000.0
        raised = []
        for i in range(10):
            step, its_state = (a, state) if i % 3 else (b, b_state)
            raised += _batch(step, its_state, "off-s", case_id,
                             inside if i % 2 == 0 else outside, t + 30 * i)
        assert [d.type for d in raised] == ["zone_breach"]
        assert raised[0].message_id == f"geo-zone-s-zone_breach-confirmed-{int(t + 120)}"
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_victims_fix_at_one_worker_keeps_the_zone_state_another_stored(tmp_path: Path,
                                                                          kind: str):
    """Two workers at once: B evaluates the offender's entry into the zone (a breach), A the
    victim's fix, which changes only the contact ban's state, kept under the offender. A stores
    its batch after B: it stores the ban's state and leaves B's `inside` of the zone, so the
    offender's next fix, still inside, raises no second breach. Before, A stored its whole
    (older) view of the offender's states and the next fix raised the breach again."""
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"swtest{uuid.uuid4().hex[:8]}"
    try:
        store = RedisState(client, prefix) if kind == "redis" else InMemoryState()
        a_state, b_state = PendingState(store), PendingState(store)
        a, _notes, case_id = _setup(tmp_path, a_state, ban=True)
        b = _step(a._live._sessions, b_state, Notes())
        far, victim = offset(*ROTTERDAM, -5_000, 0), offset(*ROTTERDAM, 2_500, 0)
        t = 1_800_000_000.0
        assert _batch(a, a_state, "off-s", case_id, far, t) == []  # victim unknown to the ban
        assert "ban-s" in store.read_many(["off-s"]).zones["off-s"]

        def begin(step, state, device_id, point, tst):
            state.begin()
            step.refresh()
            step.begin_batch([device_id, *step.related_devices([device_id])])
            state.set_last_fixes({device_id: LastFix(tst, point[0], point[1], 5.0)})

        begin(b, b_state, "off-s", ROTTERDAM, t + 60)
        begin(a, a_state, "vic-s", victim, t + 58)
        [breach] = _evaluated(b, "off-s", case_id, ROTTERDAM, t + 60)
        assert _evaluated(a, "vic-s", case_id, victim, t + 58) == []
        assert breach.type == "zone_breach"
        b_state.flush()
        a_state.flush()  # last: A's older view of the zone must not win
        stored = store.read_many(["off-s"]).zones.get("off-s", {})
        assert stored.get("zone-s", {}).get("status") == "inside"
        assert stored.get("ban-s", {}).get("status", "outside") == "outside"  # A's change kept
        for step, state in ((b, b_state), (a, a_state)):
            t += 30
            assert _batch(step, state, "off-s", case_id, ROTTERDAM, t + 60) == []
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()


class Directory:
    """The case's two devices, by id (the pipeline's device look-up)."""

    def __init__(self, case_id: uuid.UUID) -> None:
        self._devices = {d: DeviceInfo(d, case_id, role, True, 60, "C-step", "RE07", False)
                         for d, role in (("off-s", "offender"), ("vic-s", "victim"))}

    def get(self, device_id):
        return self._devices.get(device_id)

    def reread(self, device_id):
        return self._devices.get(device_id)

    def by_owntracks(self, user, device):
        return None


def test_a_victims_clock_behind_is_corrected_from_the_batchs_prefetch(tmp_path: Path):
    """Her phone's clock runs 150 s behind: her live status report and fixes show it (each a
    clock reading, kept in real Redis). The offender's next fix, 100 m from her at his right
    time, is paired with her fix of the same moment on the common time base: the proximity is
    raised at once (without the correction her fix was 150 s older than his, beyond
    `partner_max_age_s`: no pair, no alert). The readings are those of the batch's prefetch,
    and of her own message in its batch: no round trip to Redis between prefetch and flush."""
    client = redis.Redis.from_url(REDIS_URL)
    prefix = f"swtest{uuid.uuid4().hex[:8]}"
    try:
        counting = CountingRoundTrips(client)
        state = PendingState(RedisState(counting, prefix))  # type: ignore[arg-type]
        step, _notes, case_id = _setup(tmp_path, state, ban=True)
        pipeline = build_pipeline(ProtocolSettings(), Directory(case_id), state, [step])
        topics = Topics("sd/v1")
        her, him = offset(*ROTTERDAM, 3_000, 3_000), offset(*ROTTERDAM, 3_100, 3_000)
        far = offset(*ROTTERDAM, -5_000, 0)
        now = 1_800_000_000.0

        def batch(device_id: str, topic: str, payload: bytes, at: float):
            state.begin()
            step.refresh()
            ids = [device_id, *step.related_devices([device_id])]
            state.prefetch(ids)
            before = counting.calls
            step.begin_batch(ids)
            ctx = pipeline.run(RawMessage(topic, payload, 1, 1, at))
            assert ctx.rejection is None and counting.calls == before
            state.flush()
            return ctx.alerts

        def loc(point, tst: float) -> bytes:
            return codec.encode(Fix(tst=tst, lat=point[0], lon=point[1], acc=10.0))

        assert batch("vic-s", topics.status("vic-s"), b'{"tst": %d}' % (now - 150), now) == []
        assert batch("off-s", topics.loc("off-s"), loc(far, now + 5), now + 5) == []
        assert batch("vic-s", topics.loc("vic-s"), loc(her, now - 140), now + 10) == []
        assert RedisState(client, prefix).get_clock("vic-s").behind == 150  # stored
        [draft] = batch("off-s", topics.loc("off-s"), loc(him, now + 20), now + 20)
        assert (draft.type, draft.device_id) == ("proximity", "off-s")
        assert draft.message_id == f"geo-ban-s-proximity-confirmed-{int(now + 20)}"
        assert round(draft.detail["geofence"]["distance_m"]) == 100
    finally:
        for key in client.scan_iter(f"{prefix}:*"):
            client.delete(key)
        client.close()
