"""Publishes downlink messages (police feed, device ack/cmd) and reports broker acknowledgement.

`publish` returns at once; `on_delivered(key)` is called from the MQTT network thread when the
broker has acknowledged a QoS 1 message (PUBACK), so the outbox can mark the row sent.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Protocol

import paho.mqtt.client as mqtt


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, key: Hashable) -> None: ...


class PahoPublisher:
    """Never holds its own lock while calling into paho (paho calls back under its own locks)."""

    def __init__(self, client: mqtt.Client, on_delivered: Callable[[Hashable], None]) -> None:
        self._client = client
        self._on_delivered = on_delivered
        self._pending: dict[int, Hashable] = {}
        self._early: set[int] = set()  # PUBACKs that arrived before publish() returned the mid
        self._lock = threading.Lock()
        previous = client.on_publish

        def on_publish(c, userdata, mid, reason_code, properties) -> None:
            with self._lock:
                key = self._pending.pop(mid, None)
                if key is None:
                    self._early.add(mid)
            if key is not None and not reason_code.is_failure:
                self._on_delivered(key)
            if previous is not None:
                previous(c, userdata, mid, reason_code, properties)

        client.on_publish = on_publish

    def publish(self, topic: str, payload: bytes, qos: int, key: Hashable) -> None:
        if not self._client.is_connected():
            # The outbox keeps the row pending and its sweep publishes it once connected. Handed
            # to paho now, it would be queued in memory and sent on reconnecting, a copy per
            # sweep: a broker away for an hour, and the first alarm after it waits behind them.
            return
        info = self._client.publish(topic, payload, qos=qos)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            return
        # NO_CONN: the connection dropped just now; paho keeps the message and sends it when it
        # reconnects, and its PUBACK marks the row sent as any other's (an unclaimed PUBACK's
        # message id, reused later, would mark another message sent before its own).
        with self._lock:
            acked = info.mid in self._early
            if acked:
                self._early.discard(info.mid)
            else:
                self._pending[info.mid] = key
        if acked:
            self._on_delivered(key)
