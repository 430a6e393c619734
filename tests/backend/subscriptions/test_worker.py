"""The delivery worker with a scripted sender and a fake clock, on SQLite: the policy's states,
the delivery log, and the console event "police not reached" once the deadline has passed."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backend.alerts.models import Alert
from backend.db.engine import make_engine, make_session_factory
from backend.db.migrate import upgrade
from backend.police.attempt import AttemptResult, ErrorKind
from backend.police.retry import RetryPolicy
from backend.settings import DatabaseSettings
from backend.subscriptions import service
from backend.subscriptions.models import Delivery, Subscription
from backend.subscriptions.worker import DeliveryWorker, WorkerConfig

T0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0, min_delay_s=0.5, jitter=0.0,
                     deadline_s=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class ScriptedSender:
    def __init__(self, results: list[AttemptResult]) -> None:
        self.results = list(results)
        self.sent: list[dict[str, str]] = []

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        self.sent.append(dict(headers))
        return self.results.pop(0)


class RecordingBus:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)


@pytest.fixture
def sessions(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/w.db"
    upgrade(url)
    engine = make_engine(DatabaseSettings(url=url))
    yield make_session_factory(engine)
    engine.dispose()


def _seed(sessions, priority: str = "P1") -> uuid.UUID:
    with sessions.begin() as s:
        alert = Alert(id=uuid.uuid4(), type="panic", priority=priority, state="new", sequence=1,
                      raised_at=T0, updated_at=T0, flags=[], exercise=False)
        sub = Subscription(id=uuid.uuid4(), name="p", url="http://127.0.0.1:9/x",
                           secret="whsec_" + "A" * 43 + "=", format="json")
        s.add_all([alert, sub])
        s.flush()
        s.add(Delivery(id=uuid.uuid4(), subscription_id=sub.id, alert_id=alert.id, sequence=1,
                       priority=priority, format="json", body=b"{}", state="pending",
                       attempts=0, created_at=T0, window_start=T0, next_attempt_at=T0))
        return alert.id


def _worker(sessions, results, clock, bus) -> tuple[DeliveryWorker, ScriptedSender]:
    sender = ScriptedSender(results)
    return DeliveryWorker(sessions, sender, bus, WorkerConfig(policy=POLICY),
                          clock=clock), sender


def test_retries_until_deadline_then_police_not_reached(sessions):
    alert_id = _seed(sessions)
    clock, bus = Clock(), RecordingBus()
    fail = AttemptResult(None, 3.0, error=ErrorKind.CONNECT)
    worker, sender = _worker(sessions, [fail, AttemptResult(503, 2.0), fail], clock, bus)

    assert worker.run_once() == 1  # t=0: fails, retry after 1 s
    assert worker.run_once() == 0  # not due yet
    clock.now = T0 + timedelta(seconds=1)
    assert worker.run_once() == 1  # t=1: 503, retry after 2 s (t=3)
    clock.now = T0 + timedelta(seconds=3)
    assert worker.run_once() == 1  # t=3: fails; next would be t=7 > deadline t=5
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        log = service.attempts_of(s, d.id)
        alert = s.get(Alert, alert_id)
    assert d.state == "unreachable" and d.attempts == 3 and d.next_attempt_at is None
    assert [(a.status, a.error, a.outcome) for a in log] == [
        (None, "connect", "retrying"), (503, None, "retrying"), (None, "connect", "unreachable")]
    assert alert.police_delivery == "unreachable"
    assert len({h["webhook-id"] for h in sender.sent}) == 1  # the same id on every attempt
    [event] = [e for e in bus.events if e.get("notice")]
    assert event["event"] == "alert.updated"
    assert event["notice"] == "police not reached: phone the control room"
    assert event["alert"]["police_delivery"] == "unreachable"


def test_a_4xx_is_not_retried(sessions):
    alert_id = _seed(sessions, priority="P3")
    clock, bus = Clock(), RecordingBus()
    worker, sender = _worker(sessions, [AttemptResult(410, 1.0)], clock, bus)
    assert worker.run_once() == 1
    clock.now = T0 + timedelta(seconds=4)
    assert worker.run_once() == 0
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        alert = s.get(Alert, alert_id)
    assert d.state == "rejected" and len(sender.sent) == 1
    assert alert.police_delivery == "failed"  # not urgent: recorded, no phone call
    assert not any(e.get("notice") for e in bus.events)


def test_a_claimed_row_is_not_claimed_twice(sessions):
    _seed(sessions)
    with sessions.begin() as s:
        first = service.claim_due(s, T0, 10, lease_s=30)
    with sessions.begin() as s:
        second = service.claim_due(s, T0 + timedelta(seconds=1), 10, lease_s=30)
    with sessions.begin() as s:
        after_lease = service.claim_due(s, T0 + timedelta(seconds=31), 10, lease_s=30)
    assert (len(first), len(second), len(after_lease)) == (1, 0, 1)
