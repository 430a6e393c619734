"""Retention of the copies made to carry alert documents (`OutboxSettings.retention_days`).

An alert keeps its own position for as long as it is kept: it is evidence. The copies of its
document written to carry it are not, and they hold the same position:

- the MQTT outbox: a row the broker acknowledged (`sent`; police feed messages, device acks and
  commands) or that ended unacknowledged (`unconfirmed`, `backend.outbox.unconfirmed`, and
  `expired`, `backend.outbox.expired`; its alert's timeline and the case log keep the outcome)
  is deleted once it is older than the retention;
- the webhook deliveries: a delivery that ended (delivered, rejected, unreachable) has its body
  emptied once it is older than the retention. The row itself (state, attempts, times, the last
  status) and its delivery log stay: they are the record of whether the police were reached.
  A delivery without its body can no longer be replayed.

A row still on its way (an outbox row not acknowledged, a delivery pending or retrying) is never
touched, however old. Each kind is done in transactions of `batch` rows; the loops run a pass
every `retention_interval_s`, the first at start. Both databases run the same statements.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import Engine, delete, select, text, update

from backend.alerts.models import OutboxMessage
from backend.outbox.expired import EXPIRED
from backend.outbox.unconfirmed import UNCONFIRMED
from backend.periodic import Periodic
from backend.subscriptions.models import FINAL_DELIVERY_STATES, Delivery

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

BATCH = 5_000
# The outbox rows that ended, acknowledged by the broker or not.
ENDED_OUTBOX = ("sent", UNCONFIRMED, EXPIRED)
# The condition of the partial index of the bodies still kept, as it is written there (a
# literal: a bound parameter would not let the planner use that index).
BODY_KEPT = text("length(webhook_deliveries.body) > 0")


@dataclass(frozen=True, slots=True)
class Cleared:
    """What one pass did."""

    outbox_deleted: int = 0
    bodies_emptied: int = 0


def utc_now() -> datetime:
    return datetime.now(UTC)


def clear_copies(engine: Engine, retention_days: int, now: datetime, *,
                 batch: int = BATCH) -> Cleared:
    """Delete the ended outbox rows and empty the bodies of ended deliveries created before
    `now - retention_days`."""
    cutoff = now - timedelta(days=retention_days)
    sent = select(OutboxMessage.id).where(
        OutboxMessage.status.in_(ENDED_OUTBOX), OutboxMessage.created_at < cutoff
    ).limit(batch)
    ended = select(Delivery.id).where(
        BODY_KEPT,
        Delivery.created_at < cutoff,
        Delivery.state.in_(FINAL_DELIVERY_STATES),
    ).limit(batch)
    deleted = _in_batches(engine, batch, lambda ids: delete(OutboxMessage).where(
        OutboxMessage.id.in_(ids)), sent)
    emptied = _in_batches(engine, batch, lambda ids: update(Delivery).where(
        Delivery.id.in_(ids)).values(body=b""), ended)
    return Cleared(deleted, emptied)


def _in_batches(engine: Engine, batch: int, change, rows) -> int:
    """Apply `change` to the rows `rows` selects, `batch` at a time, each batch its own
    transaction; one that finds fewer than `batch` has found them all."""
    done = 0
    while True:
        with engine.begin() as conn:
            count = conn.execute(change(rows)).rowcount
        done += count
        if count < batch:
            return done


class OutboxRetentionLoop(Periodic):
    name = "outbox-retention"

    def __init__(self, rt: Runtime, clock=utc_now) -> None:
        self.rt = rt
        self.clock = clock
        self.interval_s = rt.settings.outbox.retention_interval_s

    def run_once(self, now: datetime | None = None) -> Cleared:
        days = self.rt.settings.outbox.retention_days
        done = clear_copies(self.rt.engine, days, now or self.clock())
        if done.outbox_deleted or done.bodies_emptied:
            log.info("alert copies past the retention of %d days: outbox rows deleted=%d, "
                     "webhook bodies emptied=%d", days, done.outbox_deleted, done.bodies_emptied)
        return done
