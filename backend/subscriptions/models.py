from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    Uuid,
    false,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, utcnow
from backend.db.types import UTCDateTime

FORMATS = ("json", "cap")
# pending: waiting for its first attempt; retrying: another attempt is due at next_attempt_at;
# delivered; rejected: the receiver refused it (4xx) or it could not be built or sent;
# unreachable: not delivered by its deadline.
DELIVERY_STATES = ("pending", "retrying", "delivered", "rejected", "unreachable")
OPEN_DELIVERY_STATES = ("pending", "retrying")
FAILED_DELIVERY_STATES = ("rejected", "unreachable")
FINAL_DELIVERY_STATES = ("delivered", *FAILED_DELIVERY_STATES)


class Subscription(Base):
    """A police system (or other partner) that receives alerts as signed webhooks.

    Empty filter lists match everything. `drill` subscriptions are exercise endpoints: they get
    only exercise alerts, and live subscriptions never get an exercise alert. A `partner`
    subscription (an archive, a partner organisation) is no police control room: its failure
    does not mean "police not reached", and its delivery does not make up for a police feed
    nobody confirmed (`backend.subscriptions.status`, `service.feed_counts`)."""

    __tablename__ = "subscriptions"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    name: Mapped[str] = mapped_column(String(128))
    url: Mapped[str] = mapped_column(String(2048))
    # The `whsec_` signing secret. Needed in clear to sign; never logged, returned only on create.
    secret: Mapped[str] = mapped_column(String(256))
    format: Mapped[str] = mapped_column(String(8), default="json")
    police_units: Mapped[list[str]] = mapped_column(JSON, default=list)
    vr_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    alert_types: Mapped[list[str]] = mapped_column(JSON, default=list)
    priorities: Mapped[list[str]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    drill: Mapped[bool] = mapped_column(Boolean, default=False)
    partner: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (CheckConstraint("format in ('json', 'cap')", name="format"),)


class Delivery(Base):
    """One alert message (alert, sequence and escalation step) for one subscription: the webhook
    outbox row, written in the alert's transaction (an escalation's in the escalation loop's).
    Its `webhook-id` is `msg_{id.hex}_{sequence}`, the same on every retry and replay."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    subscription_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("subscriptions.id", ondelete="CASCADE")
    )
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("alerts.id", ondelete="CASCADE"))
    sequence: Mapped[int] = mapped_column(Integer)
    # The escalation step this message carries to the police (the alert sent again with the
    # sequence of the message it escalates); 0: the message of a raise or transition.
    escalation_step: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The message's time as its document has it (`backend.police.document.message_time`: CAP
    # `sent`, CloudEvents `time`), the same in every row of the message: what the later
    # messages of the alert name it by in their CAP `references`. Null in rows made before it
    # was kept, and for a document too malformed to have one.
    message_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    priority: Mapped[str] = mapped_column(String(2))
    format: Mapped[str] = mapped_column(String(8))
    # The rendered body, built once in the alert's transaction; signed afresh on every attempt.
    body: Mapped[bytes] = mapped_column(LargeBinary)
    state: Mapped[str] = mapped_column(String(16), default="pending")
    # HTTP attempts in all (each claim counts one); the attempt in flight is number `attempts`.
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # Attempts made in earlier delivery windows: the retry policy counts this window's only.
    prior_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Start of the delivery window (the deadline counts from here); a replay resets it.
    window_start: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A worker holds the row until then; after that another worker may take it over.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column(SmallInteger)
    last_error: Mapped[str | None] = mapped_column(Text)
    # The failure (rejected, unreachable) a replay has not overcome yet: set when a failed
    # delivery is replayed, cleared when it is delivered. While the replay is attempted the
    # alert counts as police not reached (`service.delivery_states`).
    replayed_failure: Mapped[str | None] = mapped_column(String(16))

    __table_args__ = (
        UniqueConstraint("subscription_id", "alert_id", "sequence", "escalation_step",
                         name="uq_webhook_deliveries_message"),
        Index("ix_webhook_deliveries_due", "state", "next_attempt_at"),
        Index("ix_webhook_deliveries_alert_id", "alert_id"),
        # The bodies still kept, by age: what the retention (backend.outbox.retention) reads.
        Index("ix_webhook_deliveries_body_kept", "created_at",
              postgresql_where=text("length(body) > 0"), sqlite_where=text("length(body) > 0")),
        CheckConstraint(
            "state in ('pending', 'retrying', 'delivered', 'rejected', 'unreachable')",
            name="state",
        ),
    )

    @property
    def webhook_id(self) -> str:
        return f"msg_{self.id.hex}_{self.sequence}"


class DeliveryAttempt(Base):
    """The delivery log: one row per HTTP attempt, and one for a delivery the sweep ended
    because its attempt never did (`DeliveryWorker.sweep`). Append-only. `outcome` is the
    delivery's state after it, or `superseded` for an attempt whose outcome came too late to
    apply (the delivery was replayed, taken over by another worker or ended meanwhile)."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("webhook_deliveries.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[int | None] = mapped_column(SmallInteger)
    error: Mapped[str | None] = mapped_column(String(32))
    duration_ms: Mapped[float] = mapped_column(Float)
    # The delivery's state after this attempt, and why.
    outcome: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_webhook_attempts_delivery_id", "delivery_id"),)
