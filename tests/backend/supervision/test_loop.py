"""The supervision loop on the stack: a silence storm of 100 devices gives grouped alerts (one per
case and a desk summary), repeated passes add nothing, and a panic alarm raised in the middle of
the storm reaches the police feed at once, ungrouped. Pursuit mode tightens the silence threshold
to 20 s. An alert the desk closed is not raised again for the same episode, only for a new one;
a pass reads the closed alerts of the cases in an episode only, by their index."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import numpy as np
import pytest
from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects import postgresql

from backend.alerts.models import Alert, AlertEvent
from backend.cases.models import Case
from backend.devices.models import Device
from backend.state.store import LastFix
from backend.supervision.grouping import STORM_TYPE, GroupedHealthAlert, StormSummary
from backend.supervision.health import UNKNOWN, HealthSignal
from backend.supervision.loop import SupervisionLoop, first_to_raise, measured_from
from device_protocol import Alarm, codec
from tests.backend.escalation.support import RecordingBus
from tests.support.mqtt import publish


def _fleet(stack, cases: int, per_case: int, last_seen: datetime) -> list[str]:
    devices = []
    with stack.runtime.sessions.begin() as s:
        for c in range(cases):
            case = Case(
                reference=f"S-{uuid.uuid4().hex[:8]}",
                home_police_unit="RE07",
                home_vt_desk="VT-RR",
            )
            s.add(case)
            s.flush()
            for d in range(per_case):
                device_id = f"sup-{c:02d}-{d:02d}"
                s.add(Device(id=device_id, case_id=case.id, role="victim"))
                devices.append(device_id)
    stack.runtime.state.touch({d: last_seen.timestamp() for d in devices})
    return devices


def _count(stack, *where) -> int:
    with stack.runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Alert).where(*where))


def test_health_storm_is_grouped_while_a_panic_goes_out_at_once(stack):
    now = datetime.now(UTC)
    devices = _fleet(
        stack, cases=10, per_case=10, last_seen=now - timedelta(seconds=120)
    )
    bus = RecordingBus()
    loop = SupervisionLoop(stack.runtime, bus=bus)
    police = stack.collector(stack.topics.police_filter())
    panicking = stack.device(devices[42])

    storm = threading.Thread(target=lambda: loop.run_once(now))
    storm.start()
    publish(
        panicking,
        stack.topics.alarm(devices[42]),
        codec.encode(Alarm(id="storm-panic", kind="panic", tst=time.time())),
    )
    [(_, payload, _)] = police.wait_for(1)
    storm.join(30)
    document = orjson.loads(payload)
    assert document["type"] == "panic" and document["priority"] == "P1"
    assert document["device"]["id"] == devices[42]
    assert "grouped" not in document["flags"]

    silent = _count(stack, Alert.type == "device_silent")
    assert silent == 10  # one per case, not one per device
    assert _count(stack, Alert.type == STORM_TYPE) == 1  # one summary for the desk
    with stack.runtime.sessions() as s:
        grouped = list(s.scalars(select(Alert).where(Alert.type == "device_silent")))
        assert sum(len(a.health_devices) for a in grouped) >= 99
        assert all("in_storm" in a.flags and a.priority == "P3" for a in grouped)
    raised = bus.named("alert.raised")
    assert (
        len(raised) <= 12
    )  # 10 cases + 1 storm (+ the panicking device's missing fix)

    # The storm goes on: the next pass adds no silence alert and no second summary.
    loop.run_once(now + timedelta(seconds=5))
    assert _count(stack, Alert.type == "device_silent") == 10
    assert _count(stack, Alert.type == STORM_TYPE) == 1
    assert _count(stack, Alert.type == "panic") == 1
    police.close()
    panicking.disconnect()


def test_pursuit_mode_detects_silence_within_20_seconds(stack):
    now = datetime.now(UTC)
    [_quiet, chased] = _fleet(
        stack, cases=2, per_case=1, last_seen=now - timedelta(seconds=25)
    )
    with stack.runtime.sessions.begin() as s:
        case_id = s.get(Device, chased).case_id
        s.add(
            Alert(
                case_id=case_id,
                device_id=chased,
                type="panic",
                priority="P1",
                state="acknowledged",
                raised_at=now,
                updated_at=now,
                flags=[],
            )
        )
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    loop.run_once(now)
    with stack.runtime.sessions() as s:
        silent = list(s.scalars(select(Alert).where(Alert.type == "device_silent")))
    assert [a.health_devices for a in silent] == [
        [chased]
    ]  # 25 s: silent only in pursuit


def _device(stack, device_id: str, last_seen: datetime, **columns) -> None:
    with stack.runtime.sessions.begin() as s:
        case = Case(
            reference=f"R-{uuid.uuid4().hex[:8]}", home_police_unit="RE07", home_vt_desk="VT-RR"
        )
        s.add(case)
        s.flush()
        s.add(Device(id=device_id, case_id=case.id, role="offender", **columns))
    stack.runtime.state.touch({device_id: last_seen.timestamp()})


def test_the_health_alerts_of_an_exercise_case_are_drills(stack):
    """A case of an exercise: its silent device and its tampered strap raise drill alerts,
    which reach drill subscriptions only, never the live police."""
    from backend.subscriptions.models import Delivery, Subscription

    now = datetime.now(UTC)
    with stack.runtime.sessions.begin() as s:
        live = Subscription(name="live", url="http://127.0.0.1:9/live", secret="whsec_x")
        drill = Subscription(name="drill", url="http://127.0.0.1:9/drill", secret="whsec_y",
                             drill=True)
        case = Case(reference=f"X-{uuid.uuid4().hex[:8]}", home_police_unit="RE07",
                    home_vt_desk="VT-RR", exercise=True)
        s.add_all([live, drill, case])
        s.flush()
        s.add_all([Device(id="ex-silent", case_id=case.id, role="victim"),
                   Device(id="ex-strap", case_id=case.id, role="offender", tamper=True,
                          last_status_at=now)])
        live_id, drill_id = live.id, drill.id
    stack.runtime.flow.forget_caches()
    stack.runtime.state.touch({"ex-silent": (now - timedelta(seconds=120)).timestamp(),
                               "ex-strap": now.timestamp()})
    SupervisionLoop(stack.runtime, bus=RecordingBus()).run_once(now)
    raised = _alerts(stack, "device_silent") + _alerts(stack, "tamper")
    assert [(a.type, a.exercise) for a in raised] == [("device_silent", True), ("tamper", True)]
    with stack.runtime.sessions() as s:
        to = set(s.scalars(select(Delivery.subscription_id).where(
            Delivery.alert_id.in_([a.id for a in raised]))))
    assert to == {drill_id} and live_id not in to


def test_an_exercise_storm_is_a_drill_apart_from_the_live_devices(stack):
    """12 devices of exercise cases fall silent with 3 live ones: one storm summary, a drill,
    counting the exercise's devices only, delivered to drill subscriptions only; the live
    devices' alerts are not folded under it."""
    from backend.subscriptions.models import Delivery, Subscription

    now = datetime.now(UTC)
    with stack.runtime.sessions.begin() as s:
        live = Subscription(name="live", url="http://127.0.0.1:9/live", secret="whsec_x")
        drill = Subscription(name="drill", url="http://127.0.0.1:9/drill", secret="whsec_y",
                             drill=True)
        s.add_all([live, drill])
        for n in range(12):
            case = Case(reference=f"X-{uuid.uuid4().hex[:8]}", home_police_unit="RE07",
                        home_vt_desk="VT-RR", exercise=True)
            s.add(case)
            s.flush()
            s.add(Device(id=f"xs-{n:02d}", case_id=case.id, role="victim"))
        live_id, drill_id = live.id, drill.id
    for n in range(3):
        _device(stack, f"ls-{n}", now - timedelta(seconds=120))
    stack.runtime.flow.forget_caches()
    stack.runtime.state.touch({f"xs-{n:02d}": (now - timedelta(seconds=120)).timestamp()
                               for n in range(12)})
    SupervisionLoop(stack.runtime, bus=RecordingBus()).run_once(now)
    [storm] = _alerts(stack, STORM_TYPE)
    assert storm.exercise is True
    with stack.runtime.sessions() as s:
        [counts] = s.scalars(select(AlertEvent.detail).where(
            AlertEvent.alert_id == storm.id, AlertEvent.kind == "raised"))
        to = set(s.scalars(select(Delivery.subscription_id).where(
            Delivery.alert_id == storm.id)))
    assert (counts["device_count"], counts["total_device_count"]) == (12, 12)
    assert to == {drill_id} and live_id not in to
    silent = {a.device_id: a for a in _alerts(stack, "device_silent")}
    assert all(("in_storm" in a.flags) == a.exercise for a in silent.values())
    assert [silent[f"ls-{n}"].exercise for n in range(3)] == [False] * 3


