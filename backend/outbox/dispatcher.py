from __future__ import annotations

import logging
import threading
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from backend.alerts.models import OutboxMessage
from backend.mqtt.publisher import Publisher
from backend.outbox import expired

log = logging.getLogger(__name__)

SWEEP_BATCH = 500
# Acknowledged ids marked sent per UPDATE (each one a bound parameter: PostgreSQL takes at most
# 65535 in a statement, SQLite 32766).
FLUSH_CHUNK = 1000
# Acknowledged ids kept while the database does not take them (ids only: a few MB at most).
MAX_UNFLUSHED = 100_000


def keep_newest(ids: list[int], limit: int) -> tuple[list[int], int]:
    """The newest `limit` of `ids` (in arrival order) and how many older ones are let go."""
    dropped = max(0, len(ids) - limit)
    return ids[dropped:], dropped


@dataclass(frozen=True, slots=True)
class OutboxItem:
    """A committed outbox row, as the flow wrote it: published without reading it back."""

    id: int
    target: str
    payload: bytes
    qos: int


class OutboxDispatcher:
    def __init__(
        self,
        session_factory: sessionmaker[Session],
        resend_after_s: float = 5.0,
        flush_interval_s: float = 0.2,
        device_deadline_s: float = 300.0,
        max_unflushed: int = MAX_UNFLUSHED,
        flush_chunk: int = FLUSH_CHUNK,
    ) -> None:
        self._sessions = session_factory
        self._resend_after = timedelta(seconds=resend_after_s)
        self._device_deadline_s = device_deadline_s
        self._flush_interval = flush_interval_s
        self._publisher: Publisher | None = None
        self._delivered: deque[int] = deque()  # appended by the network thread
        # Taken from `_delivered`, not yet marked sent (by the flushing thread only).
        self._unflushed: list[int] = []
        self._max_unflushed = max_unflushed
        self._flush_chunk = flush_chunk
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, publisher: Publisher) -> None:
        self._publisher = publisher

    # Called from the MQTT network thread on PUBACK.
    def on_delivered(self, key: Hashable) -> None:
        self._delivered.append(int(key))  # type: ignore[call-overload]

    def send(self, items: list[OutboxItem]) -> None:
        """Publish freshly committed rows now (the fast path); the sweeper covers failures."""
        if self._publisher is None:
            return
        for item in items:
            self._publisher.publish(item.target, item.payload, item.qos, item.id)

    def flush_delivered(self) -> int:
        """Mark acknowledged rows sent, `flush_chunk` per UPDATE; the number marked. An id is
        kept until the UPDATE that marks it has committed: a flush that fails (the database
        away for a moment) raises, and the next one marks what it left. While the database stays
        away, at most `max_unflushed` ids are kept, the newest: an older acknowledgement let go
        leaves its row pending, so the sweep publishes it again once the database is back and
        the broker's next acknowledgement marks it sent (a police feed message past its
        deadline by then ends unconfirmed: the desk phones the control room)."""
        while self._delivered:
            self._unflushed.append(self._delivered.popleft())
        self._unflushed, dropped = keep_newest(self._unflushed, self._max_unflushed)
        if dropped:
            log.error("outbox: %d broker acknowledgements let go, the database not taking them; "
                      "their rows are published again", dropped)
        done = 0
        while self._unflushed:
            chunk = self._unflushed[:self._flush_chunk]
            self._mark_sent(chunk)  # raises: this chunk and the rest stay for the next flush
            del self._unflushed[:len(chunk)]
            done += len(chunk)
        return done

    def _mark_sent(self, ids: list[int]) -> None:
        with self._sessions.begin() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(status="sent", sent_at=datetime.now(UTC))
            )

    def expire(self, now: datetime | None = None) -> int:
        """End the device acks and commands pending for longer than `device_deadline_s`
        (`backend.outbox.expired`), with their outcome recorded; the number ended."""
        now = now or datetime.now(UTC)
        deadline_s = self._device_deadline_s
        reason = f"not confirmed by the broker within {deadline_s:g} s"
        total = 0
        while True:
            with self._sessions.begin() as session:
                ended = expired.end_expired(
                    session, now - timedelta(seconds=deadline_s), reason, SWEEP_BATCH)
                expired.record(session, ended, reason, now)
            total += len(ended)
            if len(ended) < SWEEP_BATCH:
                return total

    def sweep(self, now: datetime | None = None) -> int:
        """Re-publish rows still pending after `resend_after_s` (crash, broker outage), once
        the device messages past their deadline are ended (`expire`, in every process with an
        outbox, connected or not); a police feed message no longer once its deadline ended it
        (`backend.outbox.unconfirmed`)."""
        now = now or datetime.now(UTC)
        try:
            self.expire(now)
        except Exception:  # noqa: BLE001 - what is still due is re-published all the same
            log.exception("outbox: ending expired device messages failed")
        if self._publisher is None:
            return 0
        cutoff = now - self._resend_after
        with self._sessions.begin() as session:
            query = (
                select(OutboxMessage)
                .where(OutboxMessage.status == "pending")
                .where(OutboxMessage.created_at <= cutoff)
                .where(
                    (OutboxMessage.last_attempt_at.is_(None))
                    | (OutboxMessage.last_attempt_at <= cutoff)
                )
                .order_by(OutboxMessage.id)
                .limit(SWEEP_BATCH)
            )
            if session.get_bind().dialect.name == "postgresql":
                query = query.with_for_update(skip_locked=True)
            rows = list(session.scalars(query))
            for row in rows:
                row.attempts += 1
                row.last_attempt_at = now
                self._publisher.publish(row.target, row.payload, row.qos, row.id)
        if rows:
            log.warning("outbox re-published %d pending messages", len(rows))
        return len(rows)

    # -- background loop ------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="outbox", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            self.flush_delivered()
        except Exception:  # noqa: BLE001 - best effort at shutdown
            log.exception("outbox flush at shutdown failed")

    def _run(self) -> None:
        sweep_every = max(1, int(self._resend_after.total_seconds() / self._flush_interval / 2))
        ticks = 0
        while not self._stop.wait(self._flush_interval):
            ticks += 1
            try:
                self.flush_delivered()
                if ticks % sweep_every == 0:
                    self.sweep()
            except Exception:  # noqa: BLE001 - the loop must survive a database hiccup
                log.exception("outbox loop error")
