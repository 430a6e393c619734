"""The outbox's publisher hands paho nothing while the client is not connected: the outbox
keeps the row pending and its sweep publishes it once connected. (Handed to paho, each sweep's
copy was queued in memory and all were sent on reconnecting, ahead of the next alarm.) Once
connected, the broker's acknowledgement reports the row (real Mosquitto)."""

from __future__ import annotations

import threading
import uuid

from backend.mqtt.client import connect, make_client
from backend.mqtt.publisher import PahoPublisher
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
