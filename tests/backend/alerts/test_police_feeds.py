"""Which police feeds an alert goes to: every police unit among its recipients (the unit of its
place, and the case's home unit when it is elsewhere), and for a drill the exercise endpoint's
feed, never a live unit's; the escalation's "police unit directly" step the same."""

from __future__ import annotations

import time
from datetime import timedelta

import orjson
from sqlalchemy import select

from backend.alerts.flows import police_feeds, police_told
from backend.alerts.models import Alert
from backend.devices.models import Device
from backend.pipeline.context import AlertDraft
from backend.routing.policy import default_policy_text, parse_policy
from backend.api.app import create_app
from backend.audit.guard import screen_event_alone
from backend.auth.tokens import Principal
from backend.escalation.loop import EscalationLoop
from device_protocol import Alarm, codec
from fastapi.testclient import TestClient
from tests.backend.escalation.support import RecordingBus
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

ROTTERDAM_CS = (51.9244, 4.4690)  # VR17, RE07
AMSTERDAM_CS = (52.3731, 4.8926)  # VR13, RE05


def _as(stack, token: str) -> TestClient:
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


def _police(code: str, stands_in_for: str | None = None) -> dict:
    return {"kind": "police_unit", "code": code, "reason": "test",
            "stands_in_for": stands_in_for}


def test_each_police_recipient_once_in_order_and_nothing_else():
    desk = {"kind": "vt_desk", "code": "VT4607", "reason": "test"}
    assert police_feeds([_police("RE05"), desk, _police("RE07"), _police("RE05")]) == [
        "RE05", "RE07"]
    assert police_feeds([_police("exercise-police", "RE07")]) == ["exercise-police"]
    assert police_feeds([desk]) == police_feeds(None) == []


def _press(stack, device_id: str, at: tuple[float, float], exercise: bool = False) -> Alert:
    stack.register(device_id, exercise=exercise)
    device = stack.device(device_id)
    publish(device, stack.topics.alarm(device_id), codec.encode(
        Alarm(id="f-1", tst=time.time(), lat=at[0], lon=at[1], acc=10.0)))
    device.disconnect()

    def stored():
        with stack.runtime.sessions() as s:
            return s.scalar(select(Alert).where(Alert.device_id == device_id,
                                                Alert.followed_up_at.is_not(None)))
    return wait_until(stored)


