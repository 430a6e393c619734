"""The victim is told, and pursuit mode: a proximity alert warns the victim's device and puts the
case's devices on a 15 s report interval; closing the last open alert sets them back."""

from __future__ import annotations

import time
import uuid

import orjson

from backend.alerts.models import Alert
from backend.cases.device_commands import warn_reason, warned_devices
from backend.devices.models import Device
from backend.pipeline.context import AlertDraft


def _raise(stack, case_id: uuid.UUID, kind: str, message_id: str):
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(
            s,
            [
                AlertDraft(
                    type=kind,
                    device_id="pm-offender",
                    case_id=case_id,
                    message_id=message_id,
                    raised_at=time.time(),
                )
            ],
        )
    stack.runtime.dispatcher.send(effects.outbox)
    return effects.alerts[0]


def test_warn_and_pursuit_mode(stack):
    case_id = stack.register("pm-victim")
    with stack.runtime.sessions.begin() as s:
        s.add(
            Device(
                id="pm-offender",
                case_id=case_id,
                role="offender",
                report_interval_s=120,
            )
        )
    victim = stack.collector(stack.topics.cmd("pm-victim"))
    offender = stack.collector(stack.topics.cmd("pm-offender"))

    first = _raise(stack, case_id, "proximity", "px-1")
    commands = [orjson.loads(p) for _, p, _ in victim.wait_for(2)]
    assert {"cmd": "warn", "reason": "proximity", "ref": str(first.id)} in commands
    assert {"cmd": "config", "report_interval_s": 15} in commands
    assert [orjson.loads(p) for _, p, _ in offender.wait_for(1)] == [
        {"cmd": "config", "report_interval_s": 15}
    ]

    second = _raise(
        stack, case_id, "zone_breach", "zb-1"
    )  # already in pursuit: warn only
    [(_, payload, _)] = victim.wait_for(3)[2:]
    assert orjson.loads(payload) == {
        "cmd": "warn",
        "reason": "zone",
        "ref": str(second.id),
    }

    api = stack.api()
    assert api.post(f"/api/v1/alerts/{first.id}/resolve").status_code == 200
    time.sleep(0.5)
    assert len(offender.messages) == 1  # one alert still open: pursuit goes on
    assert api.post(f"/api/v1/alerts/{second.id}/false-alarm").status_code == 200
    [(_, payload, _)] = offender.wait_for(2)[1:]
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 120}
    [(_, payload, _)] = victim.wait_for(4)[3:]
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 60}
    victim.close()
    offender.close()


def test_a_changed_report_interval_is_sent_to_the_device_except_in_pursuit(stack):
    """The device reports at the interval the case director set, from the moment she sets it:
    it is told at once. While its case is in pursuit the pursuit interval holds (the new one
    follows when the pursuit ends)."""
    case_id = stack.register("ri-victim")
    with stack.runtime.sessions.begin() as s:
        s.add(Device(id="pm-offender", case_id=case_id, role="offender"))
    commands = stack.collector(stack.topics.cmd("ri-victim"))
    api = stack.api()

    assert api.patch("/api/v1/devices/ri-victim",
                     json={"report_interval_s": 30}).status_code == 200
    [(_, payload, _)] = commands.wait_for(1)
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 30}
    assert api.patch("/api/v1/devices/ri-victim", json={"active": True}).status_code == 200

    alert = _raise(stack, case_id, "proximity", "ri-1")  # pursuit: warn, 15 s
    assert len(commands.wait_for(3)) == 3
    assert api.patch("/api/v1/devices/ri-victim",
                     json={"report_interval_s": 45}).status_code == 200
    assert api.post(f"/api/v1/alerts/{alert.id}/resolve").status_code == 200
    [*_, (_, last, _)] = commands.wait_for(4)
    assert orjson.loads(last) == {"cmd": "config", "report_interval_s": 45}
    time.sleep(0.5)
    assert len(commands.messages) == 4  # nothing for the unchanged interval, nor in pursuit


def test_pursuit_starts_when_two_urgent_alerts_are_raised_before_either_follow_up(stack):
    """A fix in a zone and near the victim raises two alerts in one batch, and a victim who
    presses twice raises the second before the first one's follow-up: the pursuit starts
    once (counting the open alerts, == 1, it never started)."""
    case_id = stack.register("pb-victim")
    with stack.runtime.sessions.begin() as s:
        s.add(Device(id="pm-offender", case_id=case_id, role="offender", report_interval_s=120))
    offender = stack.collector(stack.topics.cmd("pm-offender"))
    flow = stack.runtime.flow
    pending = []
    for kind, message_id in (("zone_breach", "pb-1"), ("proximity", "pb-2")):
        with stack.runtime.sessions.begin() as s:
            effects = flow.raise_alerts(s, [AlertDraft(
                type=kind, device_id="pm-offender", case_id=case_id, message_id=message_id,
                raised_at=time.time())], follow_up=False)
        pending += effects.follow_ups
    for item in pending:
        with stack.runtime.sessions.begin() as s:
            stack.runtime.dispatcher.send(flow.follow_up(s, [item]).outbox)
    [(_, payload, _)] = offender.wait_for(1)
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 15}
    time.sleep(0.5)
    assert len(offender.messages) == 1  # once


def test_an_approach_is_the_desks_and_warns_the_victim_only_where_the_policy_says_so(stack):
    """The shipped policy gives an approach to the desk alone (DESIGN section 5): no warn, but
    pursuit mode. Where a policy adds `victim: warn`, an approach of a zone's ring warns
    `zone`, of the victim's own ring `proximity` (the protocol's two reasons)."""
    case_id = stack.register("ap-victim")
    with stack.runtime.sessions.begin() as s:
        s.add(Device(id="pm-offender", case_id=case_id, role="offender"))
    victim = stack.collector(stack.topics.cmd("ap-victim"))
    geofence = {"measure_id": "m-1", "event": "approach", "other_device_id": None}
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(s, [
            AlertDraft(type="approach", device_id="pm-offender", case_id=case_id,
                       message_id="ap-zone", raised_at=time.time(),
                       detail={"geofence": geofence}),
        ])
    stack.runtime.dispatcher.send(effects.outbox)
    [(_, payload, _)] = victim.wait_for(1)
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 15}
    time.sleep(0.5)
    assert len(victim.messages) == 1  # no warn
    victim.close()
    assert warn_reason("approach", geofence) == "zone"
    assert warn_reason("approach", {**geofence, "other_device_id": "ap-victim"}) == "proximity"
    assert warn_reason("zone_breach", None) == "zone"


def test_a_warn_goes_to_the_victim_devices_the_routing_named():
    """Live: the named devices; an exercise: the case's own devices the exercise endpoint
    stands in for; an alert whose routing named no victim device warns nobody."""
    live = Alert(recipients=[{"kind": "vt_desk", "code": "VT17"},
                             {"kind": "victim_device", "code": "v-2"},
                             {"kind": "victim_device", "code": "v-1"}])
    drill = Alert(recipients=[{"kind": "victim_device", "code": "exercise-device",
                               "exercise": True, "stands_in_for": "v-3"}])
    assert warned_devices(live) == ["v-1", "v-2"]
    assert warned_devices(drill) == ["v-3"]
    assert warned_devices(Alert(recipients=[{"kind": "vt_desk", "code": "VT17"}])) == []
    assert warned_devices(Alert(recipients=None)) == []
