"""The worker's broker connection is lost: an alarm a device sends meanwhile waits in the worker's
persistent session at the broker, and is raised once (one alert, one police feed) when the
worker's network loop has reconnected by itself. Mosquitto only: the embedded amqtt broker keeps
no messages for a disconnected client it let in anonymously, and lets every client in so."""

from __future__ import annotations

import socket
import time

import pytest
from sqlalchemy import func, select

from backend.alerts.models import Alert
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_alarm_sent_while_the_worker_is_cut_off_is_raised_once_it_is_back(stack):
    stack.register("vic-cut")
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-cut")
    worker_client = stack.worker.client

    worker_client.socket().shutdown(socket.SHUT_RDWR)  # as a network fault would cut it
    wait_until(lambda: not worker_client.is_connected(), timeout=5)
    sent = time.monotonic()
    publish(device, stack.topics.alarm("vic-cut"),
            codec.encode(Alarm(id="cut-1", kind="panic", tst=time.time(), lat=51.92, lon=4.47)))

    [(_, payload, received)] = police.wait_for(1, timeout=15)
    assert codec.decode_document(payload)["message_id"] == "cut-1"
    print(f"raised {received - sent:.2f} s after it was sent")
    assert worker_client.is_connected() and stack.worker.problems() == []
    time.sleep(0.5)  # a second delivery of the feed would arrive by now
    assert len(police.messages) == 1
    with stack.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)
                        .where(Alert.message_id == "cut-1")) == 1
