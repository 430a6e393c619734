"""Persistence of alerts, their timeline and outbox rows. No decisions here."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CTE, Select, Table, bindparam, insert, select, true, union_all, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.alerts.models import Alert, AlertEvent, OutboxMessage


# Statements built once (Core, on the tables): the alarm path only binds parameters. On
# PostgreSQL an alert is raised by `_raise_statement` (also built once, per shape of rows).
_INSERT_ALERT_SQLITE = (
    sqlite.insert(Alert.__table__)
    .on_conflict_do_nothing(index_elements=["device_id", "message_id"])
    .returning(Alert.__table__.c.id)
)
_INSERT_EVENT = insert(AlertEvent.__table__)
_INSERT_OUTBOX = insert(OutboxMessage.__table__).returning(
    OutboxMessage.__table__.c.id, sort_by_parameter_order=True
)


def raise_alert(
    session: Session, values: dict[str, Any], outbox_rows: list[dict[str, Any]],
    companions: Sequence[tuple[Table, list[dict[str, Any]]]] = (),
) -> list[int] | None:
    """Insert a new alert and, only if it is new, its outbox rows and companion rows (rows of
    other tables that belong to the raise, such as webhook deliveries; their `alert_id` is the
    alert's). Returns the outbox ids in the rows' order, or None when (device_id, message_id)
    already exists: a redelivery, which writes nothing.

    On PostgreSQL this is one statement (data-modifying CTEs): one round trip, and in an
    autocommit session its own transaction. Elsewhere it is one statement per table."""
    now = datetime.now(UTC)
    outbox_rows = [{**r, "created_at": now} for r in outbox_rows]  # see `enqueue`
    companions = [(table, rows) for table, rows in companions if rows]
    if session.get_bind().dialect.name != "postgresql":
        if session.execute(_INSERT_ALERT_SQLITE, values).first() is None:
            return None  # (device_id, message_id) exists: the database is the dedupe
        ids = enqueue(session, outbox_rows)
        for table, rows in companions:
            session.execute(insert(table), rows)
        return ids
    shape = (
        tuple(outbox_rows[0]) if outbox_rows else (), len(outbox_rows),
        tuple((table.name, tuple(rows[0]), len(rows)) for table, rows in companions),
    )
    params = {f"a_{k}": v for k, v in values.items()}
    for i, row in enumerate(outbox_rows):
        params.update({f"o{i}_{k}": v for k, v in row.items()})
    for t, (_table, rows) in enumerate(companions):
        for i, row in enumerate(rows):
            params.update({f"c{t}_{i}_{k}": v for k, v in row.items()})
    result = session.execute(_raise_statement(shape, tuple(values)), params).all()
    if not result:
        return None
    if not outbox_rows:
        return []
    targets = [r["target"] for r in outbox_rows]
    if len(set(targets)) != len(targets):
        raise ValueError("the outbox rows of one raise go to distinct topics")
    ids = {target: row_id for _, row_id, target in result}
    return [ids[target] for target in targets]


@functools.lru_cache(maxsize=64)
def _raise_statement(shape: tuple, alert_columns: tuple[str, ...]) -> Select:
    """The one-statement raise for a shape of rows (built once: SQLAlchemy then reuses its
    compiled form; only parameters change from alarm to alarm)."""
    outbox_columns, outbox_count, companion_shapes = shape
    table = Alert.__table__
    new_alert = (
        postgresql.insert(table)
        .values({c: bindparam(f"a_{c}", type_=table.c[c].type) for c in alert_columns})
        .on_conflict_do_nothing(index_elements=["device_id", "message_id"])
        .returning(table.c.id).cte("new_alert")
    )
    stmt = select(new_alert.c.id)
    if outbox_count:
        outbox = OutboxMessage.__table__
        written = _with_alert(new_alert, outbox, outbox_columns, outbox_count, "o",
                              (outbox.c.id, outbox.c.target))
        stmt = select(new_alert.c.id, written.c.id, written.c.target).select_from(
            new_alert.outerjoin(written, true()))
    for t, (name, columns, count) in enumerate(companion_shapes):
        companion = Alert.metadata.tables[name]
        stmt = stmt.add_cte(_with_alert(new_alert, companion, columns, count, f"c{t}_"))
    return stmt


def _with_alert(new_alert: CTE, table: Table, columns: tuple[str, ...], count: int,
                prefix: str, returning: tuple = ()) -> CTE:
    """INSERT INTO table SELECT new_alert.id, rows... : written only when the alert is."""
    cols = [table.c[c] for c in columns if c != "alert_id"]
    # The rows as SELECTs of parameters (UNION ALL): unlike VALUES, SQLAlchemy caches that.
    rows = [select(*[bindparam(f"{prefix}{i}_{c.name}", type_=c.type).label(c.name)
                     for c in cols]) for i in range(count)]
    data = (rows[0] if count == 1 else union_all(*rows)).subquery(f"{prefix}values")
    chosen = select(new_alert.c.id, *[data.c[c.name] for c in cols]).select_from(
        new_alert.join(data, true()))
    statement = postgresql.insert(table).from_select(
        ["alert_id", *[c.name for c in cols]], chosen)
    if returning:
        statement = statement.returning(*returning)
    return statement.cte(f"{prefix}rows")


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
