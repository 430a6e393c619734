"""The outbox's publisher hands paho nothing while the client is not connected: the outbox
keeps the row pending and its sweep publishes it once connected. (Handed to paho, each sweep's
copy was queued in memory and all were sent on reconnecting, ahead of the next alarm.) Once
connected, the broker's acknowledgement reports the row (real Mosquitto)."""

from __future__ import annotations

import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from backend.mqtt.client import connect, make_client
from backend.mqtt.publisher import PahoPublisher, delivered
from backend.settings import BrokerSettings
from tests.conftest import MQTT_PORT
from tests.support.mqtt import Collector


def test_nothing_is_queued_while_disconnected_and_a_puback_reports_the_row():
    topic = f"sdtest/{uuid.uuid4().hex[:8]}/v1/police/RE07/alerts"
    feed = Collector(MQTT_PORT, topic)
    settings = BrokerSettings(embedded=False, port=MQTT_PORT, protocol="5")
    client = make_client(settings, f"pub-{uuid.uuid4().hex[:8]}")
    delivered: list[int] = []
    done = threading.Event()

    def on_delivered(key) -> None:
        delivered.append(key)
        done.set()

    publisher = PahoPublisher(client, on_delivered)
    for key in (1, 2, 3):  # three sweeps while the broker is away
        publisher.publish(topic, b"{}", 1, key)
    network = connect(client, settings)
    try:
        publisher.publish(topic, b"{}", 1, 4)
        assert done.wait(5)
        messages = feed.wait_for(2, timeout=1.5)
        assert len(messages) == 1  # only the one published while connected
        assert delivered == [4]
    finally:
        network.stop()
        feed.close()


class Answers:
    """Records each PUBACK's reason code, after the publisher has handled it (the publisher
    calls the client's previous `on_publish` last)."""

    def __init__(self, client) -> None:
        self.codes: list[int] = []
        self._cond = threading.Condition()
        client.on_publish = self._on_publish

    def _on_publish(self, c, userdata, mid, reason_code, properties) -> None:
        with self._cond:
            self.codes.append(reason_code.value)
            self._cond.notify_all()

    def wait_for(self, count: int) -> list[int]:
        with self._cond:
            assert self._cond.wait_for(lambda: len(self.codes) >= count, timeout=5)
            return list(self.codes)


def _persistent_subscriber(client_id: str, topic: str, expiry_s: int) -> None:
    """A device that subscribed with a persistent session and went offline."""
    device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                         protocol=mqtt.MQTTv5)
    subscribed = threading.Event()
    device.on_subscribe = lambda *a: subscribed.set()
    device.on_connect = lambda c, *a: c.subscribe(topic, qos=1)
    expiry = Properties(PacketTypes.CONNECT)
    expiry.SessionExpiryInterval = expiry_s
    device.connect("127.0.0.1", MQTT_PORT, clean_start=expiry_s == 0, properties=expiry)
    device.loop_start()
    try:
        assert subscribed.wait(5)
    finally:
        device.disconnect()
        device.loop_stop()


@pytest.mark.parametrize("code, expected", [
    (0x00, True),  # Success; every PUBACK over MQTT 3.1.1
    (0x10, False),  # No matching subscribers
    (0x80, False),  # Unspecified error
    (0x87, False),  # Not authorized
    (0x97, False),  # Quota exceeded
])
def test_only_a_plain_success_is_delivered(code, expected):
    assert delivered(code) is expected


def test_a_puback_without_subscribers_is_not_delivered_and_a_device_session_counts():
    """Mosquitto over MQTT 5 answers a publish nobody subscribes to with 0x10: the row stays
    pending (the police unit's feed: nobody got the alert; a device's ack: the device has no
    session). A device offline with a persistent session and a live police feed subscriber
    both count: 0x00, delivered."""
    root = f"sdtest/{uuid.uuid4().hex[:8]}/v1"
    settings = BrokerSettings(embedded=False, port=MQTT_PORT, protocol="5")
    client = make_client(settings, f"pub-{uuid.uuid4().hex[:8]}")
    answers = Answers(client)
    reported: list[int] = []
    publisher = PahoPublisher(client, reported.append)
    network = connect(client, settings)
    device_id = f"vic-{uuid.uuid4().hex[:8]}"
    feed = None
    try:
        publisher.publish(f"{root}/police/RE07/alerts", b"{}", 1, 1)
        publisher.publish(f"{root}/dev/{device_id}/ack", b"{}", 1, 2)
        assert answers.wait_for(2) == [0x10, 0x10]
        assert reported == []

        _persistent_subscriber(device_id, f"{root}/dev/{device_id}/ack", expiry_s=60)
        feed = Collector(MQTT_PORT, f"{root}/police/RE07/alerts")
        publisher.publish(f"{root}/dev/{device_id}/ack", b"{}", 1, 3)
        publisher.publish(f"{root}/police/RE07/alerts", b"{}", 1, 4)
        assert answers.wait_for(4)[2:] == [0x00, 0x00]
        assert sorted(reported) == [3, 4]
    finally:
        network.stop()
        if feed is not None:
            feed.close()
        _persistent_subscriber(device_id, f"{root}/dev/{device_id}/ack", expiry_s=0)


class AnsweringClient:
    """A client whose broker answers a publish before `publish()` has returned its message id
    (the network thread can be that quick): with `code`."""

    def __init__(self, code: int) -> None:
        self.code = code
        self.on_publish = None
        self.mid = 0

    def is_connected(self) -> bool:
        return True

    def publish(self, topic: str, payload: bytes, qos: int) -> mqtt.MQTTMessageInfo:
        self.mid += 1
        self.on_publish(self, None, self.mid, ReasonCode(PacketTypes.PUBACK, identifier=self.code),
                        None)
        info = mqtt.MQTTMessageInfo(self.mid)
        info.rc = mqtt.MQTT_ERR_SUCCESS
        return info


@pytest.mark.parametrize("code, reported", [(0x00, [7]), (0x10, []), (0x87, [])])
def test_a_puback_before_publish_returns_is_judged_by_its_reason_code(code, reported):
    client = AnsweringClient(code)
    keys: list[int] = []
    PahoPublisher(client, keys.append).publish("sd/v1/police/RE07/alerts", b"{}", 1, 7)
    assert keys == reported
