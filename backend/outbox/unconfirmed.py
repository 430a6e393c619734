"""Police feed messages the broker never confirmed (safety invariant 4: bounded retries and a
recorded outcome).

The dispatcher re-publishes a pending outbox row every `ingest.outbox_resend_after_s` until the
broker acknowledges it. A police feed message still pending once the police delivery deadline
(`police.deadline_s`, the webhooks' too) has passed is ended `unconfirmed`: no longer
re-published, on its alert's timeline, and counted as an unreachable delivery in the alert's
`police_delivery` (`backend.subscriptions.service.delivery_states`), so that the console tells
the desk to phone the control room (the delivery worker's sweep does this, in every process),
unless a webhook of a police system of that unit delivered the alert: the unit has it. (A unit
whose systems take webhooks only has no subscriber on its feed, which Mosquitto answers "no
matching subscribers": without this, every urgent alert of that unit would tell the desk to
phone.)

A broker acknowledgement that still comes afterwards marks the row sent (the broker has it):
the alert says "police not reached" until its police delivery is next worked out (a webhook's
outcome, a transition), which then no longer counts that message.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.alerts.models import OutboxMessage

UNCONFIRMED = "unconfirmed"
# What `Topics.police_alerts(unit)` makes, `{root}/police/{unit}/alerts`; a device's downlink
# topics end in `/ack` or `/cmd`.
POLICE_FEED_TOPICS = "%/police/%/alerts"


def end_unconfirmed(session: Session, created_before: datetime, reason: str, limit: int = 100,
                    ) -> list[tuple[int, uuid.UUID, str]]:
    """End the police feed messages still pending that were created before `created_before`:
    (outbox id, alert id, topic) of each, in id order."""
    query = (
        select(OutboxMessage.id, OutboxMessage.alert_id, OutboxMessage.target)
        .where(OutboxMessage.status == "pending",
               OutboxMessage.created_at <= created_before,
               OutboxMessage.alert_id.is_not(None),
               OutboxMessage.target.like(POLICE_FEED_TOPICS))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # another process ends the others
    rows = [(i, a, t) for i, a, t in session.execute(query).all()]
    if rows:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([i for i, _, _ in rows]),
                   OutboxMessage.status == "pending")
            .values(status=UNCONFIRMED, last_error=reason)
        )
    return rows


def unconfirmed_feeds(session: Session, alert_id: uuid.UUID) -> list[tuple[int, str]]:
    """(outbox id, police unit) of the alert's police feed messages that ended unconfirmed."""
    rows = session.execute(
        select(OutboxMessage.id, OutboxMessage.target).where(
            OutboxMessage.alert_id == alert_id, OutboxMessage.status == UNCONFIRMED,
            OutboxMessage.target.like(POLICE_FEED_TOPICS))
    ).all()
    return [(row_id, feed_unit(target)) for row_id, target in rows]


def feed_unit(topic: str) -> str:
    """The police unit of a feed topic, `{root}/police/{unit}/alerts`."""
    return topic.rsplit("/", 2)[-2]