def test_an_alarm_away_from_home_reaches_both_units_and_both_may_act_on_it(stack):
    police = stack.collector(stack.topics.police_filter())
    bus = RecordingBus()
    stack.runtime.bus, live_bus = bus, stack.runtime.bus
    try:
        alert = _press(stack, "vic-away", AMSTERDAM_CS)  # a case at home in RE07
    finally:
        stack.runtime.bus = live_bus
    got = police.wait_for(2)
    time.sleep(0.3)
    assert sorted(topic for topic, _, _ in police.messages) == [
        stack.topics.police_alerts("RE05"), stack.topics.police_alerts("RE07")]
    assert {orjson.loads(payload)["alert_id"] for _, payload, _ in got} == {str(alert.id)}
    # The console's own field stays out of the police's document, as from their webhooks.
    assert not any("police_delivery" in orjson.loads(payload) for _, payload, _ in got)
    police.close()

    # The home unit, told of it, sees it (list, document, console stream) and may act on it.
    [raised] = bus.named("alert.raised")
    url = f"/api/v1/alerts/{alert.id}"
    for units, sees in ((["RE07"], True), (["RE05"], True), (["RE01"], False)):
        who = Principal("token:p", "police", {"units": units})
        assert (screen_event_alone(who, raised) is not None
                and screen_event_alone(who, raised)[0] is not None) is sees
        api = _as(stack, stack.token("police", {"units": units}))
        assert [a["alert_id"] for a in api.get("/api/v1/alerts").json()] == (
            [str(alert.id)] if sees else [])
        assert api.get(url).status_code == (200 if sees else 404)
    home = _as(stack, stack.token("police", {"units": ["RE07"]}))
    r = home.post(f"{url}/police-ack", json={"action": "acknowledge", "unit": "RE07"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"


def test_a_drill_reaches_only_the_exercise_feed_also_when_it_escalates(stack):
    police = stack.collector(stack.topics.police_filter())
    alert = _press(stack, "vic-drill", ROTTERDAM_CS, exercise=True)
    [(topic, payload, _)] = police.wait_for(1)
    assert topic == stack.topics.police_alerts("exercise-police")
    assert orjson.loads(payload)["exercise"] is True

    loop = EscalationLoop(stack.runtime, clock=lambda: alert.raised_at, bus=RecordingBus())
    for after_s in (30, 45, 60):  # re-notify, desk supervisor, the police unit directly
        assert loop.run_once(alert.raised_at + timedelta(seconds=after_s)) == 1
    police.wait_for(2)
    time.sleep(0.3)
    assert [topic for topic, _, _ in police.messages] == [
        stack.topics.police_alerts("exercise-police")] * 2
    assert orjson.loads(police.messages[1][1])["escalation"]["target"] == "police_unit"
    police.close()


def test_police_told_are_the_recipients_and_the_units_the_escalation_called_so_far():
    desk = {"kind": "vt_desk", "code": "VT4607", "reason": "test"}
    steps = [{"index": 0, "target": "primary", "recipients": [desk]},
             {"index": 3, "target": "police_unit", "recipients": [_police("RE07")]}]
    alert = Alert(recipients=[desk], escalation={"steps": steps}, escalation_step=0)
    assert police_told(alert) == []
    alert.escalation_step = 3
    # Past the step without having called the police (acknowledged before it, re-alerted
    # after): not told.
    assert police_told(alert) == []
    alert.told_police = True  # as the step to the police marks it
    assert police_told(alert) == ["RE07"]
    alert.recipients = [_police("RE05"), _police("RE07")]
    assert police_told(alert) == ["RE05", "RE07"]
    assert police_told(Alert(recipients=None, escalation=None, escalation_step=None)) == []


def _desk_alone_approach(stack, device_id: str, home_unit: str = "RE07") -> tuple:
    """An approach in Rotterdam (RE07) that a policy makes a P1 for the desk alone: (the alert,
    the effects of its raise)."""
    text = default_policy_text().replace(
        "approach:      {priority: P2, recipients: [vt_desk]}",
        "approach:      {priority: P1, recipients: [vt_desk]}")
    flow, shipped = stack.runtime.flow, stack.runtime.flow.policy
    flow.policy = parse_policy(text)
    try:
        stack.register(device_id, home_unit=home_unit)
        with stack.runtime.sessions.begin() as s:
            case_id = s.get(Device, device_id).case_id
            effects = flow.raise_alerts(s, [AlertDraft(
                type="approach", device_id=device_id, case_id=case_id,
                message_id=f"appr-{device_id}", raised_at=time.time(), lat=ROTTERDAM_CS[0],
                lon=ROTTERDAM_CS[1], acc=10.0)])
    finally:
        flow.policy = shipped
    [alert] = effects.alerts
    return alert, effects


def test_a_unit_told_by_the_escalation_alone_hears_of_the_alert_being_closed(stack):
    """An alert the desk had alone (here an approach made a P1 for the desk by the policy)
    reaches the unit when its escalation calls the police; the unit then hears of its close
    too, as its webhooks do, and is not left with a car on a closed alert."""
    alert, effects = _desk_alone_approach(stack, "vic-appr")
    assert police_feeds(alert.recipients) == []
    flow = stack.runtime.flow
    police = stack.collector(stack.topics.police_filter())
    stack.runtime.dispatcher.send(effects.outbox)
    loop = EscalationLoop(stack.runtime, clock=lambda: alert.raised_at, bus=RecordingBus())
    for after_s in (30, 45, 60):  # re-notify, desk supervisor, the police unit directly
        assert loop.run_once(alert.raised_at + timedelta(seconds=after_s)) == 1
    police.wait_for(1)
    with stack.runtime.sessions.begin() as s:
        _, effects = flow.transition(s, alert.id, "resolve", actor="test")
    stack.runtime.dispatcher.send(effects.outbox)
    got = police.wait_for(2)
    police.close()
    assert [t for t, _, _ in got] == [stack.topics.police_alerts("RE07")] * 2
    assert orjson.loads(got[1][1])["state"] == "resolved"


def test_a_unit_the_escalation_never_called_hears_nothing_of_the_close(stack):
    """The same alert acknowledged before its step to the police, and re-alerted later: its
    escalation stands past that step, which it never carried out. The unit was not told of
    it: its feed gets nothing of the close, and it does not read the alert."""
    alert, _ = _desk_alone_approach(stack, "vic-ackd", home_unit="RE05")
    flow = stack.runtime.flow
    with stack.runtime.sessions.begin() as s:
        flow.transition(s, alert.id, "acknowledge", actor="test",
                        now=alert.raised_at + timedelta(seconds=10))
    loop = EscalationLoop(stack.runtime, clock=lambda: alert.raised_at, bus=RecordingBus())
    assert loop.run_once(alert.raised_at + timedelta(seconds=10 + 600)) == 1  # a re-alert
    with stack.runtime.sessions.begin() as s:
        stored = s.get(Alert, alert.id)
        assert stored.escalation_step == 4 and not stored.told_police  # past step 3
        _, effects = flow.transition(s, alert.id, "resolve", actor="test")
    assert [i.target for i in effects.outbox if "/police/" in i.target] == []
    place = _as(stack, stack.token("police", {"units": ["RE07"]}))
    assert place.get(f"/api/v1/alerts/{alert.id}").status_code == 404
