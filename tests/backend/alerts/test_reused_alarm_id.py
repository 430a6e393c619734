"""A device that counts its alarm ids from 1 again (after a reset) presses panic with the id of
an alert the desk closed long ago: a new press, raised anew (flagged `reused_id`) and answered
under the id the device gave; its own retransmissions raise nothing more. A retransmission
while the alert is open stays one alert. On real services and on the embedded defaults."""

from __future__ import annotations

import time

import pytest

from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def _alerts(api) -> list[dict]:
    found = api.get("/api/v1/alerts", params={"state": "all", "with_location": "false"}).json()
    return sorted(found, key=lambda a: a["raised_at"])


def test_a_new_press_reusing_a_closed_alerts_id_is_raised_and_answered(stack):
    stack.register("vic-601")
    device = stack.device("vic-601")
    acks = stack.collector(stack.topics.ack("vic-601"))
    api = stack.api()
    topic = stack.topics.alarm("vic-601")
    try:
        first = codec.encode(Alarm(id="1", tst=time.time() - 3600))
        publish(device, topic, first)
        [old] = wait_until(lambda: _alerts(api))
        publish(device, topic, first)  # a retransmission while it is open: nothing new
        assert api.post(f"/api/v1/alerts/{old['alert_id']}/resolve").status_code == 200
        publish(device, topic, first)  # and once it is closed: the same bytes, nothing new
        time.sleep(1.0)
        assert len(_alerts(api)) == 1

        again = codec.encode(Alarm(id="1", tst=time.time()))  # after a reset: id 1 again
        publish(device, topic, again)
        alerts = wait_until(lambda: len(found := _alerts(api)) == 2 and found)
        new = alerts[1]
        assert new["state"] == "new" and new["type"] == "panic"
        assert "reused_id" in new["flags"] and new["message_id"].startswith("1~")
        publish(device, topic, again)  # its retransmission
        time.sleep(1.0)
        assert len(_alerts(api)) == 2

        told = [codec.decode_ack(p) for _, p, _ in acks.wait_for(3)]
        assert [(a.ref, a.state) for a in told] == [
            ("1", "received"), ("1", "resolved"), ("1", "received")]
    finally:
        acks.close()
        device.disconnect()
