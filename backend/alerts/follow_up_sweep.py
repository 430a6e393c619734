"""The follow-up sweep: finishes the follow-up of raised alerts whose follow-up never ran.

An alert's raise commits the alert with its police feed, its device ack (`received`) and its
webhook deliveries, and the ingest worker then acknowledges the uplink to the broker; its
follow-up (the "raised" timeline entry, the case log, the device commands: the victim's warning,
pursuit mode; for an alarm, its device marked online again) runs in a second transaction. A
process that dies in between, or a follow-up that fails, leaves `followed_up_at` empty, and no
redelivery comes: the uplink was acknowledged once the alert was stored (a broker holds only so
many unacknowledged messages for a client, and a follow-up must not stop the alarms behind it).
What the raise committed needs nothing more: the outbox re-publishes the police feed and the ack
until the broker takes them, the delivery worker sends the webhooks. This pass finds every open
alert raised more than `follow_up_grace_s` ago whose follow-up has not run, and runs it, as the
raise would have: claimed once (`AlertFlow.follow_up`), then its commands and events sent.

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
from backend.alerts.flows import VICTIM_FEEDBACK_TYPES, Effects
from backend.alerts.lifecycle import OPEN_STATES
from backend.alerts.models import Alert
from backend.devices.online import mark_online
from backend.periodic import Periodic

if TYPE_CHECKING:
    from backend.runtime import Runtime

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def raised_by_press(alert: Alert) -> bool:
    """An alert raised from an alarm its device sent (a press; `press` is the digest of the
    alarm's bytes, and a bare alarm is a panic): its follow-up marks the device online again,
    a device's fix or status report is marked so when it is stored. Pure."""
    return alert.device_id is not None and (
        alert.press is not None or alert.type in VICTIM_FEEDBACK_TYPES)


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
            if raised_by_press(alert):  # the device pressed: online, as the raise has it
                mark_online(session, [alert.device_id])
            late_s = (now - alert.raised_at).total_seconds()
        metrics.FOLLOW_UPS_SWEPT.inc()
        log.warning("alert id=%s: its follow-up had not run %.0f s after the raise; finished "
                    "now", alert_id, late_s)
        return effects
