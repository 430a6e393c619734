"""Test helpers around real MQTT clients: a collecting subscriber and a device client."""

from __future__ import annotations

import socket
import threading
import time
import uuid

import paho.mqtt.client as mqtt


def _nodelay(client, userdata, sock) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def client(port: int, client_id: str | None = None, protocol: str = "5") -> mqtt.Client:
    c = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"test-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv5 if protocol == "5" else mqtt.MQTTv311,
    )
    c.on_socket_open = _nodelay
    connected = threading.Event()
    c.on_connect = lambda *a: connected.set()
    c.connect("127.0.0.1", port, keepalive=30)
    c.loop_start()
    assert connected.wait(10), "test client could not connect to the broker"
    return c


class Collector:
    """Subscribes to a topic filter and collects (topic, payload, received_at)."""

    def __init__(self, port: int, topic_filter: str, protocol: str = "5") -> None:
        self.messages: list[tuple[str, bytes, float]] = []
        self._cond = threading.Condition()
        self._client = client(port, protocol=protocol)
        self._client.on_message = self._on_message
        subscribed = threading.Event()
        self._client.on_subscribe = lambda *a: subscribed.set()
        self._client.subscribe(topic_filter, qos=1)
        assert subscribed.wait(10), "subscription not acknowledged"

    def _on_message(self, c, userdata, msg) -> None:
        with self._cond:
            self.messages.append((msg.topic, msg.payload, time.perf_counter()))
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float = 10.0) -> list[tuple[str, bytes, float]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.messages) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.messages)

    def close(self) -> None:
        self._client.disconnect()
        self._client.loop_stop()


def publish(c: mqtt.Client, topic: str, payload: bytes, qos: int = 1) -> None:
    info = c.publish(topic, payload, qos=qos)
    info.wait_for_publish(10)
    assert info.is_published()
