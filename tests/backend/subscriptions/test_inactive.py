"""A deactivated subscription is sent nothing more, on PostgreSQL with real HTTP receivers on
127.0.0.1: its open deliveries are not claimed, and the sweep ends them `rejected` so that the
console says "police not reached" instead of showing them pending for good."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import update

from backend.alerts.models import Alert
from backend.hub.bus import InProcessBus
from backend.police.client import Timeouts, Urllib3WebhookSender
from backend.police.retry import POLICE_NOT_REACHED, RetryPolicy
from backend.subscriptions import service
from backend.subscriptions.models import Delivery, Subscription
from backend.subscriptions.worker import DeliveryWorker, WorkerConfig
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services

SECRET = "whsec_" + "A" * 43 + "="


class NotingBus(InProcessBus):
    """The in-process bus, noting what the worker publishes."""

    def __init__(self) -> None:
        super().__init__()
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        super().publish(event)


def _delivery(s, receiver, name: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A P1 alert and its due delivery to a new subscription of `receiver`: their ids."""
    now = datetime.now(UTC)
    receiver.secret = SECRET
    sub = Subscription(id=uuid.uuid4(), name=name, url=receiver.url, secret=SECRET,
                       format="json")
    alert = Alert(id=uuid.uuid4(), type="panic", priority="P1", state="new", sequence=1,
                  raised_at=now, updated_at=now, flags=[], exercise=False,
                  police_delivery="pending")
    s.add_all([sub, alert])
    s.flush()
    delivery = Delivery(id=uuid.uuid4(), subscription_id=sub.id, alert_id=alert.id, sequence=1,
                        priority="P1", format="json", body=b"{}", state="pending", attempts=0,
                        created_at=now, window_start=now, next_attempt_at=now)
    s.add(delivery)
    s.flush()
    return sub.id, alert.id, delivery.id


def _deactivate(sessions, subscription_id: uuid.UUID) -> None:
    with sessions.begin() as s:
        s.execute(update(Subscription).where(Subscription.id == subscription_id)
                  .values(active=False))


def _state(sessions, delivery_id: uuid.UUID) -> str:
    with sessions() as s:
        return service.get_delivery(s, delivery_id).state


def test_an_inactive_subscriptions_delivery_is_not_claimed(pg_sessions, receivers):
    with pg_sessions.begin() as s:
        sub_id, _alert_id, _delivery_id = _delivery(s, receivers(), "police RE07")
    _deactivate(pg_sessions, sub_id)
    with pg_sessions.begin() as s:
        assert service.claim_due(s, datetime.now(UTC), 10, 12.0) == []
        assert service.next_claimable_at(s) is None  # the round does not wake for it


def test_an_inactive_subscriptions_open_delivery_ends_and_the_desk_is_told(pg_sessions,
                                                                           receivers):
    gone, live = receivers(), receivers()
    with pg_sessions.begin() as s:
        gone_id, alert_id, delivery_id = _delivery(s, gone, "police RE07 (old system)")
        _live_id, live_alert, live_delivery = _delivery(s, live, "police RE07")
    _deactivate(pg_sessions, gone_id)
    bus = NotingBus()
    worker = DeliveryWorker(
        pg_sessions, Urllib3WebhookSender(Timeouts(total_s=3.0)), bus,
        WorkerConfig(policy=RetryPolicy(deadline_s=30.0), poll_interval_s=0.2, concurrency=3,
                     claim_lease_s=12.0))
    worker.start()
    try:
        wait_until(lambda: _state(pg_sessions, delivery_id) == "rejected", timeout=5)
        assert live.wait_for(1, timeout=5)
    finally:
        worker.stop()
    assert gone.requests == 0
    with pg_sessions() as s:
        delivery = service.get_delivery(s, delivery_id)
        assert (delivery.state, delivery.attempts) == ("rejected", 0)
        assert "not sent: the subscription is inactive" in delivery.last_error
        [entry] = service.attempts_of(s, delivery_id)
        assert (entry.outcome, entry.status, entry.error) == ("rejected", None, "invalid_request")
        assert s.get(Alert, alert_id).police_delivery == "unreachable"
        assert service.get_delivery(s, live_delivery).state == "delivered"
        assert s.get(Alert, live_alert).police_delivery == "delivered"
    assert [e["notice"] for e in bus.events if e.get("notice")] == [POLICE_NOT_REACHED]
