"""A receiver that hangs until the total time limit (an archive, say) does not hold every thread
of the delivery worker: on PostgreSQL, with real HTTP receivers on 127.0.0.1, a P1's first
attempt to the police goes out while the archive's attempts hang, whether a round claims it or
the fast path sends it right after the alert's commit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from backend.alerts.document import alert_document
from backend.alerts.flows import Effects
from backend.alerts.models import Alert
from backend.hub.bus import InProcessBus
from backend.police.client import Timeouts, Urllib3WebhookSender
from backend.police.retry import RetryPolicy
from backend.settings import PoliceSettings
from backend.subscriptions import service
from backend.subscriptions.models import Delivery, Subscription
from backend.subscriptions.wiring import install
from backend.subscriptions.worker import DeliveryWorker, WorkerConfig
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

SECRET = "whsec_" + "A" * 43 + "="
HANG_S = 3.0  # every attempt to the archive hangs until its total time limit
POLICY = RetryPolicy(base_delay_s=0.1, max_delay_s=0.4, min_delay_s=0.05, deadline_s=30.0)


def _sender() -> Urllib3WebhookSender:
    return Urllib3WebhookSender(Timeouts(connect_s=1.0, read_s=5.0, write_s=1.0,
                                         total_s=HANG_S))


def _subscription(s, receiver, name: str, **fields: Any) -> uuid.UUID:
    receiver.secret = SECRET
    sub = Subscription(id=uuid.uuid4(), name=name, url=receiver.url, secret=SECRET,
                       format="json", **fields)
    s.add(sub)
    s.flush()
    return sub.id


def _alert(s, now: datetime, police_unit: str | None = None) -> Alert:
    alert = Alert(id=uuid.uuid4(), type="panic", priority="P1", state="new", sequence=1,
                  raised_at=now, updated_at=now, flags=[], exercise=False,
                  police_unit=police_unit, told_police=police_unit is not None)  # a panic: told
    s.add(alert)
    s.flush()
    return alert


def _due(s, subscription_id: uuid.UUID, now: datetime, due_s_ago: float) -> uuid.UUID:
    alert = _alert(s, now)
    delivery = Delivery(id=uuid.uuid4(), subscription_id=subscription_id, alert_id=alert.id,
                        sequence=1, priority="P1", format="json", body=b"{}", state="pending",
                        attempts=0, created_at=now, window_start=now,
                        next_attempt_at=now - timedelta(seconds=due_s_ago))
    s.add(delivery)
    s.flush()
    return delivery.id


@pytest.mark.parametrize("concurrency, share", [(3, 2), (2, 1)])
def test_a_round_claims_the_police_first_attempt_beside_a_hanging_receiver(
        pg_sessions, receivers, concurrency, share):
    """The archive gets two threads of three; of two, one (a pool is never all one's)."""
    archive, police = receivers(trickle_s=0.1), receivers()
    now = datetime.now(UTC)
    with pg_sessions.begin() as s:
        archive_id = _subscription(s, archive, "archive")
        police_id = _subscription(s, police, "police RE07", police_units=["RE07"])
        for _ in range(4):  # longer due than the police's: claimed first by age alone
            _due(s, archive_id, now, due_s_ago=1.0)
        _due(s, police_id, now, due_s_ago=0.0)
    worker = DeliveryWorker(pg_sessions, _sender(), InProcessBus(),
                            WorkerConfig(policy=POLICY, poll_interval_s=0.2,
                                         concurrency=concurrency,
                                         concurrency_per_subscription=2, claim_lease_s=12.0))
    started = time.monotonic()
    worker.start()
    try:
        assert police.wait_for(1, timeout=HANG_S * 2)
        took_s = time.monotonic() - started
        time.sleep(0.3)
        in_flight = archive.requests
    finally:
        archive.stop_trickling.set()
        worker.stop()
    assert took_s < HANG_S / 2, f"the police attempt waited {took_s:.1f} s behind the archive"
    assert in_flight == share  # the archive's share of the threads, not all of them


def _raise(sessions, hook, police_unit: str) -> uuid.UUID:
    """A new P1 through the delivery hook; its sends start right after the commit."""
    with sessions.begin() as s:
        alert = _alert(s, datetime.now(UTC), police_unit)
        hook.after_change(s, alert, alert_document(alert, device_role="victim"), Effects())
        return alert.id


class _Flow:
    def __init__(self) -> None:
        self.hooks: list[Any] = []


def test_the_fast_path_hands_back_a_job_of_a_subscription_at_its_limit(pg_sessions, receivers):
    archive, police = receivers(trickle_s=0.1), receivers()
    now = datetime.now(UTC)
    with pg_sessions.begin() as s:
        archive_id = _subscription(s, archive, "archive")  # takes every alert
        _subscription(s, police, "police RE07", police_units=["RE07"])
        for _ in range(2):
            _due(s, archive_id, now, due_s_ago=1.0)
    flow = _Flow()
    settings = PoliceSettings(concurrency=3, concurrency_per_subscription=2,
                              poll_interval_s=0.2, total_timeout_s=HANG_S, claim_lease_s=12.0)
    worker, _watch = install(settings, pg_sessions, flow, InProcessBus(), sender=_sender())
    worker.config = WorkerConfig(policy=POLICY, poll_interval_s=0.2, concurrency=3,
                                 concurrency_per_subscription=2, claim_lease_s=12.0)
    hook = flow.hooks[0]
    worker.start()
    try:
        wait_until(lambda: archive.requests == 2, timeout=5)  # two attempts hang: its limit
        other = _raise(pg_sessions, hook, "RE01")  # the archive's alone
        raised = time.monotonic()
        urgent = _raise(pg_sessions, hook, "RE07")  # the archive's and the police's
        assert police.wait_for(1, timeout=HANG_S * 2)
        took_s = time.monotonic() - raised
        time.sleep(0.3)
        in_flight = archive.requests
        with pg_sessions() as s:
            waiting = [d for alert_id in (other, urgent)
                       for d in service.deliveries_of(s, alert_id)
                       if d.subscription_id == archive_id]
    finally:
        archive.stop_trickling.set()
        worker.stop()
    assert took_s < HANG_S / 2, f"the police attempt waited {took_s:.1f} s behind the archive"
    assert in_flight == 2
    # Handed back, not attempted: claimable by a round as soon as the archive has room.
    assert [(d.state, d.attempts, d.claimed_until) for d in waiting] == [
        ("pending", 0, None)] * 2


def test_due_rows_are_claimed_p1_first_and_first_attempts_ahead_of_retries(pg_sessions,
                                                                          receivers):
    now = datetime.now(UTC)
    with pg_sessions.begin() as s:
        subscription_id = _subscription(s, receivers(), "police RE07")
        rows = {}
        for name, priority, attempts, due_s_ago in [
            ("P3 first attempt", "P3", 0, 3.0), ("P1 retry", "P1", 2, 2.0),
            ("P1 first attempt", "P1", 0, 1.0),
        ]:
            delivery_id = _due(s, subscription_id, now, due_s_ago)
            delivery = s.get(Delivery, delivery_id)
            delivery.priority, delivery.attempts = priority, attempts
            rows[delivery_id] = name
    claimed = []
    for _ in rows:
        with pg_sessions.begin() as s:
            [(delivery, _sub)] = service.claim_due(s, now, 1, 12.0)
            claimed.append(rows[delivery.id])
    assert claimed == ["P1 first attempt", "P1 retry", "P3 first attempt"]