def test_a_pass_raises_at_most_its_share_of_new_alerts_the_oldest_first(stack, monkeypatch,
                                                                       caplog):
    """More cases fall silent at once than a pass may raise alerts for: the oldest silences
    first, the rest at the next pass, and the pass says how many it left."""
    monkeypatch.setattr(stack.runtime.settings.supervision, "max_new_alerts_per_pass", 3)
    now = datetime.now(UTC)
    for n in range(5):
        _device(stack, f"cap-{n}", now - timedelta(seconds=100 + 10 * n))  # cap-4 the oldest
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    with caplog.at_level("WARNING", logger="backend.supervision.loop"):
        first = loop.run_once(now)
    assert (first.new, first.deferred) == (3, 2)
    assert sorted(a.device_id for a in _alerts(stack, "device_silent")) == [
        "cap-2", "cap-3", "cap-4"]
    assert "supervision pass: 2 new alert(s) left for the next pass (at most 3 a pass)" in [
        r.getMessage() for r in caplog.records]
    second = loop.run_once(now + timedelta(seconds=5))
    assert (second.new, second.deferred) == (2, 0)
    assert len(_alerts(stack, "device_silent")) == 5


def test_the_first_alerts_to_raise_are_urgent_then_storms_then_the_oldest() -> None:
    now = datetime.now(UTC)
    tamper = [HealthSignal("tamper", f"t{n}", None, now, "tamper") for n in range(2)]
    storm = StormSummary("VT-RR", 12, 12, now)
    groups = [GroupedHealthAlert(f"c{n}", "device_silent", (f"d{n}",), since, None, False)
              for n, since in enumerate([now, None, now - timedelta(seconds=60)])]
    assert first_to_raise(tamper, [storm], groups, 10) == (tamper, [storm], [
        groups[1], groups[2], groups[0]], 0)
    assert first_to_raise(tamper, [storm], groups, 4) == (tamper, [storm], [groups[1]], 2)
    assert first_to_raise(tamper, [storm], groups, 1) == (tamper[:1], [], [], 5)


