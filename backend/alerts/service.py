"""Persistence of alerts, their timeline and outbox rows. No decisions here."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Select, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.alerts.models import Alert, AlertEvent, OutboxMessage


# Statements built once (Core, on the tables): the alarm path only binds parameters.
_INSERT_ALERT = {
    "postgresql": postgresql.insert(Alert.__table__)
    .on_conflict_do_nothing(index_elements=["device_id", "message_id"])
    .returning(Alert.__table__.c.id),
    "sqlite": sqlite.insert(Alert.__table__)
    .on_conflict_do_nothing(index_elements=["device_id", "message_id"])
    .returning(Alert.__table__.c.id),
}
_INSERT_EVENT = insert(AlertEvent.__table__)
_INSERT_OUTBOX = insert(OutboxMessage.__table__).returning(
    OutboxMessage.__table__.c.id, sort_by_parameter_order=True
)


def insert_alert_if_new(session: Session, values: dict[str, Any]) -> bool:
    """Insert an alert unless (device_id, message_id) exists: the database is the dedupe."""
    stmt = _INSERT_ALERT[session.get_bind().dialect.name]
    return session.execute(stmt, values).first() is not None


def add_event(
    session: Session,
    alert_id: uuid.UUID,
    *,
    at: datetime,
    actor: str,
    kind: str,
    from_state: str | None = None,
    to_state: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    session.execute(_INSERT_EVENT, {
        "alert_id": alert_id, "at": at, "actor": actor, "kind": kind,
        "from_state": from_state, "to_state": to_state, "detail": detail,
    })


def enqueue(session: Session, rows: list[dict[str, Any]]) -> list[int]:
    """Write outbox rows in the caller's transaction; return their ids in order.

    `created_at` is now, whatever the caller says: the sweeper re-publishes rows pending for a
    while after they were written, and a message that waited in a backlog must not look old."""
    if not rows:
        return []
    now = datetime.now(UTC)
    rows = [{**r, "created_at": now} for r in rows]
    if len(rows) == 1:
        return [session.execute(_INSERT_OUTBOX, rows[0]).scalar_one()]
    return [r[0] for r in session.execute(_INSERT_OUTBOX, rows)]


def compare_and_set_state(
    session: Session, alert_id: uuid.UUID, expected: str, values: dict[str, Any]
) -> bool:
    """Move the alert on only if nobody else did first (optimistic concurrency)."""
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.state == expected)
        .values(sequence=Alert.sequence + 1, **values)
    )
    return result.rowcount == 1


def get(session: Session, alert_id: uuid.UUID) -> Alert | None:
    return session.get(Alert, alert_id, populate_existing=True)


def list_query(
    *, states: list[str] | None = None, priority: str | None = None, limit: int = 100
) -> Select[tuple[Alert]]:
    query = select(Alert)
    if states:
        query = query.where(Alert.state.in_(states))
    if priority:
        query = query.where(Alert.priority == priority)
    return query.order_by(Alert.priority, Alert.raised_at.desc()).limit(limit)


def timeline(session: Session, alert_id: uuid.UUID) -> list[AlertEvent]:
    return list(
        session.scalars(
            select(AlertEvent).where(AlertEvent.alert_id == alert_id).order_by(AlertEvent.id)
        )
    )


def mark_followed_up(session: Session, alert_id: uuid.UUID, at: datetime) -> bool:
    """Claim the alert's follow-up: True for the one transaction that gets to run it."""
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert_id, Alert.followed_up_at.is_(None))
        .values(followed_up_at=at)
    )
    return result.rowcount == 1


def unfinished(session: Session, device_id: str | None, message_id: str | None) -> Alert | None:
    """The alert of (device, message id) if its follow-up has not run yet."""
    if device_id is None or message_id is None:
        return None
    return session.scalar(
        select(Alert).where(
            Alert.device_id == device_id, Alert.message_id == message_id,
            Alert.followed_up_at.is_(None),
        )
    )
