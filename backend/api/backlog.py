"""What is waiting, as metrics read from the database when they are scraped: police-feed and
device messages the broker has not acknowledged, webhook deliveries not yet through, open
alerts nobody has acknowledged, and open urgent alerts whose police delivery failed. An alarm
that reaches nobody shows here first; the counters of each process (`backend.metrics`) cannot
tell it. The values are the database's, the same from every API instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from backend.alerts.lifecycle import OPEN_STATES
from backend.alerts.models import Alert, OutboxMessage
from backend.subscriptions.models import Delivery

IN_FLIGHT = ("pending", "retrying")
READ_DOC = "1 when the database answered at this scrape, 0 when it did not (no backlog shown)"


def _age_s(oldest: datetime | None, now: datetime) -> float:
    """Seconds since `oldest`; 0 when nothing waits."""
    return max(0.0, (now - oldest).total_seconds()) if oldest is not None else 0.0


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


class BacklogCollector(Collector):
    def __init__(self, sessions: sessionmaker[Session],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self._sessions = sessions
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            with self._sessions() as s:
                outbox = s.execute(select(func.count(), func.min(OutboxMessage.created_at))
                                   .where(OutboxMessage.status == "pending")).one()
                webhooks = s.execute(select(func.count(), func.min(Delivery.window_start))
                                     .where(Delivery.state.in_(IN_FLIGHT))).one()
                unacknowledged = s.execute(
                    select(Alert.priority, func.count(), func.min(Alert.raised_at))
                    .where(Alert.state == "new").group_by(Alert.priority)).all()
                unreachable = s.scalar(select(func.count()).select_from(Alert).where(
                    Alert.state.in_(sorted(OPEN_STATES)),
                    Alert.police_delivery == "unreachable"))
        except SQLAlchemyError:
            yield _gauge("schildwacht_backlog_read", READ_DOC, 0)
            return
        now = self._clock()
        yield _gauge("schildwacht_backlog_read", READ_DOC, 1)
        yield _gauge("schildwacht_outbox_pending", "Broker messages (police feed, device acks "
                     "and commands) not yet acknowledged by the broker", outbox[0])
        yield _gauge("schildwacht_outbox_oldest_pending_seconds", "Age of the oldest of them",
                     _age_s(outbox[1], now))
        yield _gauge("schildwacht_webhook_deliveries_in_flight", "Webhook deliveries still being "
                     "attempted (pending or retrying)", webhooks[0])
        yield _gauge("schildwacht_webhook_oldest_in_flight_seconds", "Time since the delivery "
                     "window of the oldest of them began", _age_s(webhooks[1], now))
        count = GaugeMetricFamily("schildwacht_alerts_unacknowledged", "Open alerts in state "
                                  "new, by priority", labels=["priority"])
        oldest = GaugeMetricFamily("schildwacht_alerts_oldest_unacknowledged_seconds", "Age of "
                                   "the oldest of them, by priority", labels=["priority"])
        for priority, n, first in unacknowledged:
            count.add_metric([priority], n)
            oldest.add_metric([priority], _age_s(first, now))
        yield count
        yield oldest
        yield _gauge("schildwacht_alerts_police_unreachable", "Open alerts whose police "
                     "delivery failed (the console says: phone the control room)", unreachable)
