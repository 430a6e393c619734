"""The `AlertHook` that turns every raise and transition into webhook deliveries.

It runs inside the alert's transaction: the delivery rows (one per matching active
subscription, body rendered once per format) commit or roll back with the alert. For a raise,
`prepare` plans them before the alert's row is written, so the row carries its
`police_delivery` from the start. When this process's delivery worker runs, the rows are
claimed in the same transaction and handed to it right after the commit (`wiring.install`): the
first attempt starts at once. Otherwise the commit wakes the worker of whichever process has
one, and it claims them in a round.

An escalation to the police unit directly (`backend.escalation.loop`) is a message of its own
(`after_escalation`): its rows have the sequence of the message it escalates and the step as
their `escalation_step`, and are sent as a transition's are.

Every row keeps its message's time (`message_time`). A CAP body references every earlier
message of the alert (`backend.police.cap`), read from the rows of the alert's earlier messages
(`service.stored_messages`), to whichever subscription and in whichever format they went: the
body is rendered once for all subscribers, and a message is named by the alert, its sequence,
its step and its time, none of which depend on who got it. The earlier messages' rows were
committed before this one's (the alert's row lock orders its transitions and escalations) and
never change, so the references of a message are the same however often it is rendered. A
raise has no earlier message and reads none.

A document that cannot be rendered (which the police formats refuse) never stops the alert: its
deliveries are written as `rejected` with the reason, so the console shows "police not reached".
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Table
from sqlalchemy.orm import Session, sessionmaker

from backend.alerts.document import police_document
from backend.alerts.flows import EACH_STATEMENT_COMMITS, Effects, police_told
from backend.alerts.models import Alert
from backend.auth.scope import routed_unit
from backend.periodic import Periodic
from backend.police import cap, cloudevent
from backend.police.document import FIRST_SEQUENCE, Message, message_time
from backend.police.errors import PoliceError
from backend.subscriptions import filters, service, status
from backend.subscriptions.models import Delivery, Subscription
from backend.subscriptions.worker import Job

log = logging.getLogger(__name__)

WAKE_KEY = "subscriptions.wake"
# In the `last_error` of a delivery whose body could not be rendered (it is stored empty).
NOT_RENDERABLE = "not renderable"
# Deliveries claimed in the transaction, to send as soon as it commits (`wiring.install`).
JOBS_KEY = "subscriptions.jobs"
# Plans made by `prepare` for alerts about to be inserted, by alert id.
PREPARED_KEY = "subscriptions.prepared"
def subscription_filter(sub: Subscription) -> filters.Filter:
    return filters.Filter(
        police_units=tuple(sub.police_units or ()), vr_codes=tuple(sub.vr_codes or ()),
        alert_types=tuple(sub.alert_types or ()), priorities=tuple(sub.priorities or ()),
        active=sub.active, drill=sub.drill,
    )


@dataclass(frozen=True, slots=True)
class ActiveSubscription:
    id: uuid.UUID
    format: str
    filter: filters.Filter
    url: str
    secret: str
    partner: bool = False


SUBSCRIPTIONS_TTL_S = 2.0


@dataclass(frozen=True, slots=True)
class DeliveryPlan:
    rows: list[dict[str, Any]]
    jobs: list[Job]
    value: str | None  # the alert's police_delivery when these are its only deliveries
    escalation_step: int = 0  # the escalation step the message carries; 0: none


class Renderer:
    """Renders one document in each police format, at most once per format. `earlier` gives
    the alert's messages before this one (CAP references them); it is called only for a CAP
    body, once."""

    def __init__(self, document: dict[str, Any], cap_profile: cap.CapProfile, source: str,
                 earlier: Callable[[], list[Message]] = list):
        self._document = police_document(document)
        self._profile = cap_profile
        self._source = source
        self._earlier = earlier
        self._cache: dict[str, bytes | PoliceError] = {}

    def message_time(self) -> datetime | None:
        """The message's time, kept with its rows; None for a document without a usable one
        (which no format renders either)."""
        try:
            return message_time(self._document)
        except PoliceError:
            return None

    def render(self, fmt: str) -> bytes | PoliceError:
        if fmt not in self._cache:
            try:
                if fmt == "cap":
                    self._cache[fmt] = cap.render(self._document, self._profile,
                                                  self._earlier())
                else:
                    self._cache[fmt] = cloudevent.render(self._document, source=self._source)
            except PoliceError as exc:
                self._cache[fmt] = exc
        return self._cache[fmt]


class DeliveryHook:
    def __init__(
        self, cap_profile: cap.CapProfile, source: str, urgent: Iterable[str],
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._profile = cap_profile
        self._source = source
        self._urgent = tuple(urgent)
        self._clock = clock
        self._subscriptions: tuple[float, list[ActiveSubscription]] = (0.0, [])
        self._generation = 0  # moved by `forget`
        self._lock = threading.Lock()
        # Set by `wiring.install`: the claim lease when this process's delivery worker runs and
        # will send the new rows right after the commit (the fast path), else None; and the
        # worker's `submit`, for rows committed already (`EACH_STATEMENT_COMMITS`).
        self.send_now: Callable[[], float | None] = lambda: None
        self.submit: Callable[[list[Job]], None] | None = None

    def _active(self, session: Session) -> list[ActiveSubscription]:
        """The active subscriptions, read at most every `SUBSCRIPTIONS_TTL_S` seconds: a change
        made through this process's API is seen at once (`forget`), another's within that.
        Where a `SubscriptionWatch` runs, the read is its, not a raise's."""
        until, cached = self._subscriptions
        if until > time.monotonic():
            return cached
        return self.refresh(session)

    def refresh(self, session: Session) -> list[ActiveSubscription]:
        """Read the active subscriptions now and keep them for `SUBSCRIPTIONS_TTL_S`. A list
        read while `forget` was called is returned but not kept: it may predate the change."""
        generation = self._generation
        fresh = [
            ActiveSubscription(s.id, s.format, subscription_filter(s), s.url, s.secret,
                               bool(s.partner))
            for s in service.active_subscriptions(session)
        ]
        with self._lock:
            if generation == self._generation:
                self._subscriptions = (time.monotonic() + SUBSCRIPTIONS_TTL_S, fresh)
        return fresh

    def forget(self) -> None:
        with self._lock:
            self._generation += 1
            self._subscriptions = (0.0, [])

    def prepare(
        self, session: Session, alert: Alert, document: dict[str, Any]
    ) -> list[tuple[Table, list[dict[str, Any]]]]:
        """A raise, before the alert's row is written: decide its deliveries now, so that the
        alert is inserted with its `police_delivery` and the delivery rows with it (the flow
        writes them, `backend.alerts.service.raise_alert`)."""
        plan = self._plan(session, alert, document)
        if plan is None:
            return []
        alert.police_delivery = plan.value
        document["police_delivery"] = plan.value
        session.info.setdefault(PREPARED_KEY, {})[alert.id] = plan
        return [(Delivery.__table__, plan.rows)]

    def after_change(
        self, session: Session, alert: Alert, document: dict[str, Any], effects: Effects
    ) -> None:
        plan = session.info.get(PREPARED_KEY, {}).pop(alert.id, None)
        prepared = plan is not None
        if plan is None:
            plan = self._plan(session, alert, document)
            if plan is None:
                return
        self._queue(session, alert, document, plan, prepared)

    def after_escalation(
        self, session: Session, alert: Alert, document: dict[str, Any],
        escalation: dict[str, Any], effects: Effects,
    ) -> None:
        """An escalation step to the police unit (the escalation loop, in the alert's
        transaction): the alert's document with the step's `escalation` member goes to every
        subscription the alert matches (an exercise alert's to drill subscriptions only) as a
        message of its own, sent as a transition's is. `document` gets the alert's new
        `police_delivery`, for the console events of the step."""
        escalated = {**document, "escalation": escalation}
        plan = self._plan(session, alert, escalated, escalation_step=int(escalation["step"]))
        if plan is not None:
            self._queue(session, alert, document, plan, prepared=False, effects=effects)

    def _queue(self, session: Session, alert: Alert, document: dict[str, Any],
               plan: DeliveryPlan, prepared: bool, effects: Effects | None = None) -> None:
        """Write the plan's rows (a prepared raise's were written with the new alert), have
        them sent after the commit (with `effects`: once the caller's police feed is out, as
        its `after_feed`) and, but for a raise, recompute the alert's aggregate."""
        added = ({r["id"] for r in plan.rows} if prepared
                 else set(service.add_deliveries(session, plan.rows)))
        ready = [job for job in plan.jobs if job.delivery_id in added]
        if ready and self.submit is not None and session.info.get(EACH_STATEMENT_COMMITS):
            self.submit(ready)  # the rows committed with their statement: the sends start now
        elif ready and self.submit is not None and effects is not None:
            effects.after_feed.append(partial(self.submit, ready))
        elif ready:
            session.info.setdefault(JOBS_KEY, []).extend(ready)  # at the commit (`wiring`)
        if not prepared:  # a transition, an escalation: earlier messages' deliveries count
            value = service.police_delivery(session, alert.id, alert.priority, self._urgent)
            service.set_police_delivery(session, alert.id, value)
            alert.police_delivery = value
            document["police_delivery"] = value  # the console events of this change show it
        sent_now = {job.delivery_id for job in ready}
        if any(r["state"] == "pending" and r["id"] in added and r["id"] not in sent_now
               for r in plan.rows):
            # Rows for a round; those this process sends right after the commit need none (a
            # round would find them claimed, and compete with their sends for the process).
            session.info[WAKE_KEY] = True
        log.info("alert %s seq %s step %s: %d webhook deliveries queued",
                 alert.id, alert.sequence, plan.escalation_step, len(added))

    def _plan(
        self, session: Session, alert: Alert, document: dict[str, Any],
        escalation_step: int = 0,
    ) -> DeliveryPlan | None:
        """The delivery rows of this alert message (one per matching subscription; an
        escalation's with its step), the jobs to send right after the commit (when this
        process's worker runs) and the aggregate `police_delivery` they make for a new alert;
        None when no subscription matches."""
        called = police_told(alert)
        unit = routed_unit(alert.type, alert.police_unit, bool(alert.told_police))
        subs = [
            s for s in self._active(session)
            if filters.matches(s.filter, document, unit, called)
        ]
        if not subs:
            return None
        now = self._clock()
        lease_s = self.send_now()
        renderer = Renderer(document, self._profile, self._source,
                            partial(_earlier, session, alert, escalation_step))
        sent_at = renderer.message_time()
        rows: list[dict[str, Any]] = []
        jobs: list[Job] = []
        for sub in subs:
            rendered = renderer.render(sub.format)
            row: dict[str, Any] = {
                "id": uuid.uuid4(), "subscription_id": sub.id, "alert_id": alert.id,
                "sequence": alert.sequence, "escalation_step": escalation_step,
                "message_time": sent_at, "priority": alert.priority, "format": sub.format,
                "attempts": 0, "created_at": now, "window_start": now,
                "claimed_until": None, "last_attempt_at": None,
            }
            if isinstance(rendered, PoliceError):
                log.error("alert %s seq %s: %s body not renderable: %s",
                          alert.id, alert.sequence, sub.format, type(rendered).__name__)
                row.update(body=b"", state="rejected", next_attempt_at=None,
                           last_error=f"{status.POLICE_NOT_REACHED} ({NOT_RENDERABLE}: "
                                      f"{type(rendered).__name__})")
            else:
                row.update(body=rendered, state="pending", next_attempt_at=now, last_error=None)
                if lease_s is not None:
                    # Claimed by this process for its first attempt, made right after the
                    # commit; if the process dies first, the lease runs out and any worker
                    # takes the row over.
                    row.update(attempts=1, last_attempt_at=now,
                               claimed_until=now + timedelta(seconds=lease_s))
                    jobs.append(Job(
                        delivery_id=row["id"], alert_id=alert.id,
                        webhook_id=f"msg_{row['id'].hex}_{alert.sequence}", attempt=1,
                        window_start=now, url=sub.url, secret=sub.secret, format=sub.format,
                        body=rendered, priority=alert.priority, subscription_id=sub.id,
                    ))
            rows.append(row)
        value = status.aggregate(
            [(str(r["subscription_id"]), alert.sequence, escalation_step, r["state"])
             for r in rows],
            alert.priority, self._urgent, {str(s.id) for s in subs if s.partner},
        )
        return DeliveryPlan(rows, jobs, value, escalation_step)


def _earlier(session: Session, alert: Alert, escalation_step: int) -> list[Message]:
    """The alert's messages stored before this one's rows (all of them up to its sequence; the
    format keeps those that come before it): none for a raise."""
    if (alert.sequence, escalation_step) <= (FIRST_SEQUENCE, 0):
        return []
    return service.stored_messages(session, alert.id, alert.sequence)


class SubscriptionWatch(Periodic):
    """Reads the active subscriptions every `interval_s`, within the hook's TTL, so that a raise
    finds them in memory. Without it, the raise that found the list expired read it itself,
    before its alert's statement: one alarm in eight at 4 alarms a second, 1-4 ms more of its
    path. A pass that fails or comes late leaves the raise to read them, as without it."""

    name = "subscriptions"

    def __init__(self, hook: DeliveryHook, sessions: sessionmaker[Session],
                 interval_s: float = SUBSCRIPTIONS_TTL_S / 2) -> None:
        self._hook = hook
        self._sessions = sessions
        self.interval_s = interval_s

    def run_once(self) -> int:
        with self._sessions() as session:
            return len(self._hook.refresh(session))
