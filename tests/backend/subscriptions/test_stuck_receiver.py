"""A receiver that never finishes its answer, on real services: it sends one byte at a time, so
no read timeout ever trips. Each attempt ends at its total time limit and the alert ends
"police not reached: phone the control room". An attempt that hangs beyond its claim lease (a
sender without a total limit stands in for one) is swept to the same end, and the rounds go
on for other receivers meanwhile."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from backend.police.client import Timeouts, Urllib3WebhookSender
from backend.subscriptions.worker import SUPERSEDED, DeliveryWorker
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until
from tests.support.webhooks import subscribe

pytestmark = pytest.mark.services

NOTICE = "police not reached: phone the control room"


class Tee:
    """The worker's bus, noting what it publishes."""

    def __init__(self, bus: Any) -> None:
        self._bus = bus
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        self._bus.publish(event)


def _restart(stack, sender: Urllib3WebhookSender, **config: Any) -> tuple[DeliveryWorker, Tee]:
    worker = stack.runtime.deliveries
    worker.stop()
    worker._sender = sender
    worker._bus = tee = Tee(worker._bus)
    worker.config = dataclasses.replace(worker.config, **config)
    worker.start()
    return worker, tee


def _raise_p1(stack, api, device_id: str) -> str:
    stack.register(device_id)
    device = stack.device(device_id)
    publish(device, stack.topics.alarm(device_id), codec.encode(Alarm(id="s-1", kind="panic")))
    alert = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])
    device.disconnect()
    return alert["alert_id"]


def _deliveries(api, alert_id: str) -> list[dict[str, Any]]:
    return api.get("/api/v1/deliveries", params={"alert_id": alert_id}).json()


def _log(api, delivery_id: str) -> list[dict[str, Any]]:
    return api.get(f"/api/v1/deliveries/{delivery_id}").json()["log"]


def test_a_trickling_receiver_ends_unreachable_at_the_total_timeout(webhooks, receivers):
    stack = webhooks
    api = stack.api()
    receiver = receivers(trickle_s=0.1)  # its whole answer would take 100 s
    subscribe(api, receiver)
    _worker, tee = _restart(stack, Urllib3WebhookSender(
        Timeouts(connect_s=1.0, read_s=1.0, write_s=1.0, total_s=0.5)))
    alert_id = _raise_p1(stack, api, "vic-301")

    # Attempts of 0.5 s each, retried until the deadline (4 s): unreachable long before the
    # sweep (deadline + lease, 14 s) could have ended it.
    wait_until(lambda: api.get(f"/api/v1/alerts/{alert_id}").json()["police_delivery"]
               == "unreachable", timeout=12)
    [delivery] = _deliveries(api, alert_id)
    assert delivery["state"] == "unreachable" and delivery["attempts"] >= 2
    log = _log(api, delivery["id"])
    assert [a["error"] for a in log] == ["timeout"] * len(log)
    # Each ended at its total limit, not after the receiver's 100 s (the bound leaves room for
    # a loaded CI machine's pauses, as the 0.5 s limit alone does not).
    assert all(a["duration_ms"] < 5_000 for a in log)
    assert "no delivery within 4 s" in log[-1]["reason"]
    assert [e["notice"] for e in tee.events if e.get("notice")] == [NOTICE]


def test_an_attempt_hanging_past_its_lease_is_swept_and_rounds_go_on(webhooks, receivers):
    stack = webhooks
    api = stack.api()
    stuck = receivers(trickle_s=0.1)
    flaky = receivers(fail_first=1)  # its retry is made by a round
    subscribe(api, stuck)
    subscribe(api, flaky)
    # No total limit to speak of: every attempt to `stuck` hangs far beyond its lease (2 s).
    # A byte every 0.1 s keeps it from a read timeout, with room for a receiver thread that a
    # busy machine holds up for a second or more.
    _worker, tee = _restart(stack, Urllib3WebhookSender(
        Timeouts(connect_s=1.0, read_s=5.0, write_s=1.0, total_s=300.0)), claim_lease_s=2.0)
    alert_id = _raise_p1(stack, api, "vic-302")
    try:
        [got] = flaky.wait_for(1, timeout=5)  # a round retried it while `stuck` hangs
        doc = wait_until(lambda: (d := api.get(f"/api/v1/alerts/{alert_id}").json())
                         ["police_delivery"] == "unreachable" and d, timeout=15)
        assert doc["priority"] == "P1"
        states = {d["webhook_id"]: d for d in _deliveries(api, alert_id)}
        swept = next(d for d in states.values() if d["webhook_id"] != got.webhook_id)
        assert states[got.webhook_id]["state"] == "delivered"
        assert swept["state"] == "unreachable"
        ended = [a for a in _log(api, swept["id"]) if a["outcome"] != SUPERSEDED]
        assert len(ended) == 1, ended  # the sweep's, and no attempt's of its own
        assert (ended[0]["status"], ended[0]["error"]) == (None, "timeout")
        assert "no outcome within 4 s" in ended[0]["reason"]
        assert [e["notice"] for e in tee.events if e.get("notice")] == [NOTICE]
    finally:
        stuck.stop_trickling.set()
    # The hung attempts end at last: on the log, and nothing else changes.
    wait_until(lambda: len([a for a in _log(api, swept["id"]) if a["outcome"] == SUPERSEDED])
               == stuck.requests, timeout=10)
    assert [d["state"] for d in _deliveries(api, alert_id)
            if d["id"] == swept["id"]] == ["unreachable"]
    assert api.get(f"/api/v1/alerts/{alert_id}").json()["police_delivery"] == "unreachable"
