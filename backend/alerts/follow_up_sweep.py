"""The follow-up sweep: finishes the follow-up of raised alerts whose follow-up never ran.

An alert's raise commits the alert with its police feed and webhooks; its follow-up (the
"raised" timeline entry, the case log, the device commands: the victim's warning, pursuit mode)
runs in a second transaction, and only then is the uplink acknowledged to the broker. A process
that dies in between leaves `followed_up_at` empty, and a redelivered uplink finishes it. Not
every alert gets that redelivery: a zone alert's fix whose zone state was already kept (the
redelivered fix is "still inside" and raises nothing), a fix sent at QoS 0, a tamper report
while the tamper alert it raised is open, a follow-up the worker gave up. This pass finds every
open alert raised more than `follow_up_grace_s` ago whose follow-up has not run, and runs it, as
the raise would have: claimed once (`AlertFlow.follow_up`), then its commands and events sent.

Only open alerts can be unfinished: every transition runs the follow-up first
(`AlertFlow.transition`), and only transitions close an alert. The clock is injected for tests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select

from backend import metrics
from backend.alerts import service
from backend.alerts.flows import Effects
from backend.alerts.lifecycle import OPEN_STATES
from backend.alerts.models import Alert
from backend.periodic import Periodic

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


class FollowUpSweep(Periodic):
    name = "follow-up-sweep"

    def __init__(self, rt: Runtime, clock: Clock = utc_now, batch: int = 100) -> None:
        config = rt.settings.supervision
        self.rt = rt
        self.clock = clock
        self.interval_s = config.follow_up_sweep_interval_s
        self.grace = timedelta(seconds=config.follow_up_grace_s)
        self.batch = batch

    def run_once(self, now: datetime | None = None) -> int:
        """Finish the unfinished follow-ups of alerts raised before `now` - grace; return how
        many this pass finished. One alert's failure is logged by id and tried again at the
        next pass; it stops no other."""
        now = now or self.clock()
        with self.rt.sessions() as session:
            ids = list(session.scalars(
                select(Alert.id)
                .where(Alert.state.in_(sorted(OPEN_STATES)), Alert.followed_up_at.is_(None),
                       Alert.raised_at <= now - self.grace)
                .order_by(Alert.raised_at).limit(self.batch)
            ))
        finished = 0
        for alert_id in ids:
            try:
                effects = self._finish(alert_id, now)
            except Exception:  # noqa: BLE001 - the next pass tries it again
                log.exception("follow-up of alert id=%s failed; again at the next pass",
                              alert_id)
                continue
            if effects is None:
                continue  # finished meanwhile by its raise or a transition
            effects.carry_out(self.rt.dispatcher, self.rt.bus)
            finished += 1
        return finished

    def _finish(self, alert_id: uuid.UUID, now: datetime) -> Effects | None:
        with self.rt.sessions.begin() as session:
            # The alert's row first (as a follow-up and a transition take it): whoever holds
            # it runs the follow-up, the others find it done.
            alert = service.lock(session, alert_id)
            if alert is None or alert.followed_up_at is not None:
                return None
            effects = self.rt.flow.finish_follow_up(session, alert)
            late_s = (now - alert.raised_at).total_seconds()
        metrics.FOLLOW_UPS_SWEPT.inc()
        log.warning("alert id=%s: its follow-up had not run %.0f s after the raise; finished "
                    "now", alert_id, late_s)
        return effects
