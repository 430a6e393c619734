"""A police feed message the broker never confirms (the broker away, the connection lost) is
not re-published for ever: once the delivery deadline has passed it ends `unconfirmed`, goes on
its alert's timeline and makes the alert's police delivery unreachable, so that the console tells
the desk to phone the control room. On SQLite and PostgreSQL, with a fake clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.alerts.models import Alert, AlertEvent, OutboxMessage
from backend.outbox.dispatcher import OutboxDispatcher
from backend.police.attempt import AttemptResult
from backend.police.retry import POLICE_NOT_REACHED
from backend.subscriptions.models import Subscription
from backend.subscriptions.service import feed_counts
from backend.subscriptions.worker import DeliveryWorker, WorkerConfig
from tests.backend.subscriptions.test_worker import (
    POLICY,
    T0,
    Clock,
    RecordingBus,
    ScriptedSender,
    _seed,
)
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until
from tests.support.webhooks import start_deliveries, webhooks  # noqa: F401 - fixture

FEED = "sd/v1/police/RE07/alerts"


def _alert(sessions, priority: str = "P1") -> uuid.UUID:
    with sessions.begin() as s:
        alert = Alert(id=uuid.uuid4(), type="panic", priority=priority, state="new",
                      sequence=1, raised_at=T0, updated_at=T0, flags=[], exercise=False)
        s.add(alert)
        return alert.id


def _outbox(sessions, alert_id: uuid.UUID | None, target: str, seconds: float) -> int:
    with sessions.begin() as s:
        row = OutboxMessage(alert_id=alert_id, channel="mqtt", target=target, payload=b"{}",
                            qos=1, status="pending", attempts=3,
                            created_at=T0 + timedelta(seconds=seconds))
        s.add(row)
        s.flush()
        return row.id


def _worker(sessions, clock: Clock, results=()) -> DeliveryWorker:
    return DeliveryWorker(sessions, ScriptedSender(list(results)), RecordingBus(),
                          WorkerConfig(policy=POLICY), clock=clock)


def _status(sessions, outbox_id: int) -> str:
    with sessions() as s:
        return s.get(OutboxMessage, outbox_id).status


def _police_delivery(sessions, alert_id: uuid.UUID) -> str | None:
    with sessions() as s:
        return s.get(Alert, alert_id).police_delivery


class Published:
    def __init__(self) -> None:
        self.keys: list[int] = []

    def publish(self, topic: str, payload: bytes, qos: int, key) -> None:
        self.keys.append(key)


def test_a_feed_message_never_confirmed_ends_unreachable_at_the_deadline(sessions):
    urgent, routine = _alert(sessions, "P1"), _alert(sessions, "P3")
    old_feed = _outbox(sessions, urgent, FEED, 0)
    routine_feed = _outbox(sessions, routine, FEED, 0)
    device_ack = _outbox(sessions, urgent, "sd/v1/dev/vic-1/ack", 0)
    new_feed = _outbox(sessions, urgent, "sd/v1/police/RE05/alerts", 4)
    clock = Clock()
    worker = _worker(sessions, clock)

    clock.now = T0 + timedelta(seconds=4.9)  # the deadline (5 s) has not passed
    assert worker.sweep_feeds() == 0
    clock.now = T0 + timedelta(seconds=5)
    assert worker.sweep_feeds() == 2
    assert worker.sweep_feeds() == 0  # ended once

    assert [_status(sessions, i) for i in (old_feed, routine_feed, device_ack, new_feed)] == [
        "unconfirmed", "unconfirmed", "pending", "pending"]
    assert _police_delivery(sessions, urgent) == "unreachable"
    assert _police_delivery(sessions, routine) == "failed"  # recorded, no call needed
    with sessions() as s:
        [entry] = s.query(AlertEvent).filter_by(alert_id=urgent).all()
        row = s.get(OutboxMessage, old_feed)
    assert (entry.actor, entry.kind) == ("police feed", "delivery")
    assert entry.detail["state"] == "unreachable" and entry.detail["topic"] == FEED
    assert row.last_error == "not confirmed by the broker within 5 s"
    notices = {e["alert"]["alert_id"]: e.get("notice") for e in worker._bus.events}
    assert notices == {str(urgent): POLICE_NOT_REACHED, str(routine): None}

    # The dispatcher no longer re-publishes what ended; the rest it still does.
    dispatcher = OutboxDispatcher(sessions, resend_after_s=1.0)
    published = Published()
    dispatcher.attach(published)
    dispatcher.sweep(now=T0 + timedelta(seconds=10))
    assert sorted(published.keys) == sorted([device_ack, new_feed])


@pytest.mark.parametrize("units, partner, after", [
    ([], False, "delivered"),  # a police system of every unit took the alert by webhook
    (["RE07"], False, "delivered"),  # one of the feed's unit
    (["RE05"], False, "unreachable"),  # another unit's: RE07 got nothing
    ([], True, "unreachable"),  # an archive or a partner: no control room
    (["RE07"], True, "unreachable"),
])
def test_a_webhook_that_reached_the_feeds_unit_clears_the_unconfirmed_feed(sessions, units,
                                                                           partner, after):
    """A unit whose police systems take webhooks only has no subscriber on its MQTT feed, and
    the broker answers "no matching subscribers": the feed ends unconfirmed. The unit has the
    alert once a webhook to one of its systems delivered it; a webhook to another unit's does
    not make up for the feed."""
    alert_id = _seed(sessions)  # one webhook delivery, pending
    with sessions.begin() as s:
        s.query(Subscription).update({"police_units": units, "partner": partner})
    _outbox(sessions, alert_id, FEED, 0)
    clock = Clock()
    worker = _worker(sessions, clock, [AttemptResult(200, 1.0)])
    clock.now = T0 + timedelta(seconds=6)
    assert worker.sweep_feeds() == 1
    assert _police_delivery(sessions, alert_id) == "unreachable"
    assert worker.run_once() == 1  # the webhook: 200
    assert _police_delivery(sessions, alert_id) == after


def test_which_unconfirmed_feed_counts_as_the_police_not_reached():
    assert feed_counts("RE07", []) is True  # no webhook got through
    assert feed_counts("RE07", [["RE05"]]) is True
    assert feed_counts("RE07", [["RE05"], ["RE07", "RE01"]]) is False
    assert feed_counts("RE07", [[]]) is False  # a subscription of every unit


def test_the_running_delivery_worker_ends_unconfirmed_feed_messages(webhooks):
    """The sweep runs in every process's delivery worker: a feed message still pending past the
    deadline (4 s in the test policy) ends there, with no dispatcher to re-publish it."""
    stack = webhooks
    stack.runtime.dispatcher.stop()  # this process's broker connection is gone
    sessions = stack.runtime.sessions
    with sessions.begin() as s:
        alert = Alert(id=uuid.uuid4(), type="panic", priority="P1", state="new", sequence=1,
                      flags=[], exercise=False)
        s.add(alert)
        s.flush()
        feed = OutboxMessage(alert_id=alert.id, channel="mqtt", payload=b"{}", qos=1,
                             target=stack.topics.police_alerts("RE07"), status="pending",
                             created_at=datetime.now(UTC) - timedelta(seconds=5))
        s.add(feed)
        s.flush()
        alert_id, feed_id = alert.id, feed.id
    wait_until(lambda: _police_delivery(sessions, alert_id) == "unreachable", timeout=10)
    assert _status(sessions, feed_id) == "unconfirmed"


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_feed_nobody_subscribes_to_ends_unconfirmed(stack):
    """Mosquitto over MQTT 5 answers the police feed message of an alarm that no police system
    subscribes to with PUBACK 0x10, no matching subscribers: not delivered, so it stays
    pending, is published again, and past the deadline (4 s in the test policy) ends
    unconfirmed and the console is told to phone. The device's ack, with no session to take
    it, stays pending too (its deadline is 300 s)."""
    worker = start_deliveries(stack)  # and no police system listens
    try:
        _raise_unheard(stack)
    finally:
        worker.stop()


def _raise_unheard(stack) -> None:
    stack.register("vic-601")
    device = stack.device("vic-601")
    api = stack.api()
    publish(device, stack.topics.alarm("vic-601"), codec.encode(Alarm(id="n-1")))
    alert_id = uuid.UUID(wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0],
                                    )["alert_id"])
    sessions = stack.runtime.sessions
    wait_until(lambda: _police_delivery(sessions, alert_id) == "unreachable", timeout=15)
    with sessions() as s:
        rows = {row.target: row.status for row in s.query(OutboxMessage).filter_by(
            alert_id=alert_id)}
        [entry] = s.query(AlertEvent).filter_by(alert_id=alert_id, actor="police feed").all()
    assert rows[stack.topics.police_alerts("RE07")] == "unconfirmed"
    assert rows[stack.topics.ack("vic-601")] == "pending"
    assert entry.detail["state"] == "unreachable"