def _alerts(stack, kind: str) -> list[Alert]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(Alert).where(Alert.type == kind).order_by(Alert.raised_at)))


def _raise_and_resolve(stack, loop: SupervisionLoop, now: datetime, kind: str) -> None:
    loop.run_once(now)
    [alert] = _alerts(stack, kind)
    assert stack.api().post(f"/api/v1/alerts/{alert.id}/resolve").status_code == 200


def test_resolved_silence_alert_is_not_raised_again_while_nothing_changed(stack):
    now = datetime.now(UTC)
    _device(stack, "sil-1", now - timedelta(seconds=120))
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    _raise_and_resolve(stack, loop, now, "device_silent")
    for k in range(1, 4):
        loop.run_once(now + timedelta(seconds=5 * k))
    assert len(_alerts(stack, "device_silent")) == 1


def test_silence_after_being_heard_again_is_a_new_episode(stack):
    now = datetime.now(UTC)
    _device(stack, "sil-2", now - timedelta(seconds=120))
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    _raise_and_resolve(stack, loop, now, "device_silent")
    loop.run_once(now + timedelta(seconds=5))
    stack.runtime.state.touch({"sil-2": (now + timedelta(seconds=10)).timestamp()})  # heard
    loop.run_once(now + timedelta(seconds=15))
    assert len(_alerts(stack, "device_silent")) == 1
    loop.run_once(now + timedelta(seconds=110))  # silent again for 100 s
    assert [a.state for a in _alerts(stack, "device_silent")] == ["resolved", "new"]


def test_resolved_tamper_alert_is_not_raised_again_every_pass(stack):
    now = datetime.now(UTC)
    _device(stack, "tmp-1", now, tamper=True, last_status_at=now)
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    _raise_and_resolve(stack, loop, now, "tamper")
    for k in range(1, 4):
        loop.run_once(now + timedelta(seconds=5 * k))
    assert len(_alerts(stack, "tamper")) == 1


