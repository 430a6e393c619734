"""Persistence of subscriptions, deliveries and the delivery log. No decisions here."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.alerts.models import Alert
from backend.outbox.unconfirmed import unconfirmed_feeds
from backend.police.document import Message
from backend.subscriptions.models import (
    FAILED_DELIVERY_STATES,
    OPEN_DELIVERY_STATES,
    Delivery,
    DeliveryAttempt,
    Subscription,
)
from backend.subscriptions.status import aggregate, replayed_state


# -- subscriptions ------------------------------------------------------------------------------
def active_subscriptions(session: Session) -> list[Subscription]:
    return list(session.scalars(select(Subscription).where(Subscription.active.is_(True))))


def list_subscriptions(session: Session) -> list[Subscription]:
    return list(session.scalars(select(Subscription).order_by(Subscription.created_at)))


def get_subscription(session: Session, subscription_id: uuid.UUID) -> Subscription | None:
    return session.get(Subscription, subscription_id)


# -- deliveries ---------------------------------------------------------------------------------
# What makes a delivery row unique (`uq_webhook_deliveries_message`): one per message.
MESSAGE_KEY = ["subscription_id", "alert_id", "sequence", "escalation_step"]


def add_deliveries(session: Session, rows: Sequence[dict[str, Any]]) -> list[uuid.UUID]:
    """Insert delivery rows in one statement; a row for an existing (subscription, alert,
    sequence, escalation step) is skipped. The ids of the rows inserted."""
    if not rows:
        return []
    dialect = session.get_bind().dialect.name
    ins = postgresql.insert(Delivery) if dialect == "postgresql" else sqlite.insert(Delivery)
    statement = (
        ins.values(list(rows))
        .on_conflict_do_nothing(index_elements=MESSAGE_KEY)
        .returning(Delivery.id)
    )
    return list(session.scalars(statement))


def stored_messages(session: Session, alert_id: uuid.UUID, up_to_sequence: int
                    ) -> list[Message]:
    """The messages of the alert that its deliveries carried (to any subscription, in any
    format), of sequence `up_to_sequence` or lower, each once, with the time its rows keep
    (`Delivery.message_time`; rows without one are left out), in order."""
    rows = session.execute(
        select(Delivery.sequence, Delivery.escalation_step, func.min(Delivery.message_time))
        .where(Delivery.alert_id == alert_id, Delivery.sequence <= up_to_sequence,
               Delivery.message_time.is_not(None))
        .group_by(Delivery.sequence, Delivery.escalation_step)
        .order_by(Delivery.sequence, Delivery.escalation_step)
    ).all()
    return [Message(sequence, step, at) for sequence, step, at in rows]


# The order in which due deliveries are claimed: the most urgent first (P1 before P4), of one
# priority first attempts ahead of retries (a receiver that keeps failing does not keep a new
# alert waiting), then the longest due, then by sequence.
CLAIM_ORDER = (
    Delivery.priority.label("rank_priority"),
    case((Delivery.attempts > Delivery.prior_attempts, 1), else_=0).label("rank_retry"),
    Delivery.next_attempt_at,
    Delivery.sequence,
)


def claim_due(
    session: Session, now: datetime, limit: int, lease_s: float, *,
    per_subscription: int | None = None, busy: Mapping[uuid.UUID, int] | None = None,
) -> list[tuple[Delivery, Subscription]]:
    """Claim up to `limit` deliveries of active subscriptions whose attempt is due and that no
    live worker holds: with `FOR UPDATE SKIP LOCKED` on PostgreSQL, so parallel workers never
    claim the same row.

    They are taken in `CLAIM_ORDER`, and with `per_subscription` no more of one subscription's
    than it has room for: that many less its attempts in flight (`busy`, by subscription id).
    A receiver that hangs then holds no more than its share of the worker's threads, however
    many of its deliveries are due, and another's P1 is not claimed behind them."""
    cap = limit if per_subscription is None else per_subscription
    ranked = (
        select(Delivery.id, Delivery.subscription_id, *CLAIM_ORDER,
               func.row_number().over(partition_by=Delivery.subscription_id,
                                      order_by=CLAIM_ORDER).label("rank"))
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(*_due(now), Subscription.active.is_(True))  # an inactive one's: `inactive_open`
        .subquery()
    )
    candidates = session.execute(
        select(ranked.c.id, ranked.c.subscription_id)
        .where(ranked.c.rank <= cap)
        .order_by(ranked.c.rank_priority, ranked.c.rank_retry, ranked.c.next_attempt_at,
                  ranked.c.sequence)
    ).all()
    taken = dict(busy or {})
    wanted: list[uuid.UUID] = []
    for delivery_id, subscription_id in candidates:
        if len(wanted) >= limit:
            break
        if taken.get(subscription_id, 0) < cap:
            taken[subscription_id] = taken.get(subscription_id, 0) + 1
            wanted.append(delivery_id)
    if not wanted:
        return []
    # Lock what was chosen; a row another worker claimed meanwhile (or holds locked) is left.
    query = (select(Delivery).where(Delivery.id.in_(wanted), *_due(now))
             .order_by(*CLAIM_ORDER))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    rows = list(session.scalars(query))
    if not rows:
        return []
    until = now + timedelta(seconds=lease_s)
    for row in rows:
        row.claimed_until = until
        row.attempts += 1
        row.last_attempt_at = now
    subs = {
        s.id: s
        for s in session.scalars(
            select(Subscription).where(Subscription.id.in_({r.subscription_id for r in rows}))
        )
    }
    return [(r, subs[r.subscription_id]) for r in rows]


