"""Police acknowledge back: a police token acts only within its units; its acknowledgement and
dispatch report move the alert, reach the timeline and the victim's device."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from device_protocol import Alarm, codec
from tests.support.waiting import wait_until
from tests.support.mqtt import publish

pytestmark = pytest.mark.services


def _as(stack, token: str) -> TestClient:
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


def test_police_ack_scope_and_state_reach_device(stack):
    stack.register("vic-401", home_unit="RE07")
    acks = stack.collector(stack.topics.ack("vic-401"))
    device = stack.device("vic-401")
    publish(device, stack.topics.alarm("vic-401"), codec.encode(Alarm(id="p-1")))
    api = stack.api()
    alert = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])
    assert alert["region"] is None  # bare alarm: routed to the case's home unit
    url = f"/api/v1/alerts/{alert['alert_id']}/police-ack"
    rotterdam = _as(stack, stack.token("police", {"units": ["RE07"]}))
    amsterdam = _as(stack, stack.token("police", {"units": ["RE05"]}))
    dispatcher = _as(stack, stack.token("dispatcher", {}))

    # Another unit's alert is out of scope: not found, like every out-of-scope read.
    assert amsterdam.post(url, json={"action": "acknowledge", "unit": "RE05"}).status_code == 404
    assert rotterdam.post(url, json={"action": "acknowledge", "unit": "RE05"}).status_code == 403
    assert dispatcher.post(url, json={"action": "acknowledge", "unit": "RE07"}).status_code == 403
    assert rotterdam.post(url, json={"action": "arrest", "unit": "RE07"}).status_code == 422
    assert api.get(f"/api/v1/alerts/{alert['alert_id']}").json()["state"] == "new"

    r = rotterdam.post(url, json={"action": "acknowledge", "unit": "RE07", "note": "melding"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    r = rotterdam.post(url, json={"action": "dispatched", "unit": "RE07", "note": "car 12"})
    assert r.status_code == 200 and r.json()["state"] == "dispatched"

    states = [codec.decode_ack(p).state for _, p, _ in acks.wait_for(3)]
    assert states == ["received", "acknowledged", "dispatched"]
    timeline = api.get(f"/api/v1/alerts/{alert['alert_id']}").json()["timeline"]
    transitions = [e for e in timeline if e["kind"] == "transition"]
    assert [(e["actor"], e["to_state"]) for e in transitions] == [
        ("police:test-police", "acknowledged"), ("police:test-police", "dispatched")]
    assert transitions[1]["detail"] == {"note": "police unit RE07: car 12"}
    acks.close()
    device.disconnect()
