"""paho-mqtt 2 clients for the benchmark: TCP_NODELAY on, MQTT 5, connected and looping."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from loadtests.errors import ServiceUnavailable

OnMessage = Callable[[mqtt.Client, object, mqtt.MQTTMessage], None]


def _nodelay(_client: mqtt.Client, _userdata: Any, sock: Any) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover - non-TCP transport
        pass


def connect(
    port: int,
    *,
    client_id: str | None = None,
    host: str = "127.0.0.1",
    subscribe: list[str] | None = None,
    on_message: OnMessage | None = None,
    loop: bool = True,
    persistent: bool = False,
    timeout_s: float = 10.0,
) -> mqtt.Client:
    """A connected client (network loop running in its thread unless `loop=False`), with its
    subscriptions (QoS 1) acknowledged before it returns."""
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id or f"bench-{uuid.uuid4().hex[:10]}",
        protocol=mqtt.MQTTv5,
    )
    client.on_socket_open = _nodelay
    client.max_inflight_messages_set(0)  # unlimited: pacing is the caller's
    client.max_queued_messages_set(0)
    ready = threading.Event()
    subscribed = threading.Event()

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            return
        if subscribe:
            c.subscribe([(t, 1) for t in subscribe])
        ready.set()

    client.on_connect = on_connect
    client.on_subscribe = lambda *a: subscribed.set()
    if on_message is not None:
        client.on_message = on_message
    props = None
    if persistent:
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = 300
    client.connect(host, port, keepalive=60, clean_start=not persistent, properties=props)
    if not loop:
        # The caller drives the loop; connect synchronously here.
        while not ready.is_set():
            client.loop(timeout=0.1)
        while subscribe and not subscribed.is_set():
            client.loop(timeout=0.1)
        return client
    client.loop_start()
    if not ready.wait(timeout_s) or (subscribe and not subscribed.wait(timeout_s)):
        client.loop_stop()
        raise ServiceUnavailable(f"MQTT broker on port {port} did not accept the client")
    return client


def close(client: mqtt.Client) -> None:
    client.disconnect()
    client.loop_stop()
