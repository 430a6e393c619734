"""Webhook hand-off end to end, on real services and on the embedded defaults: a victim presses
panic, operators acknowledge and resolve; a real HTTP receiver that verifies every signature gets
every message once per subscription although it answers 503 at first; the retries are on the
delivery log and the alert's timeline."""

from __future__ import annotations

import orjson
import pytest

from device_protocol import Alarm, codec
from tests.support.webhooks import subscribe
from tests.support.waiting import wait_until
from tests.support.mqtt import publish

pytestmark = pytest.mark.services


def _alert_id(api) -> str:
    return wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])["alert_id"]


def test_every_message_reaches_each_subscription_once_despite_503s(webhooks, receivers):
    stack = webhooks
    api = stack.api()
    flaky = receivers(fail_first=2)
    steady = receivers()
    subscribe(api, flaky, police_units=["RE07"], priorities=["P1", "P2"])
    subscribe(api, steady)
    stack.register("vic-101")
    device = stack.device("vic-101")
    publish(device, stack.topics.alarm("vic-101"), codec.encode(Alarm(id="w-1")))
    alert_id = _alert_id(api)
    assert api.post(f"/api/v1/alerts/{alert_id}/acknowledge").status_code == 200
    assert api.post(f"/api/v1/alerts/{alert_id}/resolve").status_code == 200

    for receiver in (flaky, steady):
        got = receiver.wait_for(3)
        assert receiver.bad_signatures == 0
        events = sorted((orjson.loads(r.body) for r in got), key=lambda e: e["sequence"])
        assert [(e["sequence"], e["data"]["state"]) for e in events] == [
            (1, "new"), (2, "acknowledged"), (3, "resolved")]
        assert all(e["specversion"] == "1.0" and e["subject"] == alert_id for e in events)
        assert "police_delivery" not in events[0]["data"]  # console-only field
        assert {r.headers["content-type"] for r in got} == {
            "application/cloudevents+json; charset=utf-8"}
    assert flaky.refused == 2 and flaky.requests == 5
    assert steady.refused == 0 and steady.requests == 3
    assert flaky.duplicates == steady.duplicates == 0

    deliveries = wait_until(
        lambda: (ds := api.get("/api/v1/deliveries", params={"alert_id": alert_id}).json())
        and {d["state"] for d in ds} == {"delivered"} and ds)
    assert len(deliveries) == 6
    doc = api.get(f"/api/v1/alerts/{alert_id}").json()
    assert doc["police_delivery"] == "delivered"
    assert sum(d["attempts"] for d in deliveries) == 8
    assert {d["webhook_id"] for d in deliveries} == set(flaky.received) | set(steady.received)
    retried = [d for d in deliveries if d["attempts"] > 1]
    logs = [api.get(f"/api/v1/deliveries/{d['id']}").json()["log"] for d in retried]
    statuses = sorted(tuple(a["status"] for a in log) for log in logs)
    assert statuses in ([(503, 200), (503, 200)], [(503, 503, 200)])
    assert all(log[0]["outcome"] == "retrying" and log[-1]["outcome"] == "delivered"
               for log in logs)

    timeline = [e for e in doc["timeline"] if e["kind"] == "delivery"]
    assert len(timeline) == 8
    assert sorted(e["detail"]["status"] for e in timeline) == [200] * 6 + [503, 503]
    assert all(e["actor"] == "webhooks" for e in timeline)
    device.disconnect()


def test_receiver_down_past_deadline_shows_police_not_reached_then_replay(webhooks, receivers):
    stack = webhooks
    api = stack.api()
    receiver = receivers(down=True)
    sub = subscribe(api, receiver)
    stack.register("vic-102")
    device = stack.device("vic-102")
    publish(device, stack.topics.alarm("vic-102"), codec.encode(Alarm(id="w-2", kind="panic")))
    alert_id = _alert_id(api)

    doc = wait_until(lambda: (d := api.get(f"/api/v1/alerts/{alert_id}").json())
                     ["police_delivery"] == "unreachable" and d, timeout=20)
    assert doc["priority"] == "P1"
    [delivery] = api.get("/api/v1/deliveries", params={"alert_id": alert_id}).json()
    assert delivery["state"] == "unreachable" and delivery["attempts"] >= 2
    assert "police not reached: phone the control room" in delivery["last_error"]
    assert receiver.received == {} and receiver.refused == delivery["attempts"]

    receiver.down = False
    r = api.post(f"/api/v1/alerts/{alert_id}/deliveries/replay")
    assert r.status_code == 200 and [d["id"] for d in r.json()] == [delivery["id"]]
    [got] = receiver.wait_for(1)
    assert got.webhook_id == delivery["webhook_id"]  # same id: the receiver can deduplicate
    wait_until(lambda: api.get(f"/api/v1/alerts/{alert_id}").json()["police_delivery"]
               == "delivered")
    assert api.post(f"/api/v1/alerts/{alert_id}/deliveries/replay").status_code == 409

    # Replaying one delivered message sends it again under the same webhook id.
    r = api.post(f"/api/v1/deliveries/{delivery['id']}/replay")
    assert r.status_code == 200
    wait_until(lambda: receiver.duplicates == 1)
    assert sub["id"] == delivery["subscription_id"]
    device.disconnect()


def test_a_partner_that_cannot_be_reached_is_recorded_not_the_police_not_reached(
        webhooks, receivers):
    """An archive (a `partner` subscription) that is down: its delivery ends unreachable and
    the alert's `police_delivery` says `failed`; the police system got it, so the desk is not
    told to phone the control room. The same archive as a police system would be."""
    stack = webhooks
    api = stack.api()
    police, archive = receivers(), receivers(down=True)
    subscribe(api, police, police_units=["RE07"])
    kept = subscribe(api, archive, partner=True)
    assert kept["partner"] is True
    stack.register("vic-103")
    device = stack.device("vic-103")
    publish(device, stack.topics.alarm("vic-103"), codec.encode(Alarm(id="w-3", kind="panic")))
    alert_id = _alert_id(api)
    police.wait_for(1)
    doc = wait_until(lambda: (d := api.get(f"/api/v1/alerts/{alert_id}").json())
                     ["police_delivery"] in ("failed", "unreachable") and d, timeout=20)
    assert doc["priority"] == "P1" and doc["police_delivery"] == "failed"
    states = {d["subscription_id"]: d["state"]
              for d in api.get("/api/v1/deliveries", params={"alert_id": alert_id}).json()}
    assert states[kept["id"]] == "unreachable"

    r = api.patch(f"/api/v1/subscriptions/{kept['id']}", json={"partner": False})
    assert r.status_code == 200 and r.json()["partner"] is False
    api.post(f"/api/v1/alerts/{alert_id}/acknowledge")  # a change: the state is worked out again
    wait_until(lambda: api.get(f"/api/v1/alerts/{alert_id}").json()["police_delivery"]
               == "unreachable", timeout=20)
    device.disconnect()
