"""Persistence of alerts, their timeline and outbox rows. No decisions here."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, Select, Table, TextClause, insert, or_, select, text, update
from sqlalchemy.dialects import sqlite
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
        tuple(values), tuple(outbox_rows[0]) if outbox_rows else (),
        tuple((table.name, tuple(rows[0])) for table, rows in companions),
    )
    params = {"alert": _json(values), "outbox": _json(outbox_rows)}
    params.update({f"c{t}": _json(rows) for t, (_table, rows) in enumerate(companions)})
    result = session.execute(_raise_statement(shape), params).all()
    if not result:
        return None
    if not outbox_rows:
        return []
    targets = [r["target"] for r in outbox_rows]
    if len(set(targets)) != len(targets):
        raise ValueError("the outbox rows of one raise go to distinct topics")
    ids = {target: row_id for _, row_id, target in result}
    return [ids[target] for target in targets]


def _json_default(value: Any) -> str:
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's hex input format
    raise TypeError(f"{type(value).__name__} is not a column value")


def _json(rows: dict[str, Any] | list[dict[str, Any]]) -> str:
    """Rows as one JSON parameter (what `jsonb_populate_record[set]` reads on the server)."""
    for row in rows if isinstance(rows, list) else [rows]:
        for value in row.values():
            if isinstance(value, datetime) and value.tzinfo is None:
                raise ValueError("naive datetime: use aware UTC datetimes")
    return orjson.dumps(rows, default=_json_default).decode()


@functools.lru_cache(maxsize=64)
def _raise_statement(shape: tuple) -> TextClause:
    """The one-statement raise for a shape of rows (which columns the alert, the outbox and the
    companion rows carry; the others get the table's server default), built once. Each table's
    rows travel as one JSON parameter that the server turns into typed rows: a short statement
    with three or four parameters, which psycopg prepares and converts once, where one parameter
    per value was sixty and a 7 KB text to rescan."""
    columns, outbox_columns, companion_shapes = shape
    alerts = Alert.__table__
    ctes = [
        f"new_alert AS (INSERT INTO alerts ({', '.join(columns)}) "
        f"SELECT {', '.join(_value(alerts, c) for c in columns)} "
        f"FROM jsonb_populate_record(NULL::alerts, CAST(:alert AS jsonb)) AS r "
        f"ON CONFLICT (device_id, message_id) DO NOTHING RETURNING id)"
    ]
    final = "SELECT new_alert.id FROM new_alert"
    if outbox_columns:
        ctes.append(_with_alert(OutboxMessage.__table__, outbox_columns, "outbox", "o_rows",
                                " RETURNING id, target"))
        final = ("SELECT new_alert.id, o_rows.id, o_rows.target "
                 "FROM new_alert LEFT JOIN o_rows ON true")
    for t, (name, names) in enumerate(companion_shapes):
        ctes.append(_with_alert(Alert.metadata.tables[name], names, f"c{t}", f"c{t}_rows"))
    return text(f"WITH {', '.join(ctes)} {final}")


def _value(table: Table, column: str) -> str:
    """A column of the JSON row; None in a JSON column is JSON null, as SQLAlchemy writes it."""
    if isinstance(table.c[column].type, JSON):
        return f"COALESCE(r.{column}, 'null'::json)"
    return f"r.{column}"


def _with_alert(table: Table, names: tuple[str, ...], param: str, cte: str,
                returning: str = "") -> str:
    """INSERT INTO table SELECT new_alert.id, rows... : written only when the alert is."""
    columns = [c for c in names if c != "alert_id"]
    return (
        f"{cte} AS (INSERT INTO {table.name} (alert_id, {', '.join(columns)}) "
        f"SELECT new_alert.id, {', '.join(_value(table, c) for c in columns)} "
        f"FROM new_alert, jsonb_populate_recordset(NULL::{table.name}, CAST(:{param} AS jsonb))"
        f" AS r{returning})"
    )


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


def lock(session: Session, alert_id: uuid.UUID) -> Alert | None:
    """Hold the alert's row until the transaction ends, for a change computed from the alert's
    other rows, and return the alert as it is now (None when it is gone): one statement.
    `FOR NO KEY UPDATE`: rows that refer to the alert (timeline entries, deliveries, outbox
    rows) can still be written meanwhile, only another lock or an update of the alert waits.
    (No lock on SQLite, which has one writer at a time.)"""
    return session.scalars(
        select(Alert).where(Alert.id == alert_id).with_for_update(key_share=True)
        .execution_options(populate_existing=True)
    ).one_or_none()


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


def change_locked(session: Session, alert_id: uuid.UUID, values: dict[str, Any]) -> None:
    """Change an alert whose row this transaction holds (`lock`), in its state as locked:
    nobody can have moved it meanwhile. Its sequence goes up, as with every change."""
    session.execute(
        update(Alert).where(Alert.id == alert_id)
        .values(sequence=Alert.sequence + 1, **values)
        .execution_options(synchronize_session=False)
    )


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


def has_open(session: Session, device_id: str, alert_type: str) -> bool:
    """Whether the device has an open alert of this type."""
    from backend.alerts.lifecycle import OPEN_STATES

    return session.scalar(select(Alert.id).where(
        Alert.device_id == device_id, Alert.type == alert_type,
        Alert.state.in_(sorted(OPEN_STATES))).limit(1)) is not None


def of_message(session: Session, device_id: str | None, message_id: str | None) -> Alert | None:
    """The alert of (device, message id), if there is one."""
    if device_id is None or message_id is None:
        return None
    return session.scalar(
        select(Alert).where(Alert.device_id == device_id, Alert.message_id == message_id))


def presses(
    session: Session, device_id: str, message_id: str, sep: str
) -> list[tuple[str, str]]:
    """The (message id, state) of the device's alerts raised for this message id and for
    presses that came again with it (keyed `{message_id}{sep}...`)."""
    return [(r.message_id, r.state) for r in session.execute(
        select(Alert.message_id, Alert.state).where(
            Alert.device_id == device_id,
            or_(Alert.message_id == message_id,
                Alert.message_id.startswith(message_id + sep, autoescape=True))))]


def of_message_or_confirmation(
    session: Session, device_id: str, message_id: str
) -> Alert | None:
    """The device's alert raised for this message id, or the one it confirmed
    (`Alert.confirmed_by`), if there is one."""
    return session.scalar(select(Alert).where(
        Alert.device_id == device_id,
        or_(Alert.message_id == message_id, Alert.confirmed_by == message_id)).limit(1))


def open_to_confirm(
    session: Session, device_id: str, alert_type: str, message_prefix: str
) -> uuid.UUID | None:
    """The newest open alert of the device and type whose message id starts with the prefix
    and that nothing confirmed yet, if there is one."""
    from backend.alerts.lifecycle import OPEN_STATES

    return session.scalar(
        select(Alert.id)
        # Escaped: an `_` in the prefix (a measure id) would be a LIKE wildcard.
        .where(Alert.device_id == device_id, Alert.type == alert_type,
               Alert.message_id.startswith(message_prefix, autoescape=True),
               Alert.state.in_(sorted(OPEN_STATES)), Alert.confirmed_by.is_(None))
        .order_by(Alert.raised_at.desc()).limit(1))
