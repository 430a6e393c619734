"""The retention of alert copies, on real services and on the embedded defaults: past
`outbox.retention_days` the broker's acknowledged outbox rows are deleted and the bodies of ended
webhook deliveries emptied; rows still on their way, the alert and the delivery record stay."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from backend.alerts.models import Alert, OutboxMessage
from backend.escalation.background import BackgroundLoops
from backend.outbox.retention import Cleared, OutboxRetentionLoop, clear_copies
from backend.subscriptions.models import Delivery
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until
from tests.support.webhooks import receivers, subscribe, webhooks  # noqa: F401 - fixtures

pytestmark = pytest.mark.services

DAYS = 30


def _outbox(stack, *rows: tuple[str, datetime]) -> list[int]:
    with stack.runtime.sessions.begin() as s:
        made = [OutboxMessage(channel="mqtt", target="sd/v1/police/RE07/alerts",
                              payload=b'{"lat": 51.92}', status=status, created_at=at)
                for status, at in rows]
        s.add_all(made)
        s.flush()
        return [m.id for m in made]


def _outbox_left(stack) -> set[int]:
    with stack.runtime.sessions() as s:
        return set(s.scalars(select(OutboxMessage.id)))


def test_ended_outbox_rows_past_the_retention_go_in_batches_and_pending_ones_stay(stack):
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=DAYS, hours=1), now - timedelta(days=DAYS - 1)
    expired = _outbox(stack, *[("sent", old)] * 4, ("unconfirmed", old), ("expired", old))
    kept = _outbox(stack, ("pending", old), ("sent", recent), ("pending", recent),
                   ("unconfirmed", recent), ("expired", recent))

    done = clear_copies(stack.runtime.engine, DAYS, now, batch=2)  # batches of 2, 2, 2 and 0

    assert done == Cleared(outbox_deleted=6, bodies_emptied=0)
    assert _outbox_left(stack) >= set(kept) and not _outbox_left(stack) & set(expired)
    assert clear_copies(stack.runtime.engine, DAYS, now, batch=2) == Cleared()


def test_ended_deliveries_lose_their_bodies_not_their_record(webhooks, receivers, caplog):
    stack = webhooks
    api = stack.api()
    up, down = receivers(), receivers(down=True)
    subscribe(api, up)
    subscribe(api, down)
    stack.register("vic-301")
    device = stack.device("vic-301")
    # The device listens (the police systems do, `webhooks`), so that the broker takes the
    # alert's messages (over MQTT 5 one nobody subscribes to stays pending:
    # backend.mqtt.publisher).
    stack.collector(stack.topics.ack("vic-301"))
    stack.collector(stack.topics.cmd("vic-301"))
    publish(device, stack.topics.alarm("vic-301"), codec.encode(Alarm(id="r-1", lat=51.92,
                                                                      lon=4.48)))
    alert_id = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])["alert_id"]
    ended = wait_until(lambda: (ds := api.get("/api/v1/deliveries",
                                              params={"alert_id": alert_id}).json())
                       and {d["state"] for d in ds} == {"delivered", "unreachable"} and ds,
                       timeout=20)
    sessions = stack.runtime.sessions
    wait_until(lambda: sessions().scalar(select(func.count()).select_from(OutboxMessage).where(
        OutboxMessage.alert_id == uuid.UUID(alert_id), OutboxMessage.status == "pending")) == 0)
    with sessions() as s:
        alert_outbox = s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.alert_id == uuid.UUID(alert_id)))
    assert alert_outbox >= 1  # the police feed, and the device's ack
    with sessions.begin() as s:  # one more message of the alert still being retried
        retrying = Delivery(subscription_id=uuid.UUID(ended[0]["subscription_id"]),
                            alert_id=uuid.UUID(alert_id), sequence=99, priority="P1",
                            format="json", body=b"{}", state="retrying")
        s.add(retrying)
    loop = OutboxRetentionLoop(stack.runtime)
    assert loop.interval_s == stack.settings.outbox.retention_interval_s
    assert any(isinstance(each, OutboxRetentionLoop)
               for each in BackgroundLoops(stack.runtime)._loops())

    now = datetime.now(UTC)
    assert loop.run_once(now + timedelta(days=DAYS - 1)) == Cleared()  # not yet
    with caplog.at_level("INFO", logger="backend.outbox.retention"):
        done = loop.run_once(now + timedelta(days=DAYS, minutes=1))

    assert done == Cleared(outbox_deleted=alert_outbox, bodies_emptied=2)
    assert "webhook bodies emptied=2" in caplog.text and "51.92" not in caplog.text
    with sessions() as s:
        bodies = {d.id: d.body for d in s.scalars(select(Delivery).where(
            Delivery.alert_id == uuid.UUID(alert_id)))}
        assert s.scalar(select(func.count()).select_from(OutboxMessage).where(
            OutboxMessage.alert_id == uuid.UUID(alert_id))) == 0
        assert s.get(Alert, uuid.UUID(alert_id)).lat == 51.92  # the alert keeps its position
    assert bodies.pop(retrying.id) == b"{}"  # still on its way
    assert set(bodies.values()) == {b""}
    record = api.get("/api/v1/deliveries", params={"alert_id": alert_id}).json()
    assert {(d["id"], d["state"], d["attempts"]) for d in record} >= {
        (d["id"], d["state"], d["attempts"]) for d in ended}
    failed = next(d for d in ended if d["state"] == "unreachable")
    assert api.get(f"/api/v1/deliveries/{failed['id']}").json()["log"]  # the attempts stay

    down.down = False
    for path in (f"/api/v1/alerts/{alert_id}/deliveries/replay",
                 f"/api/v1/deliveries/{failed['id']}/replay"):
        r = api.post(path)
        assert r.status_code == 409 and "retention" in r.text
    assert loop.run_once(now + timedelta(days=DAYS, minutes=2)) == Cleared()
    device.disconnect()
