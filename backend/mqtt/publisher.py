"""Publishes downlink messages (police feed, device ack/cmd) and reports broker acknowledgement.

`publish` returns at once; `on_delivered(key)` is called from the MQTT network thread when the
broker has acknowledged a QoS 1 message (PUBACK) as delivered (`delivered`), so the outbox can
mark the row sent. Any other answer leaves the row pending: the outbox's sweep publishes it
again until its deadline ends it (`backend.outbox.unconfirmed`, `backend.outbox.expired`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Hashable
from typing import Protocol

import paho.mqtt.client as mqtt
from paho.mqtt.reasoncodes import ReasonCode

log = logging.getLogger(__name__)

SUCCESS = 0x00
NO_MATCHING_SUBSCRIBERS = 0x10


def delivered(reason_code: int) -> bool:
    """Whether a PUBACK with this reason code means the message reached its receiver: only a
    plain success (over MQTT 3.1.1 every PUBACK is one; a broker that cannot tell cannot say).

    MQTT 5 brokers (Mosquitto) answer a publish that no subscription matches with
    `NO_MATCHING_SUBSCRIBERS` (0x10), which is not a failure for the protocol but is one for
    every kind of message the outbox publishes:

    - a police unit's feed: no police system subscribes to the unit's topic, so nobody got the
      alert. Not delivered: re-published, and past `police.deadline_s` ended `unconfirmed`
      ("police not reached: phone the control room");
    - a device's ack or command: the device subscribes with a persistent session, which the
      broker counts as a subscriber while the device is offline (it keeps the message for it);
      no subscriber means the device has no session at all, and the message would reach no
      one. Not delivered: re-published, and past `outbox.device_deadline_s` ended `expired`.

    Failures (0x80 and up: not authorized, quota exceeded, ...) are not delivered either."""
    return int(reason_code) == SUCCESS


class Publisher(Protocol):
    def publish(self, topic: str, payload: bytes, qos: int, key: Hashable) -> None: ...


class PahoPublisher:
    """Never holds its own lock while calling into paho (paho calls back under its own locks)."""

    def __init__(self, client: mqtt.Client, on_delivered: Callable[[Hashable], None]) -> None:
        self._client = client
        self._on_delivered = on_delivered
        self._pending: dict[int, Hashable] = {}
        # PUBACKs that arrived before publish() returned the mid, with their reason codes.
        self._early: dict[int, ReasonCode] = {}
        self._lock = threading.Lock()
        previous = client.on_publish

        def on_publish(c, userdata, mid, reason_code, properties) -> None:
            with self._lock:
                key = self._pending.pop(mid, None)
                if key is None:
                    self._early[mid] = reason_code
            if key is not None:
                self._answered(key, reason_code)
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
            early = self._early.pop(info.mid, None)
            if early is None:
                self._pending[info.mid] = key
        if early is not None:
            self._answered(key, early)

    def _answered(self, key: Hashable, reason_code: ReasonCode) -> None:
        if delivered(reason_code.value):
            self._on_delivered(key)
        else:  # the row stays pending: published again by the sweep until its deadline
            # Nobody subscribed: an info line per re-publish, until the deadline ends the row
            # with a warning of its own (`backend.outbox`); a refusal is a warning every time.
            nobody = reason_code.value == NO_MATCHING_SUBSCRIBERS
            log.log(logging.INFO if nobody else logging.WARNING,
                    "outbox=%s not delivered: the broker answered %s (0x%02x)", key,
                    reason_code, reason_code.value)
