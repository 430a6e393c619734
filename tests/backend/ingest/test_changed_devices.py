"""An alarm is not refused on the device directory's word alone. The directory hears of a change
made by another process through the change counter in Redis; while Redis is away, it hears of
it only at its next full reload (`ingest.directory_refresh_s`, minutes). A victim's device
re-activated, or registered, in that while must still have its panic raised: before the worker
refuses an alarm of a device the directory holds inactive or does not know, it reads that
device's row again. The database away for that read, the alarm waits for it, unacknowledged.
On real services and on the embedded defaults."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.exc import OperationalError

from backend.devices.directory import DeviceDirectory
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker
from device_protocol import Alarm, codec
from tests.support.changes import FakeCounter
from tests.support.mqtt import publish

pytestmark = pytest.mark.services


class RereadAway:
    """The directory, with a database that does not answer its first `fails` re-reads."""

    def __init__(self, inner: DeviceDirectory, fails: int) -> None:
        self.inner = inner
        self.fails = fails
        self.refused = 0
        self._lock = threading.Lock()

    def reread(self, device_id: str):
        with self._lock:
            if self.refused < self.fails:
                self.refused += 1
                raise OperationalError("SELECT", {}, Exception("connection refused"))
        return self.inner.reread(device_id)

    def __getattr__(self, name: str):
        return getattr(self.inner, name)


def _set_active(stack, device_id: str, active: bool) -> None:
    with stack.runtime.sessions.begin() as s:
        s.get(Device, device_id).active = active


def _worker_on(stack, directory) -> tuple[IngestWorker, FakeCounter]:
    """Stop the stack's worker and start another whose directory reads its changes from a
    counter that then cannot be read (Redis away), and reloads every 300 s."""
    stack.worker.stop()
    counter = FakeCounter()
    real = DeviceDirectory(stack.runtime.sessions, refresh_s=300, miss_ttl_s=300,
                           changes=counter)
    stack.runtime.directory = directory(real) if directory else real
    worker = IngestWorker(stack.runtime)
    worker.start()
    counter.broken = True
    return worker, counter


def _raised(stack, device_id: str, alarm_id: str) -> str:
    police = stack.collector(stack.topics.police_filter())
    device = stack.device(device_id)
    publish(device, stack.topics.alarm(device_id), codec.encode(Alarm(id=alarm_id)))
    found = police.wait_for(1, timeout=20)
    assert found, "the alarm was not raised"
    return codec.decode_document(found[0][1])["message_id"]


def test_a_device_re_activated_while_redis_is_away_has_its_alarm_raised(stack):
    stack.register("vic-701")
    _set_active(stack, "vic-701", False)
    real = stack.runtime.directory
    worker, _ = _worker_on(stack, None)
    directory = stack.runtime.directory
    try:
        _set_active(stack, "vic-701", True)  # the case director re-activates it
        assert directory.refresh_once() is False  # the counter cannot tell: nothing read
        assert directory.get("vic-701").active is False  # the directory's word

        assert _raised(stack, "vic-701", "re-1") == "re-1"
        assert directory.get("vic-701").active is True  # its entry, read again
    finally:
        worker.stop()
        stack.runtime.directory = real


def test_a_device_registered_after_it_was_remembered_unknown_has_its_alarm_raised(stack):
    real = stack.runtime.directory
    worker, _ = _worker_on(stack, None)
    directory = stack.runtime.directory
    try:
        assert directory.get("vic-702") is None  # heard of before it was registered
        stack.register("vic-702")
        assert directory.get("vic-702") is None  # remembered unknown

        assert _raised(stack, "vic-702", "new-1") == "new-1"
    finally:
        worker.stop()
        stack.runtime.directory = real


def test_an_alarm_waits_for_the_database_to_read_its_inactive_device_again(stack):
    stack.register("vic-703")
    _set_active(stack, "vic-703", False)
    real = stack.runtime.directory
    worker, _ = _worker_on(stack, lambda inner: RereadAway(inner, fails=3))
    away = stack.runtime.directory
    try:
        _set_active(stack, "vic-703", True)

        assert _raised(stack, "vic-703", "wait-1") == "wait-1"
        assert away.refused == away.fails  # refused each time, never refused the alarm
    finally:
        worker.stop()
        stack.runtime.directory = real
