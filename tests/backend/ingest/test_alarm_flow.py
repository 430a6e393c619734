"""The alarm path end to end, on real services and on the embedded defaults: a registered victim
device presses panic; the police feed gets the alert, the device gets `received`; a repeated
alarm id leaves one alert and one police message; operators move the alert through the API."""

from __future__ import annotations

import time

import orjson
from sqlalchemy import select

from backend.alerts.models import Alert, AlertEvent
from backend.pipeline.context import RawMessage
from device_protocol import Alarm, codec
from tests.support.db import rows
from tests.support.mqtt import publish

ROTTERDAM_CS = (51.9244, 4.4690)  # in police unit RE07
AMSTERDAM_DAM = (52.3731, 4.8926)  # in police unit RE05


def test_panic_reaches_police_and_device_once(stack):
    stack.register("vic-001")
    police = stack.collector(stack.topics.police_filter())
    acks = stack.collector(stack.topics.ack("vic-001"))
    device = stack.device("vic-001")
    alarm = Alarm(id="a-1", kind="panic", tst=time.time(), lat=AMSTERDAM_DAM[0],
                  lon=AMSTERDAM_DAM[1], acc=9.0)

    publish(device, stack.topics.alarm("vic-001"), codec.encode(alarm))

    # Routed by the fix (RE05), and the case's home unit (RE07) is told too.
    feeds = {topic: payload for topic, payload, _ in police.wait_for(2)}
    assert set(feeds) == {stack.topics.police_alerts("RE05"), stack.topics.police_alerts("RE07")}
    document = orjson.loads(feeds[stack.topics.police_alerts("RE05")])
    assert document["region"]["police_unit"] == "RE05"
    assert document["type"] == "panic" and document["priority"] == "P1"
    assert document["state"] == "new" and document["message_id"] == "a-1"
    assert document["location"]["source"] == "alarm"
    assert document["region"]["gemeente_code"] == "GM0363"
    [(_, ack_payload, _)] = acks.wait_for(1)
    ack = codec.decode_ack(ack_payload)
    assert (ack.ref, ack.state) == ("a-1", "received")

    # The same alarm again (a retransmission): nothing new anywhere.
    publish(device, stack.topics.alarm("vic-001"), codec.encode(alarm))
    time.sleep(1.0)
    assert len(police.messages) == 2
    assert len(acks.messages) == 1
    assert rows(stack.runtime.sessions, Alert, device_id="vic-001") == 1
    for c in (police, acks):
        c.close()
    device.disconnect()


def _alarm_raw(stack, device_id: str, body: dict) -> RawMessage:
    return RawMessage(stack.topics.alarm(device_id), orjson.dumps(body), 0, 0, time.time())


def test_an_alarm_id_of_any_script_is_the_devices_own_and_one_alert(stack):
    """DESIGN 4: `id` is any string of 1-64 characters, reused on retransmission. One of 64
    characters with a space and Cyrillic is stored as sent, acknowledged with it as `ref`, and
    its retransmission (the battery dropped meanwhile: other bytes) raises nothing new."""
    stack.register("vic-004")
    acks = stack.collector(stack.topics.ack("vic-004"))
    alarm_id = "Druk 17 " + "ж" * 56
    lane = stack.worker.alarms
    with lane.busy:
        for batt in (80, 79):
            assert stack.worker.handle(lane, [_alarm_raw(stack, "vic-004",
                                                         {"id": alarm_id, "batt": batt})])
    with stack.runtime.sessions() as s:
        stored = list(s.scalars(select(Alert.message_id).where(Alert.device_id == "vic-004")))
    assert stored == [alarm_id]
    [(_, payload, _)] = acks.wait_for(1)
    assert codec.decode_ack(payload).ref == alarm_id


def test_operator_transitions_reach_device_and_timeline(stack):
    stack.register("vic-002")
    acks = stack.collector(stack.topics.ack("vic-002"))
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-002")
    publish(device, stack.topics.alarm("vic-002"), codec.encode(Alarm(id="b-7")))
    police.wait_for(1)
    api = stack.api()
    [alert] = api.get("/api/v1/alerts").json()
    assert alert["flags"] == ["no_device_time", "no_fix"]  # bare alarm: no time, no fix known
    assert alert["region"] is None and alert["case"]["reference"].startswith("C-")

    r = api.post(f"/api/v1/alerts/{alert['alert_id']}/acknowledge", json={"note": "calling"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["sequence"] == 2
    again = api.post(f"/api/v1/alerts/{alert['alert_id']}/acknowledge")
    assert again.status_code == 200 and again.json()["sequence"] == 2  # idempotent
    assert api.post(f"/api/v1/alerts/{alert['alert_id']}/resolve").json()["state"] == "resolved"
    refused = api.post(f"/api/v1/alerts/{alert['alert_id']}/dispatch")
    assert refused.status_code == 409

    states = [codec.decode_ack(p).state for _, p, _ in acks.wait_for(3)]
    assert states == ["received", "acknowledged", "resolved"]
    updates = [orjson.loads(p) for _, p, _ in police.wait_for(3)]
    assert [(u["state"], u["sequence"]) for u in updates] == [
        ("new", 1), ("acknowledged", 2), ("resolved", 3)]
    timeline = api.get(f"/api/v1/alerts/{alert['alert_id']}").json()["timeline"]
    assert [(e["kind"], e["to_state"]) for e in timeline] == [
        ("raised", "new"), ("transition", "acknowledged"), ("transition", "resolved")]
    assert timeline[1]["actor"] == "admin" and timeline[1]["detail"] == {"note": "calling"}
    assert rows(stack.runtime.sessions, AlertEvent) == 3
    assert api.get("/api/v1/alerts").json() == []  # no longer open
    for c in (police, acks):
        c.close()
    device.disconnect()


def test_alarm_without_fix_uses_last_known_position(stack):
    stack.register("vic-003")
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-003")
    fix = codec.Fix(tst=time.time() - 5, lat=ROTTERDAM_CS[0], lon=ROTTERDAM_CS[1], acc=15)
    publish(device, stack.topics.loc("vic-003"), codec.encode(fix))
    deadline = time.monotonic() + 5
    while stack.runtime.state.get_last_fix("vic-003") is None and time.monotonic() < deadline:
        time.sleep(0.02)
    publish(device, stack.topics.alarm("vic-003"), b'{"id": "c-1", "kind": "panic"}')
    [(topic, payload, _)] = police.wait_for(1)
    document = orjson.loads(payload)
    assert topic == stack.topics.police_alerts("RE07")
    assert document["location"]["source"] == "last_known"
    assert document["location"]["acc_m"] == 15
    assert "last_known_position" in document["flags"]
    police.close()
    device.disconnect()
