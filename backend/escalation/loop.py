"""The escalation loop: carries out the due steps of every open alert's escalation plan.

One pass (`run_once(now)`) takes the alerts whose `next_escalation_at` has come one at a
time, each in a transaction of its own: it claims the next one with `FOR NO KEY UPDATE SKIP
LOCKED` on PostgreSQL (several processes may run the loop; each alert is handled by one; the
alert's timeline and deliveries can still be written meanwhile; on SQLite the transaction holds
the database's write lock), asks `backend.routing.escalation_due` what is due, and for each step
writes a timeline entry (`alert_events`, kind `escalated`) and a case log entry in the same
transaction; after its commit it publishes a console event `alert.escalated` per step and, for
a step that goes to the police unit directly, a police feed message (through the MQTT outbox)
and the webhook deliveries of the flow's hooks that take escalations (`after_escalation`: the
`DeliveryHook`, written in the same transaction, sent once the commit is done and the police
feed is out, `Effects.after_feed`). A step that calls the police marks the alert
`told_police` (the police unit of its place reads it from then on), in the same update of its
row as the step carried out. One alert at a time: an alert that waits for a lock (its
case row held by another transaction) holds no other alert's row meanwhile, so an operator's
acknowledgement of another alert does not wait for it, and the alerts escalated before it in
the pass have their police feed out already. Such a wait is bounded by `LOCK_TIMEOUT_MS`.

An alert that cannot be escalated is logged by id and stops neither the pass nor any other
alert (`_escalate_alone`): after a transient database error (`is_transient`: a lock wait that
ran out, a deadlock, a serialization failure, a lost connection) it stays due and is tried again
at the next pass (`supervision.escalation_interval_s`, 1 s), up to `TRANSIENT_TRIES` passes in
a row; after any other error, or that many transient ones, it is looked at again after
`RETRY_AFTER`.
The clock is injected, so tests drive the loop through time without sleeping.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, text, update
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from backend.periodic import Periodic
from backend.alerts import service as alert_service
from backend.alerts.document import alert_document, police_document
from backend.alerts.flows import Effects, acknowledged_at, alert_event, case_context, police_feeds
from backend.alerts.lifecycle import OPEN_STATES
from backend.alerts.models import Alert
from backend.caselog import service as caselog
from backend.cases.models import Case
from backend.db.engine import hold_write_lock
from backend.devices.models import Device
from backend.escalation.plan_codec import plan_from_json, recipients_to_json
from backend.hub.bus import EventBus
from backend.outbox.dispatcher import OutboxItem
from backend.routing import EscalationStep, escalation_due, next_escalation_at
from device_protocol import codec

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

ACTOR = "system:escalation"
# An alert that could not be escalated is looked at again after this long.
RETRY_AFTER = timedelta(seconds=60)
# An alert that met a transient database error is tried again at the next pass, this many
# passes in a row at most; then it waits `RETRY_AFTER` as after any other error.
TRANSIENT_TRIES = 10
# How long a statement of the pass waits for a lock (PostgreSQL) before the alert is left for
# the next pass, rather than the whole `database.statement_timeout_ms` (5 s).
LOCK_TIMEOUT_MS = 1_000
# SQLSTATEs of errors that the same statements may well not meet again at the next pass:
# connection exceptions (08), transaction rollbacks (40: serialization failure, deadlock),
# insufficient resources (53), a lock not available (55P03: lock_timeout), a statement
# cancelled (57014: statement_timeout) and the server shutting down or starting (57P01-57P03).
TRANSIENT_SQLSTATES = ("08", "40", "53", "55P03", "57014", "57P01", "57P02", "57P03")
# Alerts with transient failures remembered at most (one process's count of tries in a row).
MAX_REMEMBERED = 10_000
Clock = Callable[[], datetime]


def is_transient(exc: BaseException) -> bool:
    """Whether `exc` is a database error that the same work may not meet at the next pass (see
    `TRANSIENT_SQLSTATES`; SQLite: the database locked or busy). A bug, or stored data that
    cannot be read, is not."""
    if not isinstance(exc, DBAPIError):
        return False
    if exc.connection_invalidated:
        return True
    sqlstate = getattr(exc.orig, "sqlstate", None)
    if sqlstate:
        return sqlstate.startswith(TRANSIENT_SQLSTATES)
    if isinstance(exc.orig, sqlite3.OperationalError):
        message = str(exc.orig).lower()
        return "locked" in message or "busy" in message
    return False


def utc_now() -> datetime:
    return datetime.now(UTC)


def step_detail(step: EscalationStep) -> dict[str, Any]:
    return {
        "step": step.index,
        "action": step.action,
        "target": step.target,
        "after_s": step.after_seconds,
        "recipients": recipients_to_json(step.recipients),
    }


def calls_police(step: EscalationStep) -> bool:
    """Whether carrying out `step` tells the police of the alert: a step to the police unit
    directly that has a unit to call (its place's or the fallback; an exercise alert's
    exercise endpoint, standing in for one). Pure."""
    return step.target == "police_unit" and bool(police_feeds(_feed_recipients(step)))


def _feed_recipients(step: EscalationStep) -> list[dict[str, Any]]:
    return [{"kind": r.kind, "code": r.code} for r in step.recipients]


class EscalationLoop(Periodic):
    name = "escalation"

    def __init__(
        self,
        rt: Runtime,
        clock: Clock = utc_now,
        interval_s: float | None = None,
        batch: int = 100,
        bus: EventBus | None = None,
        lock_timeout_ms: int = LOCK_TIMEOUT_MS,
    ) -> None:
        self.rt = rt
        self.bus = bus or rt.bus
        self.clock = clock
        self.interval_s = interval_s or rt.settings.supervision.escalation_interval_s
        self.batch = batch
        self.lock_timeout_ms = lock_timeout_ms
        # Transient failures in a row per alert (`_escalate_alone`), in this process.
        self._transient: dict[uuid.UUID, int] = {}

    # -- one pass -------------------------------------------------------------------------------
    def run_once(self, now: datetime | None = None) -> int:
        """Carry out every step due at `now` (of `batch` alerts at most); return how many steps
        were carried out."""
        now = now or self.clock()
        count = 0
        tried: list[uuid.UUID] = []
        while len(tried) < self.batch:
            steps = self._next_alert(now, tried)
            if steps is None:
                break
            count += steps
        return count

    def _next_alert(self, now: datetime, tried: list[uuid.UUID]) -> int | None:
        """Escalate the next due alert not `tried` yet in this pass, in a transaction of its
        own, and send what it made once committed: the steps carried out, or None when no
        alert is due."""
        effects = Effects()
        with self.rt.sessions.begin() as session:
            alert = self._claim(session, now, tried)
            if alert is None:
                return None
            tried.append(alert.id)
            count = self._escalate_alone(session, alert, now, effects)
        effects.carry_out(self.rt.dispatcher, self.bus)  # the police feed first, as a raise's
        return count

    def _claim(self, session: Session, now: datetime, tried: list[uuid.UUID]) -> Alert | None:
        """The due alert first by its priority, then by its deadline, that is not `tried`,
        locked for this transaction (PostgreSQL: skipping any another process has; SQLite: the
        write lock). By priority first: a P1's call to the police does not wait behind the
        steps of hundreds of health alerts (P3) of a storm that fell due a moment before."""
        query = (
            select(Alert)
            .where(
                Alert.next_escalation_at.is_not(None),
                Alert.next_escalation_at <= now,
                Alert.state.in_(sorted(OPEN_STATES)),
            )
            .order_by(Alert.priority, Alert.next_escalation_at)
            .limit(1)
        )
        if tried:
            query = query.where(Alert.id.not_in(tried))
        if session.get_bind().dialect.name == "postgresql":
            alert = session.scalars(query.with_for_update(skip_locked=True, key_share=True)
                                    ).first()
            if alert is not None:  # what follows waits for a lock this long at most
                session.execute(text(f"SET LOCAL lock_timeout = {int(self.lock_timeout_ms)}"))
            return alert
        if session.scalars(query).first() is None:
            return None
        # SQLite: an alert's savepoint reads before it writes, and a transaction that read
        # cannot take the write lock once another one has it or committed since ("database is
        # locked" at once, no waiting): the step would be put off by RETRY_AFTER. Hold the lock
        # first, then read the due alert again under it.
        hold_write_lock(session)
        return session.scalars(query.execution_options(populate_existing=True)).first()

    def _escalate_alone(
        self, session: Session, alert: Alert, now: datetime, effects: Effects
    ) -> int:
        """`_escalate` in a savepoint of its own: an alert that cannot be escalated is logged by
        id and stops neither the pass nor the escalation of any other alert. After a transient
        database error it stays due, for the next pass (`TRANSIENT_TRIES` passes in a row at
        most); after any other (a stored plan that cannot be read, a bug) it is looked at again
        after `RETRY_AFTER` (it would otherwise come first in every pass, by its deadline, and
        fail it)."""
        own = Effects()
        # What the hooks left for after the commit (webhook sends) in `own` goes with a
        # savepoint rolled back; the other alerts' stays.
        try:
            with session.begin_nested():
                count = self._escalate(session, alert, now, own)
        except Exception as exc:  # noqa: BLE001 - one alert must not stop every other's
            session.expire(alert)
            if self._again_next_pass(alert.id, exc):
                return 0
            log.exception("escalation of alert id=%s failed; again in %ds", alert.id,
                          RETRY_AFTER.total_seconds())
            session.execute(update(Alert).where(Alert.id == alert.id)
                            .values(next_escalation_at=now + RETRY_AFTER))
            return 0
        self._transient.pop(alert.id, None)
        effects.extend(own)
        return count

    def _again_next_pass(self, alert_id: uuid.UUID, exc: Exception) -> bool:
        """Whether the alert that failed with `exc` stays due for the next pass: a transient
        error, fewer than `TRANSIENT_TRIES` in a row (logged with its SQLSTATE, never the
        statement's values)."""
        if not is_transient(exc):
            self._transient.pop(alert_id, None)
            return False
        tries = self._transient.pop(alert_id, 0) + 1
        if tries >= TRANSIENT_TRIES:
            return False
        if len(self._transient) >= MAX_REMEMBERED:  # alerts closed since they failed
            self._transient.clear()
        self._transient[alert_id] = tries
        sqlstate = getattr(getattr(exc, "orig", None), "sqlstate", None)
        log.warning("escalation of alert id=%s met a transient database error (%s, sqlstate "
                    "%s), try %d of %d; again at the next pass", alert_id,
                    type(getattr(exc, "orig", exc)).__name__, sqlstate, tries, TRANSIENT_TRIES)
        return True

    def _escalate(
        self, session: Session, alert: Alert, now: datetime, effects: Effects
    ) -> int:
        assert alert.escalation is not None
        plan = plan_from_json(alert.escalation)
        acked = acknowledged_at(alert)
        steps = escalation_due(
            plan, alert.raised_at, acked, alert.closed_at, alert.escalation_step, now
        )
        document = self._document(session, alert) if steps else {}
        # The row as it stands after the steps, set before their writes: it goes in the one
        # UPDATE the first of them flushes, and their console events carry who reads the alert
        # now (`told_police`: the unit of its place, once the police are called).
        if steps:
            alert.escalation_step = steps[-1].index
        if any(calls_police(step) for step in steps):
            alert.told_police = True
        alert.next_escalation_at = next_escalation_at(
            plan, alert.raised_at, acked, alert.closed_at, alert.escalation_step
        )
        for step in steps:
            self._carry_out(session, alert, step, document, now, effects)
        return len(steps)

    def _document(self, session: Session, alert: Alert) -> dict[str, Any]:
        case = session.get(Case, alert.case_id) if alert.case_id else None
        device = session.get(Device, alert.device_id) if alert.device_id else None
        return alert_document(
            alert,
            device_role=device.role if device else None,
            case=case_context(case) if case else None,
        )

    def _carry_out(
        self,
        session: Session,
        alert: Alert,
        step: EscalationStep,
        document: dict[str, Any],
        now: datetime,
        effects: Effects,
    ) -> None:
        detail = step_detail(step)
        alert_service.add_event(
            session,
            alert.id,
            at=now,
            actor=ACTOR,
            kind="escalated",
            from_state=alert.state,
            to_state=alert.state,
            detail=detail,
        )
        if alert.case_id is not None:
            caselog.append(
                session,
                alert.case_id,
                "escalation",
                ACTOR,
                {"type": alert.type, "priority": alert.priority, **detail},
                alert_id=alert.id,
                at=now,
            )
        if step.target == "police_unit":
            # The step's police recipients (an exercise alert's: the exercise endpoint).
            units = police_feeds(_feed_recipients(step))
            payload = codec.encode_document(police_document({**document, "escalation": detail}))
            rows = [{"alert_id": alert.id, "channel": "mqtt",
                     "target": self.rt.topics.police_alerts(unit), "payload": payload,
                     "qos": 1, "status": "pending", "attempts": 0, "created_at": now}
                    for unit in units]
            for row_id, row in zip(alert_service.enqueue(session, rows), rows, strict=True):
                effects.outbox.append(OutboxItem(row_id, row["target"], payload, 1))
            # The police's webhook subscriptions: the escalation as a message of its own.
            for hook in self.rt.flow.hooks:
                escalate = getattr(hook, "after_escalation", None)
                if escalate is not None:
                    escalate(session, alert, document, detail, effects)
        effects.events.append(
            alert_event(session, "alert.escalated", alert, document, escalation=detail)
        )
        log.warning(
            "alert escalated id=%s step=%s action=%s target=%s",
            alert.id,
            step.index,
            step.action,
            step.target,
        )
