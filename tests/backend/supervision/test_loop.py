"""The supervision loop on the stack: a silence storm of 100 devices gives grouped alerts (one per
case and a desk summary), repeated passes add nothing, and a panic alarm raised in the middle of
the storm reaches the police feed at once, ungrouped. Pursuit mode tightens the silence threshold
to 20 s. An alert the desk closed is not raised again for the same episode, only for a new one."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
from sqlalchemy import func, select, update

from backend.alerts.models import Alert, AlertEvent
from backend.cases.models import Case
from backend.devices.models import Device
from backend.supervision.grouping import STORM_TYPE
from backend.supervision.loop import SupervisionLoop
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