def _due(now: datetime) -> list[Any]:
    """Conditions of an open delivery whose attempt is due and that no live lease holds."""
    return [
        Delivery.state.in_(OPEN_DELIVERY_STATES),
        Delivery.next_attempt_at <= now,
        or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now),
    ]


def release(session: Session, jobs: Sequence[tuple[uuid.UUID, int, datetime]]) -> int:
    """Give back claims on which no attempt was made ((delivery id, attempt number, window
    start)): the row is claimable again at once, its attempt not counted. A row claimed again
    since, replayed or ended is left as it is. The number given back."""
    released = 0
    for delivery_id, attempt, window_start in jobs:
        result = session.execute(
            update(Delivery)
            .where(Delivery.id == delivery_id, Delivery.attempts == attempt,
                   Delivery.window_start == window_start,
                   Delivery.state.in_(OPEN_DELIVERY_STATES))
            .values(attempts=attempt - 1, claimed_until=None,
                    **({"last_attempt_at": None} if attempt == 1 else {}))
        )
        released += result.rowcount  # type: ignore[attr-defined]
    return released


def inactive_open(session: Session, now: datetime, limit: int) -> list[Delivery]:
    """Open deliveries of inactive subscriptions that no live lease holds (an attempt in
    flight is left to end): they are not sent any more, and the sweep ends them."""
    return list(session.scalars(
        select(Delivery)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Subscription.active.is_(False), Delivery.state.in_(OPEN_DELIVERY_STATES))
        .where(or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now))
        .order_by(Delivery.window_start)
        .limit(limit)
    ))


def overdue_deliveries(session: Session, window_before: datetime, now: datetime, limit: int
                       ) -> list[Delivery]:
    """Open deliveries whose window started at or before `window_before` and that no live
    worker's lease holds: overdue ones, for the sweep, oldest first."""
    return list(session.scalars(
        select(Delivery)
        .where(Delivery.state.in_(OPEN_DELIVERY_STATES))
        .where(Delivery.window_start <= window_before)
        .where(or_(Delivery.claimed_until.is_(None), Delivery.claimed_until <= now))
        .order_by(Delivery.window_start)
        .limit(limit)
    ))


def next_claimable_at(session: Session, busy: Collection[uuid.UUID] = ()) -> datetime | None:
    """When the next open delivery of an active subscription can be claimed (`claim_due`): its
    attempt is due and no
    worker's lease holds it. A row claimed for an attempt in flight is not claimable before
    its lease ends (its attempt is recorded before then, and the row is no longer open). The
    rows of the subscriptions in `busy` (as many attempts in flight as they may have) are left
    out: they wait for one of those attempts to end, not for a time."""
    claimable_at = case(
        (Delivery.claimed_until > Delivery.next_attempt_at, Delivery.claimed_until),
        else_=Delivery.next_attempt_at,
    )
    query = (select(claimable_at)
             .join(Subscription, Subscription.id == Delivery.subscription_id)
             .where(Delivery.state.in_(OPEN_DELIVERY_STATES), Subscription.active.is_(True)))
    if busy:
        query = query.where(Delivery.subscription_id.not_in(list(busy)))
    return session.scalar(query.order_by(claimable_at).limit(1))


def record_outcome(session: Session, delivery_id: uuid.UUID, attempt: int,
                   window_start: datetime, values: dict[str, Any]) -> uuid.UUID | None:
    """Write the outcome (`values`) of attempt number `attempt` of the delivery window that
    started at `window_start` on its delivery row, in one statement: the row's subscription id.
    None when the outcome no longer applies: the row is gone, no longer open, claimed again
    since (another attempt, after a lease ran out) or replayed (a new window)."""
    return session.execute(
        update(Delivery)
        .where(Delivery.id == delivery_id, Delivery.attempts == attempt,
               Delivery.window_start == window_start,
               Delivery.state.in_(OPEN_DELIVERY_STATES))
        .values(**values)
        .returning(Delivery.subscription_id)
    ).scalar_one_or_none()


