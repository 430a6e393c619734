import os
import threading
import uuid

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.enums import CallbackAPIVersion
from rich.console import Console

from device_protocol import Topics
from simulator import scenarios
from simulator.errors import TransportError
from simulator.runner import run_scenario
from simulator.transport import PahoTransport, RecordingTransport

BROKER_HOST = os.environ.get("SCHILDWACHT_TEST_MQTT_HOST", "127.0.0.1")
BROKER_PORT = int(os.environ.get("SCHILDWACHT_TEST_MQTT_PORT", "1883"))


def test_recording_transport_keeps_order_and_refuses_after_close() -> None:
    transport = RecordingTransport(clock=lambda: 42.0)
    transport.publish("a/b", b"1", 1)
    transport.publish("a/c", b"2", 0)
    assert [(p.topic, p.payload, p.qos, p.at) for p in transport.published] == [
        ("a/b", b"1", 1, 42.0),
        ("a/c", b"2", 0, 42.0),
    ]
    transport.close()
    with pytest.raises(TransportError):
        transport.publish("a/d", b"3", 1)


def test_paho_transport_reports_an_unreachable_broker() -> None:
    with pytest.raises(TransportError):
        PahoTransport("127.0.0.1", 1, connect_timeout_s=2.0)


class _Subscriber:
    """A plain paho subscriber that collects (topic, payload) pairs."""

    def __init__(self, topic_filter: str) -> None:
        self.received: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.subscribed = threading.Event()
        self.client = mqtt.Client(
            CallbackAPIVersion.VERSION2, client_id=f"sub-{uuid.uuid4().hex[:8]}"
        )
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic_filter, qos=1)
        self.client.on_subscribe = lambda c, u, mid, rcs, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.connect(BROKER_HOST, BROKER_PORT)
        self.client.loop_start()
        assert self.subscribed.wait(5), "subscriber did not get a SUBACK"

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.received.append((message.topic, message.payload))

    def wait_for(self, count: int, timeout_s: float = 10.0) -> list[tuple[str, bytes]]:
        done = threading.Event()
        for _ in range(int(timeout_s / 0.05)):
            with self.lock:
                if len(self.received) >= count:
                    done.set()
                    break
            done.wait(0.05)
        with self.lock:
            return list(self.received)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.mark.services
@pytest.mark.parametrize(("version", "inflight"), [("5", 1), ("3.1.1", 1), ("5", 50)])
def test_a_scenario_through_mosquitto_arrives_complete(version: str, inflight: int) -> None:
    topics = Topics(f"simtest/{uuid.uuid4().hex[:10]}")
    subscriber = _Subscriber(f"{topics.root}/dev/+/+")
    transport = PahoTransport(BROKER_HOST, BROKER_PORT, version=version, inflight=inflight)
    try:
        assert transport.tcp_nodelay
        summary = run_scenario(
            "approach",
            transport,
            topics,
            seed=5,
            speed=0,
            start_epoch=scenarios.DEFAULT_START,
            console=Console(quiet=True),
        )
    finally:
        transport.close()
    expected = scenarios.build("approach", 5, scenarios.DEFAULT_START, topics).messages
    try:
        received = subscriber.wait_for(len(expected))
    finally:
        subscriber.close()
    assert summary.publish_failures == 0 and summary.messages_sent == len(expected)
    # One publisher on one connection: the broker delivers in publish order.
    assert received == [(m.topic, m.payload) for m in expected]
