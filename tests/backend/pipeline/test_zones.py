"""Zones and proximity end to end, on both back ends: measures registered through the API (or
straight in the database, as another process would), devices publishing fixes over MQTT, alerts
on the police feed."""

from __future__ import annotations

import time

import orjson
import pytest
from sqlalchemy import func, select

from backend.alerts.models import Alert
from backend.measures import flows
from device_protocol import codec
from tests.backend.measures.places import (
    ROTTERDAM,
    ban_feature,
    offset,
    register_pair,
    zone_feature,
)
from tests.support.mqtt import publish

pytestmark = pytest.mark.services  # the stack runs on both back ends, one of them services


def _fix(lat_lon: tuple[float, float], tst: float, acc: float = 10.0) -> bytes:
    return codec.encode(codec.Fix(tst=tst, lat=lat_lon[0], lon=lat_lon[1], acc=acc))


def _wait_last_fix(stack, device_id: str, tst: float, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        last = stack.runtime.state.get_last_fix(device_id)
        if last is not None and last.tst >= tst:
            return
        time.sleep(0.02)
    raise AssertionError(f"fix of {device_id} not processed")


def _alerts(stack, device_id: str) -> list[Alert]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(Alert).where(Alert.device_id == device_id)))


def _of_type(messages, kind: str) -> list[dict]:
    docs = [orjson.loads(p) for _, p, _ in messages]
    return [d for d in docs if d["type"] == kind]


def test_entering_an_exclusion_zone_raises_one_breach(stack):
    case_id = register_pair(stack, "off-z1", "vic-z1")
    api = stack.api()
    r = api.post(f"/api/v1/cases/{case_id}/measures",
                 json=zone_feature("off-z1", measure_id="zone-z1"))
    assert r.status_code == 201, r.text
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("off-z1")
    lat, lon = ROTTERDAM
    t0 = time.time() - 300
    track = [offset(lat, lon, 1_500, 0), offset(lat, lon, 600, 0), (lat, lon),
             offset(lat, lon, 20, 10), offset(lat, lon, -30, 5)]
    for i, point in enumerate(track):
        publish(device, stack.topics.loc("off-z1"), _fix(point, t0 + 30 * i))
    _wait_last_fix(stack, "off-z1", t0 + 30 * (len(track) - 1))
    [(topic, payload, _)] = police.wait_for(1)
    time.sleep(1.0)  # nothing else may follow
    assert len(police.messages) == 1
    doc = orjson.loads(payload)
    assert doc["type"] == "zone_breach" and doc["priority"] == "P1"
    assert doc["message_id"] == f"geo-zone-z1-zone_breach-confirmed-{int(t0 + 60)}"
    assert doc["location"]["source"] == "fix"
    assert abs(doc["location"]["lat"] - lat) < 1e-6
    assert topic == stack.topics.police_alerts("RE07")
    [alert] = _alerts(stack, "off-z1")
    timeline = api.get(f"/api/v1/alerts/{alert.id}").json()["timeline"]
    geo = timeline[0]["detail"]["geofence"]
    assert geo["measure_id"] == "zone-z1" and geo["confidence"] == "confirmed"
    assert geo["basis"] == "fix" and geo["inside_m"] > 100

    # A redelivered fix raises nothing new.
    publish(device, stack.topics.loc("off-z1"), _fix(track[2], t0 + 60))
    time.sleep(0.5)
    assert len(_alerts(stack, "off-z1")) == 1
    police.close()
    device.disconnect()


def test_a_possible_breach_confirmed_later_is_one_alert_the_police_hear_confirmed(stack):
    case_id = register_pair(stack, "off-z2", "vic-z2")
    api = stack.api()
    r = api.post(f"/api/v1/cases/{case_id}/measures",
                 json=zone_feature("off-z2", measure_id="zone-z2"))
    assert r.status_code == 201, r.text
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("off-z2")
    lat, lon = ROTTERDAM
    t0 = time.time() - 300
    # Two fixes whose accuracy circle straddles the border (possible), then one deep inside.
    border = offset(lat, lon, 190, 0)
    for i in range(2):
        publish(device, stack.topics.loc("off-z2"), _fix(border, t0 + 30 * i, acc=50.0))
    [(_, first, _)] = police.wait_for(1)
    publish(device, stack.topics.loc("off-z2"), _fix((lat, lon), t0 + 60))
    _wait_last_fix(stack, "off-z2", t0 + 60)
    [_, (_, second, _)] = police.wait_for(2)
    time.sleep(1.0)  # nothing else may follow
    assert len(police.messages) == 2
    first_doc, second_doc = orjson.loads(first), orjson.loads(second)
    assert first_doc["message_id"] == f"geo-zone-z2-zone_breach-possible-{int(t0 + 30)}"
    assert (first_doc["sequence"], first_doc["flags"]) == (1, ["geofence_possible"])
    assert second_doc["alert_id"] == first_doc["alert_id"]
    assert (second_doc["sequence"], second_doc["flags"]) == (2, ["geofence_confirmed"])
    [alert] = _alerts(stack, "off-z2")
    timeline = api.get(f"/api/v1/alerts/{alert.id}").json()["timeline"]
    assert [e["kind"] for e in timeline] == ["raised", "confirmed"]
    assert timeline[1]["detail"]["geofence"]["confidence"] == "confirmed"
    police.close()
    device.disconnect()


