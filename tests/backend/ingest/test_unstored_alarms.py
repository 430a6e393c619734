"""An alarm is acknowledged to the broker only once its alert is stored, also when the database
is away while the worker looks its device up: the alarm waits for the database, it is not
rejected (a rejection is acknowledged). (A bug that keeps an alarm from being stored:
test_alarm_threads.)"""

from __future__ import annotations

import threading
import time

import orjson
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from backend.alerts.models import Alert
from backend.ingest.worker import IngestWorker
from backend.pipeline.context import RawMessage
from device_protocol import Alarm, codec
from tests.support.mqtt import publish


class DatabaseAway:
    """The device directory, with its database away for the first `fails` look-ups."""

    def __init__(self, inner, fails: int) -> None:
        self.inner = inner
        self.fails = fails
        self.refused = 0
        self._lock = threading.Lock()

    def _away(self) -> None:
        with self._lock:
            if self.refused < self.fails:
                self.refused += 1
                raise OperationalError("SELECT", {}, Exception("connection refused"))

    def get(self, device_id: str):
        self._away()
        return self.inner.get(device_id)

    def prefetch(self, device_ids: list[str]) -> None:
        self._away()
        self.inner.prefetch(device_ids)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _alerts(stack, message_id: str) -> int:
    with stack.runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Alert)
                        .where(Alert.message_id == message_id))


def _new_worker(stack) -> IngestWorker:
    """Stop the stack's worker and start another on the same persistent session."""
    stack.worker.stop()
    worker = IngestWorker(stack.runtime)
    worker.start()
    return worker


def test_an_alarm_waits_for_the_database_to_look_its_device_up(stack, caplog):
    real = stack.runtime.directory
    away = stack.runtime.directory = DatabaseAway(real, fails=6)
    worker = _new_worker(stack)
    try:
        stack.register("vic-401")  # registered since the worker loaded the directory
        police = stack.collector(stack.topics.police_filter())
        device = stack.device("vic-401")
        publish(device, stack.topics.alarm("vic-401"), codec.encode(Alarm(id="away-1")))
        [(_, payload, _)] = police.wait_for(1, timeout=20)
        assert codec.decode_document(payload)["message_id"] == "away-1"
        assert away.refused == away.fails  # every look-up the database refused was tried again
        assert _alerts(stack, "away-1") == 1
        assert "reason=internal_error" not in caplog.text
        police.close()
        device.disconnect()
    finally:
        worker.stop()
        stack.runtime.directory = real



class FailingOnce:
    """The device directory, with a bug that fails the pipeline's first look-up of a device."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.failed = False

    def get(self, device_id: str):
        if not self.failed:
            self.failed = True
            raise RuntimeError("a bug")
        return self.inner.get(device_id)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _alarm_raw(stack, device_id: str, body: dict) -> RawMessage:
    return RawMessage(stack.topics.alarm(device_id), orjson.dumps(body), 0, 0, time.time())


def test_an_alarm_raised_bare_after_a_bug_keeps_the_devices_own_id(stack):
    """The bare alert is acknowledged to the device with its alarm's id, so the device stops
    retransmitting; its retransmission (other bytes: the battery dropped), handled normally once
    the bug is gone, raises nothing new."""
    stack.register("vic-402")
    acks = stack.collector(stack.topics.ack("vic-402"))
    real = stack.runtime.directory
    stack.runtime.directory = FailingOnce(real)
    try:
        worker = IngestWorker(stack.runtime)  # its pipeline looks devices up there
    finally:
        stack.runtime.directory = real
    lane = worker.alarms
    with lane.busy:
        assert worker.handle(lane, [_alarm_raw(stack, "vic-402", {"id": "press 17", "batt": 80})])
        assert worker.handle(lane, [_alarm_raw(stack, "vic-402", {"id": "press 17", "batt": 79})])
    with stack.runtime.sessions() as s:
        alerts = s.execute(select(Alert.message_id, Alert.flags)
                           .where(Alert.device_id == "vic-402")).all()
    assert [a.message_id for a in alerts] == ["press 17"]
    assert "processing_error" in alerts[0].flags
    [(_, payload, _)] = acks.wait_for(1)
    assert codec.decode_ack(payload).ref == "press 17"