def test_a_device_added_to_an_alert_is_covered_from_its_addition(stack):
    """A device added to an open alert after its raise, the desk closes the alert, nothing new
    heard: not raised again (its last contact came after the raise, but before its addition).
    The alert is read though it was raised before that contact (the other device heard since).
    The passes run in the past, so that the desk's close (now) comes after them."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    with stack.runtime.sessions.begin() as s:
        _cases_with_devices(s, [["ad-a", "ad-b"]])
    stack.runtime.state.touch({"ad-a": (now - timedelta(seconds=120)).timestamp(),
                               "ad-b": (now + timedelta(seconds=10)).timestamp()})
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    loop.run_once(now)  # a silent: the alert lists a
    loop.run_once(now + timedelta(seconds=105))  # b silent too (heard at +10): added
    [alert] = _alerts(stack, "device_silent")
    assert alert.health_devices == ["ad-a", "ad-b"]
    stack.runtime.state.touch({"ad-a": (now + timedelta(seconds=106)).timestamp()})  # a heard
    assert stack.api().post(f"/api/v1/alerts/{alert.id}/resolve").status_code == 200
    for k in range(3):
        loop.run_once(now + timedelta(seconds=110 + 5 * k))
    assert [(a.state, a.health_devices) for a in _alerts(stack, "device_silent")] == [
        ("resolved", ["ad-a", "ad-b"])
    ]
    stack.runtime.state.touch({"ad-a": (now + timedelta(seconds=210)).timestamp(),
                               "ad-b": (now + timedelta(seconds=120)).timestamp()})  # b heard
    loop.run_once(now + timedelta(seconds=215))  # and silent again: a new episode
    assert [(a.state, a.health_devices) for a in _alerts(stack, "device_silent")] == [
        ("resolved", ["ad-a", "ad-b"]), ("new", ["ad-b"])
    ]


def test_devices_for_an_alert_the_desk_closed_meanwhile_go_in_a_new_alert(stack, monkeypatch):
    """The desk closes a silence alert after the pass read it open, before the pass adds a
    device to it: the device is raised in a new alert, not written into the closed one (which
    would cover it for good)."""
    now = datetime.now(UTC) - timedelta(minutes=5)
    with stack.runtime.sessions.begin() as s:
        _cases_with_devices(s, [["cm-a", "cm-b"]])
    stack.runtime.state.touch({"cm-a": (now - timedelta(seconds=120)).timestamp(),
                               "cm-b": (now - timedelta(seconds=10)).timestamp()})
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    loop.run_once(now)
    [alert] = _alerts(stack, "device_silent")
    update = loop._update

    def closed_meanwhile(session, change, now):
        assert stack.api().post(f"/api/v1/alerts/{change.alert_id}/resolve").status_code == 200
        return update(session, change, now)

    monkeypatch.setattr(loop, "_update", closed_meanwhile)
    loop.run_once(now + timedelta(seconds=85))  # b silent now
    monkeypatch.setattr(loop, "_update", update)
    loop.run_once(now + timedelta(seconds=90))
    assert [(a.state, a.health_devices) for a in _alerts(stack, "device_silent")] == [
        ("resolved", ["cm-a"]), ("new", ["cm-b"])
    ]


def test_a_storm_summary_the_desk_closed_meanwhile_gets_no_update(stack, monkeypatch):
    now = datetime.now(UTC) - timedelta(minutes=5)
    for n in range(12):
        _device(stack, f"sm-{n:02d}", now - timedelta(seconds=120))
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    loop.run_once(now)
    [storm] = _alerts(stack, STORM_TYPE)
    update = loop._update_storm

    def closed_meanwhile(session, storm, now):
        assert stack.api().post(f"/api/v1/alerts/{storm.alert_id}/resolve").status_code == 200
        return update(session, storm, now)

    monkeypatch.setattr(loop, "_update_storm", closed_meanwhile)
    _device(stack, "sm-12", now - timedelta(seconds=100))
    loop.run_once(now + timedelta(seconds=5))
    with stack.runtime.sessions() as s:
        grouped = s.scalar(select(func.count()).select_from(AlertEvent).where(
            AlertEvent.alert_id == storm.id, AlertEvent.kind == "grouped"))
    assert grouped == 0
    monkeypatch.setattr(loop, "_update_storm", update)
    loop.run_once(now + timedelta(seconds=10))  # 13 silent, more than the closed one counted
    assert [a.state for a in _alerts(stack, STORM_TYPE)] == ["resolved", "new"]


def test_tamper_in_a_status_report_after_the_close_raises_again(stack):
    now = datetime.now(UTC)
    _device(stack, "tmp-2", now, tamper=True, last_status_at=now)
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    _raise_and_resolve(stack, loop, now, "tamper")
    loop.run_once(now + timedelta(seconds=5))
    assert len(_alerts(stack, "tamper")) == 1
    with stack.runtime.sessions.begin() as s:  # a new status report, still with tamper
        s.execute(update(Device).where(Device.id == "tmp-2").values(
            last_status_at=now + timedelta(seconds=8)))
    loop.run_once(now + timedelta(seconds=10))
    assert [a.state for a in _alerts(stack, "tamper")] == ["resolved", "new"]


def test_closed_battery_alert_waits_for_a_new_status_report(stack):
    now = datetime.now(UTC)
    _device(stack, "bat-1", now, battery=9, charging=False, last_status_at=now)
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    _raise_and_resolve(stack, loop, now, "battery_low")
    stack.runtime.state.touch({"bat-1": (now + timedelta(seconds=10)).timestamp()})
    loop.run_once(now + timedelta(seconds=10))  # heard, but no new status report
    assert len(_alerts(stack, "battery_low")) == 1
    with stack.runtime.sessions.begin() as s:  # the next status report: still low
        s.execute(update(Device).where(Device.id == "bat-1").values(
            last_status_at=now + timedelta(seconds=12), battery=8))
    loop.run_once(now + timedelta(seconds=15))
    assert [a.state for a in _alerts(stack, "battery_low")] == ["resolved", "new"]


def test_an_unchanged_storm_summary_is_left_alone(stack):
    now = datetime.now(UTC)
    for n in range(12):
        _device(stack, f"st-{n:02d}", now - timedelta(seconds=120))
    bus = RecordingBus()
    loop = SupervisionLoop(stack.runtime, bus=bus)
    loop.run_once(now)
    [storm] = _alerts(stack, STORM_TYPE)
    published = len(bus.events)
    for k in range(1, 4):
        loop.run_once(now + timedelta(seconds=5 * k))
    with stack.runtime.sessions() as s:
        grouped = s.scalar(select(func.count()).select_from(AlertEvent).where(
            AlertEvent.alert_id == storm.id, AlertEvent.kind == "grouped"))
    assert grouped == 0
    assert bus.events[published:] == []
    # One more device falls silent: the summary is updated, once.
    _device(stack, "st-12", now - timedelta(seconds=100))
    loop.run_once(now + timedelta(seconds=20))
    loop.run_once(now + timedelta(seconds=25))
    with stack.runtime.sessions() as s:
        details = list(s.scalars(select(AlertEvent.detail).where(
            AlertEvent.alert_id == storm.id, AlertEvent.kind == "grouped")))
    assert details == [{"device_count": 13, "total_device_count": 13}]


def test_a_storm_summary_the_desk_closed_is_not_raised_again_for_the_same_devices(stack):
    """The desk closes the storm summary while the storm lasts: the next passes raise no new
    one; a device that falls silent after the close does."""
    now = datetime.now(UTC)
    for n in range(12):
        _device(stack, f"sc-{n:02d}", now - timedelta(seconds=120))
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    loop.run_once(now)
    [storm] = _alerts(stack, STORM_TYPE)
    assert stack.api().post(f"/api/v1/alerts/{storm.id}/resolve").status_code == 200
    for k in range(1, 4):
        loop.run_once(now + timedelta(seconds=5 * k))
    assert len(_alerts(stack, STORM_TYPE)) == 1
    _device(stack, "sc-12", now - timedelta(seconds=70))  # silent since after the close
    loop.run_once(now + timedelta(seconds=25))
    assert [a.state for a in _alerts(stack, STORM_TYPE)] == ["resolved", "new"]


def test_a_last_contact_ahead_of_the_clock_is_not_trusted(stack, caplog):
    now = datetime.now(UTC)
    _device(stack, "fut-1", now + timedelta(hours=1))  # written by a node whose clock ran ahead
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    with caplog.at_level("WARNING", logger="backend.supervision.loop"):
        loop.run_once(now + timedelta(seconds=300))
        loop.run_once(now + timedelta(seconds=305))
    [alert] = _alerts(stack, "device_silent")
    assert alert.health_devices == ["fut-1"]
    assert [r.getMessage() for r in caplog.records if "fut-1" in r.getMessage()] == [
        "supervision: last contact or fix ahead of the clock, not trusted: 1 device(s) fut-1"
    ]


def _closed(case_id: uuid.UUID, device_id: str, kind: str, raised_at: datetime,
            devices: list[str] | None = None) -> dict:
    return {"id": uuid.uuid4(), "case_id": case_id, "device_id": device_id, "type": kind,
            "priority": "P3", "state": "resolved", "sequence": 2, "raised_at": raised_at,
            "updated_at": raised_at, "flags": ["grouped"], "health_devices": devices}


def _cases_with_devices(session, device_ids: list[list[str]]) -> list[uuid.UUID]:
    """One case per list of device ids, its devices registered."""
    cases = []
    for ids in device_ids:
        case = Case(reference=f"C-{uuid.uuid4().hex[:8]}", home_police_unit="RE07",
                    home_vt_desk="VT-RR")
        session.add(case)
        session.flush()
        session.add_all(Device(id=d, case_id=case.id, role="victim") for d in ids)
        cases.append(case.id)
    session.flush()
    return cases


def test_closed_alerts_are_read_from_the_cases_in_an_episode_only(stack):
    """A device silent for months: the pass reads the closed alerts of its case (a grouped one
    listing it after another device too), none of a case with no device in an episode."""
    now = datetime.now(UTC)
    silent_since = now - timedelta(days=120)
    with stack.runtime.sessions.begin() as s:
        quiet, other = _cases_with_devices(s, [["cl-a0", "cl-a1"], ["cl-b0"]])
        s.execute(insert(Alert), [
            _closed(quiet, "cl-a0", "device_silent", now - timedelta(days=100),
                    ["cl-a0", "cl-a1"]),
            _closed(quiet, "cl-a1", "device_silent", silent_since - timedelta(days=1),
                    ["cl-a1"]),  # before the episode began: covers nothing
            _closed(other, "cl-b0", "device_silent", now - timedelta(days=30), ["cl-b0"]),
        ])
    signal = HealthSignal("device_silent", "cl-a1", str(quiet), silent_since, "silent",
                          reported_at=silent_since)
    with stack.runtime.sessions() as s:
        closed = SupervisionLoop._closed_alerts(s, [signal])
    at = (now - timedelta(days=100)).replace(microsecond=0)
    assert {key: t.replace(microsecond=0) for key, t in closed.items()} == {
        ("cl-a0", "device_silent"): at, ("cl-a1", "device_silent"): at,
    }


def test_the_closed_alert_query_reads_by_its_index(pg_sessions):
    """With a history of closed health alerts in many cases, the query of a pass reads the
    alerts of the cases in an episode through `ix_alerts_case_type_raised` (the planner chose
    a sequential scan of every alert before the index and the restriction to those cases)."""
    now = datetime.now(UTC)
    with pg_sessions.begin() as s:
        cases = _cases_with_devices(s, [[f"ix-{c:03d}"] for c in range(300)])
        s.execute(insert(Alert), [
            _closed(case_id, f"ix-{c:03d}", kind, now - timedelta(days=n * 9 + 1),
                    [f"ix-{c:03d}"])
            for c, case_id in enumerate(cases)
            for n in range(20)
            for kind in ("device_silent", "no_fix")
        ])
    with pg_sessions.begin() as s:
        s.execute(text("ANALYZE alerts"))
    signals = [
        HealthSignal("device_silent", f"ix-{c:03d}", str(cases[c]), None, "silent",
                     reported_at=now - timedelta(days=150))
        for c in (7, 42)
    ]
    [statement] = SupervisionLoop._closed_statements(signals)
    with pg_sessions() as s:
        sql = statement.compile(dialect=s.get_bind().dialect,
                                compile_kwargs={"literal_binds": True})
        plan = "\n".join(s.scalars(text(f"EXPLAIN {sql}")))
        assert "ix_alerts_case_type_raised" in plan, plan
        rows = s.execute(statement).all()
    assert sorted({row.device_id for row in rows}) == ["ix-007", "ix-042"]
    assert len(rows) == 2 * 17  # raised within the 150 days, of the one type


def test_the_closed_alerts_of_many_cases_are_read_in_bounded_queries(monkeypatch):
    """A storm puts a case of each silent device in one pass: the ids go in queries of at most
    `CLOSED_IDS_PER_QUERY`, and a signal without a case by its device id."""
    monkeypatch.setattr("backend.supervision.loop.CLOSED_IDS_PER_QUERY", 2)
    now = datetime.now(UTC)
    signals = [HealthSignal("no_fix", f"bq-{n}", str(uuid.uuid4()), None, "no fix",
                            reported_at=now) for n in range(5)]
    signals.append(HealthSignal("no_fix", "bq-none", None, None, "no fix", reported_at=now))
    ids = [
        {key.rsplit("_", 1)[0]: value for key, value in statement.compile(
            dialect=postgresql.dialect()).params.items() if key.endswith("id_1")}
        for statement in SupervisionLoop._closed_statements(signals)
    ]
    assert [len(i.get("case_id", [])) for i in ids] == [2, 2, 1, 0]
    assert ids[-1] == {"device_id": ["bq-none"]}
    assert sorted(c for i in ids for c in i.get("case_id", [])) == sorted(
        uuid.UUID(s.case_id) for s in signals if s.case_id)


def test_a_time_missing_from_the_store_is_measured_from_its_beginning() -> None:
    """Rows: heard and fixed after the store began; missing from the store with an older status
    report (lost with Redis); missing with a newer status report; never heard, registered before
    and after the store began; heard before the store began (kept: the store holds it)."""
    u = UNKNOWN
    seen = np.array([500, u, u, u, u, 50], dtype=np.int64)
    fixes = np.array([400, u, 600, u, u, 40], dtype=np.int64)
    status = np.array([300, 20, 700, u, u, 10], dtype=np.int64)
    registered = np.array([1, 1, 1, 5, 200, 1], dtype=np.int64)
    heard, fixed = measured_from(seen, fixes, status, registered, since=100)
    assert heard.tolist() == [500, 100, 700, 100, 200, 50]
    assert fixed.tolist() == [400, 100, 600, 100, 200, 40]


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_redis_losing_its_state_raises_no_alert_until_a_device_is_silent_since(stack):
    """60 devices heard 5 s ago, with a fix then, their last status report an hour old; Redis
    loses every key. The next pass raises nothing (each device may have been heard up to the
    loss); once the threshold has passed since, without word from them, they are silent."""
    now = datetime.now(UTC)
    devices = []
    with stack.runtime.sessions.begin() as s:
        for c in range(30):
            case = Case(reference=f"L-{uuid.uuid4().hex[:8]}", home_police_unit="RE07",
                        home_vt_desk="VT-RR")
            s.add(case)
            s.flush()
            for role in ("victim", "offender"):
                devices.append(f"lost-{c:02d}-{role}")
                s.add(Device(id=devices[-1], case_id=case.id, role=role, online=True,
                             last_status_at=now - timedelta(hours=1),
                             created_at=now - timedelta(days=30)))
    heard = (now - timedelta(seconds=5)).timestamp()
    stack.runtime.state.write({d: LastFix(heard, 52.0, 4.0, 5.0) for d in devices},
                              {d: heard for d in devices})
    loop = SupervisionLoop(stack.runtime, bus=RecordingBus())
    assert loop.run_once(now).signals == 0
    for key in stack.runtime.redis.scan_iter(f"{stack.settings.redis.key_prefix}:*"):
        stack.runtime.redis.delete(key)
    lost = datetime.now(UTC)
    assert loop.run_once(now + timedelta(seconds=5)).signals == 0
    assert _count(stack, Alert.type.in_(["device_silent", "no_fix"])) == 0
    assert loop.run_once(lost + timedelta(seconds=80)).signals == 0
    assert loop.run_once(lost + timedelta(seconds=100)).signals == 60
    assert sum(len(a.health_devices) for a in _alerts(stack, "device_silent")) == 60