def test_offender_converging_on_victim_raises_proximity(stack):
    case_id = register_pair(stack, "off-c1", "vic-c1")
    r = stack.api().post(f"/api/v1/cases/{case_id}/measures",
                         json=ban_feature("off-c1", "vic-c1", radius_m=500, measure_id="ban-c1"))
    assert r.status_code == 201, r.text
    police = stack.collector(stack.topics.police_filter())
    victim, offender = stack.device("vic-c1"), stack.device("off-c1")
    lat, lon = ROTTERDAM
    t0 = time.time() - 60
    publish(victim, stack.topics.loc("vic-c1"), _fix((lat, lon), t0))
    _wait_last_fix(stack, "vic-c1", t0)
    for i, metres in enumerate((2_000, 900, 150, 100)):
        publish(offender, stack.topics.loc("off-c1"),
                _fix(offset(lat, lon, 0, metres), t0 + 5 + 5 * i))
    [(_, payload, _)] = police.wait_for(1)
    time.sleep(1.0)
    assert len(police.messages) == 1
    doc = orjson.loads(payload)
    assert doc["type"] == "proximity" and doc["priority"] == "P1"
    assert doc["device"] == {"id": "off-c1", "role": "offender"}
    [alert] = _alerts(stack, "off-c1")
    assert alert.message_id.startswith("geo-ban-c1-proximity-")
    police.close()
    victim.disconnect()
    offender.disconnect()


def test_a_victim_whose_clock_runs_behind_gets_her_proximity_at_his_next_fix(stack):
    """Her phone's clock runs 150 s behind: her status report and her live fix show it. The
    offender's next fix, 100 m from her, is paired with hers on the common time base and
    raises the proximity. Without the correction her fix was 150 s older than his (beyond
    `partner_max_age_s`): no pair, and no alert at all."""
    case_id = register_pair(stack, "off-k1", "vic-k1")
    r = stack.api().post(f"/api/v1/cases/{case_id}/measures",
                         json=ban_feature("off-k1", "vic-k1", radius_m=500, measure_id="ban-k1"))
    assert r.status_code == 201, r.text
    police = stack.collector(stack.topics.police_filter())
    victim, offender = stack.device("vic-k1"), stack.device("off-k1")
    lat, lon = ROTTERDAM
    her_clock = time.time() - 150
    publish(victim, stack.topics.status("vic-k1"), orjson.dumps({"tst": her_clock}))
    publish(victim, stack.topics.loc("vic-k1"), _fix((lat, lon), her_clock))
    _wait_last_fix(stack, "vic-k1", her_clock)
    his_clock = time.time()
    publish(offender, stack.topics.loc("off-k1"), _fix(offset(lat, lon, 0, 100), his_clock))
    [(_, payload, _)] = police.wait_for(1)
    doc = orjson.loads(payload)
    assert doc["type"] == "proximity" and doc["device"] == {"id": "off-k1", "role": "offender"}
    [alert] = _alerts(stack, "off-k1")
    assert alert.message_id == f"geo-ban-k1-proximity-confirmed-{int(his_clock)}"
    police.close()
    victim.disconnect()
    offender.disconnect()


def test_measure_stored_by_another_process_is_picked_up_while_running(stack):
    """No API call in this process: the worker sees the new catalogue version by polling."""
    case_id = register_pair(stack, "off-p1", "vic-p1")
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("off-p1")
    lat, lon = ROTTERDAM
    t0 = time.time() - 600
    publish(device, stack.topics.loc("off-p1"), _fix((lat, lon), t0))  # inside, no measure yet
    _wait_last_fix(stack, "off-p1", t0)
    live = stack.runtime.geofences
    deadline = time.monotonic() + 5
    while live.version is None and time.monotonic() < deadline:
        time.sleep(0.02)
    loaded = live.version
    assert loaded is not None and len(live.engine.index) == 0
    with stack.runtime.sessions.begin() as s:
        flows.create(s, case_id, zone_feature("off-p1", measure_id="zone-p1"),
                     stack.runtime.settings.geofence.to_config())
    tst = t0
    deadline = time.monotonic() + 15
    while not police.messages and time.monotonic() < deadline:
        tst += 10
        publish(device, stack.topics.loc("off-p1"), _fix((lat, lon), tst))
        time.sleep(0.5)
    docs = _of_type(police.wait_for(1), "zone_breach")
    assert len(docs) == 1
    assert live.version is not None and live.version > loaded
    with stack.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)) == 1
    police.close()
    device.disconnect()


def test_deactivated_measure_stops_alerting(stack):
    case_id = register_pair(stack, "off-d1", "vic-d1")
    api = stack.api()
    api.post(f"/api/v1/cases/{case_id}/measures", json=zone_feature("off-d1", measure_id="zone-d1"))
    assert api.delete(f"/api/v1/cases/{case_id}/measures/zone-d1").status_code == 200
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("off-d1")
    lat, lon = ROTTERDAM
    t0 = time.time() - 200
    for i in range(3):
        publish(device, stack.topics.loc("off-d1"), _fix((lat, lon), t0 + 30 * i))
    _wait_last_fix(stack, "off-d1", t0 + 60)
    time.sleep(0.5)
    assert police.messages == [] and _alerts(stack, "off-d1") == []
    police.close()
    device.disconnect()
