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
    ) -> None:
        self._sessions = session_factory
        self._resend_after = timedelta(seconds=resend_after_s)
        self._device_deadline_s = device_deadline_s
        self._flush_interval = flush_interval_s
        self._publisher: Publisher | None = None
        self._delivered: deque[int] = deque()
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
        """Mark acknowledged rows sent (one UPDATE)."""
        ids: list[int] = []
        while self._delivered:
            ids.append(self._delivered.popleft())
        if not ids:
            return 0
        with self._sessions.begin() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id.in_(ids))
                .values(status="sent", sent_at=datetime.now(UTC))
            )
        return len(ids)

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