def record_attempt(session: Session, **values: Any) -> None:
    session.execute(insert(DeliveryAttempt).values(**values))


def deliveries_of(session: Session, alert_id: uuid.UUID) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery)
            .where(Delivery.alert_id == alert_id)
            .order_by(Delivery.sequence, Delivery.escalation_step, Delivery.created_at)
        )
    )


def get_delivery(session: Session, delivery_id: uuid.UUID) -> Delivery | None:
    return session.get(Delivery, delivery_id, populate_existing=True)


def attempts_of(session: Session, delivery_id: uuid.UUID) -> list[DeliveryAttempt]:
    return list(
        session.scalars(
            select(DeliveryAttempt)
            .where(DeliveryAttempt.delivery_id == delivery_id)
            .order_by(DeliveryAttempt.id)
        )
    )


def reopen(session: Session, deliveries: Sequence[Delivery], now: datetime) -> None:
    """Start a new delivery window for each (replay): its retries count from the first again
    (`prior_attempts`); `attempts` and the delivery log keep what went before. An attempt
    still in flight from before is not applied when it ends (`record_outcome`). A failed
    delivery keeps its failure (`replayed_failure`) until it is delivered."""
    for d in deliveries:
        if d.state in FAILED_DELIVERY_STATES:
            d.replayed_failure = d.state
        d.state = "pending"
        d.window_start = now
        d.next_attempt_at = now
        d.claimed_until = None
        d.prior_attempts = d.attempts


def failed_deliveries(session: Session, alert_id: uuid.UUID) -> list[Delivery]:
    return list(
        session.scalars(
            select(Delivery).where(
                Delivery.alert_id == alert_id, Delivery.state.in_(FAILED_DELIVERY_STATES)
            )
        )
    )


# -- the alert's aggregate state ----------------------------------------------------------------
def delivery_states(session: Session, alert_id: uuid.UUID
                    ) -> list[tuple[str, int, int, str]]:
    """(key, sequence, escalation step, state) of the alert's webhook deliveries and of its
    police feed messages the broker never confirmed (`backend.outbox.unconfirmed`: each
    unreachable), but for a feed whose unit a webhook reached (`feed_counts`). A replayed
    failure still being attempted counts as that failure (`replayed_failure`)."""
    rows = session.execute(
        select(Delivery.subscription_id, Delivery.sequence, Delivery.escalation_step,
               Delivery.state, Delivery.replayed_failure, Subscription.police_units,
               Subscription.partner)
        .join(Subscription, Subscription.id == Delivery.subscription_id)
        .where(Delivery.alert_id == alert_id)
    ).all()
    reached = [units or [] for _s, _q, _e, state, _f, units, partner in rows
               if state == "delivered" and not partner]
    feeds = [(f"feed:{i}", 0, 0, "unreachable")
             for i, unit in unconfirmed_feeds(session, alert_id) if feed_counts(unit, reached)]
    return [(str(s), q, e, replayed_state(st, failure))
            for s, q, e, st, failure, _units, _partner in rows] + feeds


def partner_keys(session: Session, alert_id: uuid.UUID) -> frozenset[str]:
    """The keys (as `delivery_states` gives them) of the alert's `partner` subscriptions (an
    archive, a partner organisation): their failures do not mean the police were not reached
    (`status.aggregate`)."""
    return frozenset(str(i) for i in session.scalars(
        select(Subscription.id).where(
            Subscription.partner.is_(True),
            Subscription.id.in_(select(Delivery.subscription_id)
                                .where(Delivery.alert_id == alert_id)))))


def police_delivery(session: Session, alert_id: uuid.UUID, priority: str,
                    urgent: Iterable[str]) -> str | None:
    """The alert's aggregate `police_delivery` from its stored deliveries and feeds."""
    return aggregate(delivery_states(session, alert_id), priority, urgent,
                     partner_keys(session, alert_id))



def feed_counts(unit: str, reached: Sequence[Sequence[str]]) -> bool:
    """Whether a police feed message to `unit` that the broker never confirmed counts as the
    police not reached: not when a webhook to a police system of that unit (its subscription
    names the unit, or names no unit: every unit's) delivered the alert. `reached`: the
    police units of the police subscriptions (not `partner`) that delivered it. Pure."""
    return not any(not units or unit in units for units in reached)


def set_police_delivery(session: Session, alert_id: uuid.UUID, value: str | None) -> bool:
    """Set the alert's `police_delivery`; True when it changed."""
    result = session.execute(
        update(Alert)
        .where(Alert.id == alert_id)
        .where(or_(Alert.police_delivery.is_(None), Alert.police_delivery != value)
               if value is not None else Alert.police_delivery.is_not(None))
        .values(police_delivery=value)
    )
    return result.rowcount == 1  # type: ignore[attr-defined]
