"""A follow-up that keeps failing holds up no alarm at the broker: each alarm is acknowledged
once its alert is committed, so a broker with Mosquitto's default of 20 unacknowledged messages
per client keeps delivering, and a restarted worker is sent none of them again (the follow-up
sweep finishes their follow-ups). The watchdog hears of the follow-up that holds up the others."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from backend.alerts.models import Alert
from backend.cases.models import Case
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker
from backend.runtime import Runtime
from device_protocol import Alarm, codec
from loadtests.broker import OwnMosquitto
from tests.backend.conftest import make_settings, truncate_all
from tests.support.mqtt import client, publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

# More than Mosquitto sends a client unacknowledged by default (`max_inflight_messages` 20).
ALARMS = 30
# Mosquitto's defaults but for what a test broker needs (no persistence, anonymous clients).
DEFAULT_BROKER = "allow_anonymous true\npersistence false\n"


class FailingFollowUp:
    """A follow-up step whose database is always busy (a lock wait that ends in a timeout)."""

    phase = "follow_up"

    def __init__(self) -> None:
        self.calls = 0

    def after_change(self, session, alert, document, effects) -> None:
        self.calls += 1
        raise OperationalError("UPDATE cases", {}, Exception("canceling statement"))


@pytest.fixture
def world(pg_url) -> Iterator[tuple[OwnMosquitto, object]]:
    truncate_all(pg_url)
    with OwnMosquitto(settings=DEFAULT_BROKER) as broker:
        suffix = uuid.uuid4().hex[:10]
        settings = make_settings("services", db_url=pg_url, port=broker.port,
                                 root=f"sdtest/{suffix}/v1", redis_prefix=f"swtest{suffix}",
                                 client_id=f"ingest-{suffix}")
        yield broker, settings


def _worker(settings) -> tuple[Runtime, IngestWorker]:
    runtime = Runtime.build(settings)
    worker = IngestWorker(runtime)
    worker.start()
    return runtime, worker


def _close(runtime: Runtime, worker: IngestWorker) -> None:
    worker.stop()
    if runtime.redis is not None:
        for key in runtime.redis.scan_iter(f"{runtime.settings.redis.key_prefix}:*"):
            runtime.redis.delete(key)
    runtime.close()


def _alerts(runtime: Runtime) -> int:
    with runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Alert))


def _register(runtime: Runtime, device_id: str) -> None:
    with runtime.sessions.begin() as s:
        case = Case(reference=f"C-{uuid.uuid4().hex[:8]}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id=device_id, case_id=case.id, role="victim"))


def test_alarms_whose_follow_ups_keep_failing_are_all_raised_and_acknowledged(world):
    broker, settings = world
    runtime, worker = _worker(settings)
    hook = FailingFollowUp()
    runtime.flow.hooks.append(hook)
    _register(runtime, "vic-inflight")
    runtime.directory.load_all()
    device = client(broker.port, client_id="vic-inflight")
    running: tuple[Runtime, IngestWorker] | None = (runtime, worker)
    try:
        for n in range(ALARMS):
            publish(device, runtime.topics.alarm("vic-inflight"),
                    codec.encode(Alarm(id=f"a-{n}", kind="panic", tst=time.time())))
        wait_until(lambda: _alerts(runtime) == ALARMS, timeout=30)
        assert hook.calls >= 1  # the follow-ups failed (and are tried again meanwhile)
        # The follow-ups wait behind the one tried again while raises commit: a restart
        # leaves them to the follow-up sweep.
        runtime.settings.process.stuck_after_s = 1.0
        found = wait_until(lambda: [p for p in worker.problems() if "follow-up" in p])
        assert "while alerts are committed" in found[0]
        running = None
        _close(runtime, worker)

        runtime, restarted = running = _worker(settings)  # the same client id and session
        publish(device, runtime.topics.alarm("vic-inflight"),
                codec.encode(Alarm(id="after-restart", kind="panic", tst=time.time())))
        wait_until(lambda: _alerts(runtime) == ALARMS + 1, timeout=30)
        # A broker sends a session's unacknowledged messages again before new ones: had any
        # alarm gone unacknowledged, it would have reached the new worker first.
        assert restarted.processed == 1
    finally:
        device.disconnect()
        device.loop_stop()
        if running is not None:
            _close(*running)
