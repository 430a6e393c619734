"""Where simulated messages go: a small `Transport` interface, paho-mqtt, and a recorder.

`PahoTransport` is one MQTT connection that publishes for every simulated device (a real fleet
has one connection per device; for load and latency work one connection is what matters). It sets
TCP_NODELAY on its socket after connecting: paho never does, and without it small publishes stall
25-45 ms on loopback. QoS 1 publishes are waited for (PUBACK) with a bounded timeout: by default
each one before the next (`inflight=1`), or with up to `inflight` outstanding for throughput.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion

from simulator.errors import PublishTimeout, TransportError

DownlinkHandler = Callable[[str, bytes], None]


class Transport(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int) -> None: ...

    def close(self) -> None: ...


@dataclass(frozen=True, slots=True)
class Published:
    topic: str
    payload: bytes
    qos: int
    at: float  # wall-clock time.time() of the publish


@dataclass
class RecordingTransport:
    """An in-memory transport for tests: records every publish in order."""

    published: list[Published] = field(default_factory=list)
    closed: bool = False
    clock: Callable[[], float] = time.time

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        if self.closed:
            raise TransportError("transport is closed")
        self.published.append(Published(topic, payload, qos, self.clock()))

    def close(self) -> None:
        self.closed = True


MqttVersion = Literal["5", "3.1.1"]
_PROTOCOLS = {"5": MQTTProtocolVersion.MQTTv5, "3.1.1": MQTTProtocolVersion.MQTTv311}


class PahoTransport:
    """Publishes over one paho-mqtt 2 client (MQTT 5 or 3.1.1)."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 1883,
        *,
        version: MqttVersion = "5",
        client_id: str | None = None,
        username: str | None = None,
        password: str | None = None,
        keepalive: int = 30,
        connect_timeout_s: float = 5.0,
        publish_timeout_s: float = 5.0,
        inflight: int = 1,
    ) -> None:
        if inflight < 1:
            raise ValueError("inflight must be >= 1")
        self.publish_timeout_s = publish_timeout_s
        self.inflight = inflight
        self._pending: deque[mqtt.MQTTMessageInfo] = deque()
        self._connected = threading.Event()
        self._connect_failure: str | None = None
        self._handlers: list[tuple[str, DownlinkHandler]] = []
        self._client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or f"simulator-{uuid.uuid4().hex[:12]}",
            protocol=_PROTOCOLS[version],
        )
        self._client.max_inflight_messages_set(max(20, inflight))
        self._client.max_queued_messages_set(0)
        if username is not None:
            self._client.username_pw_set(username, password)
        self._client.on_connect = self._on_connect
        self._client.on_message = self._on_message
        try:
            self._client.connect(host, port, keepalive=keepalive)
        except OSError as exc:
            raise TransportError(f"cannot connect to {host}:{port}: {exc}") from exc
        self._client.loop_start()
        if not self._connected.wait(connect_timeout_s) or self._connect_failure:
            self._client.loop_stop()
            reason = self._connect_failure or "timeout"
            raise TransportError(f"MQTT connect to {host}:{port} failed: {reason}")

    def _on_connect(
        self, client: mqtt.Client, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        if reason.is_failure:
            self._connect_failure = str(reason)
        else:
            sock = client.socket()
            if isinstance(sock, socket.socket):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            for topic_filter, _ in self._handlers:
                client.subscribe(topic_filter, qos=1)
        self._connected.set()

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        for topic_filter, handler in self._handlers:
            if mqtt.topic_matches_sub(topic_filter, message.topic):
                handler(message.topic, bytes(message.payload))

    @property
    def tcp_nodelay(self) -> bool:
        """Whether TCP_NODELAY is set on the current socket."""
        sock = self._client.socket()
        return isinstance(sock, socket.socket) and bool(
            sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
        )

    def subscribe(self, topic_filter: str, handler: DownlinkHandler) -> None:
        """Receive downlinks (acks, commands) matching `topic_filter` on the paho thread."""
        self._handlers.append((topic_filter, handler))
        self._client.subscribe(topic_filter, qos=1)

    def publish(self, topic: str, payload: bytes, qos: int) -> None:
        """Publish; QoS 1 waits for PUBACKs so that at most `inflight` are outstanding."""
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc != mqtt.MQTT_ERR_SUCCESS:
            raise TransportError(f"publish failed: {mqtt.error_string(info.rc)}")
        if qos > 0:
            self._pending.append(info)
            while len(self._pending) >= self.inflight:
                self._await(self._pending.popleft())

    def flush(self) -> None:
        """Wait for every outstanding QoS 1 PUBACK."""
        while self._pending:
            self._await(self._pending.popleft())

    def _await(self, info: mqtt.MQTTMessageInfo) -> None:
        try:
            info.wait_for_publish(self.publish_timeout_s)
        except RuntimeError as exc:
            raise TransportError(f"publish failed: {exc}") from exc
        if not info.is_published():
            raise PublishTimeout(f"no PUBACK within {self.publish_timeout_s} s")

    def close(self) -> None:
        try:
            self.flush()
        finally:
            self._client.disconnect()
            self._client.loop_stop()
