from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
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
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, utcnow
from backend.db.types import UTCDateTime


class Alert(Base):
    __tablename__ = "alerts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("cases.id"))
    device_id: Mapped[str | None] = mapped_column(String(64), ForeignKey("devices.id"))
    # The device's message id (alarm `id`); unique per device: the dedupe key.
    message_id: Mapped[str | None] = mapped_column(String(80))
    # A digest of the alarm's bytes (`pipeline.context.press_digest`): a retransmission has
    # the same, a new press reusing a closed alert's id others (`AlertFlow._pressed_again`).
    press: Mapped[str | None] = mapped_column(String(12))
    # The message id of the draft that confirmed this alert (`AlertFlow._confirm`: a geofence
    # breach raised "possible", then confirmed): a redelivery of that draft finds it here and
    # changes nothing; None until then, and for an alert nothing confirmed.
    confirmed_by: Mapped[str | None] = mapped_column(String(80))
    type: Mapped[str] = mapped_column(String(32))
    priority: Mapped[str] = mapped_column(String(2))
    state: Mapped[str] = mapped_column(String(16), default="new")
    # Increments on every transition: receivers order and deduplicate documents by it.
    sequence: Mapped[int] = mapped_column(Integer, default=1)
    raised_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    device_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    lat: Mapped[float | None] = mapped_column(Float)
    lon: Mapped[float | None] = mapped_column(Float)
    acc: Mapped[float | None] = mapped_column(Float)
    fix_time: Mapped[datetime | None] = mapped_column(UTCDateTime)
    location_source: Mapped[str | None] = mapped_column(String(16))
    flags: Mapped[list[str]] = mapped_column(JSON, default=list)
    # The police unit of the alert's place (else its case's home unit, else the fallback unit),
    # whoever the routing told: the desk may have an alert alone (`told_police`).
    police_unit: Mapped[str | None] = mapped_column(String(8))
    # Whether the police were told of the alert: a police unit among its recipients at the
    # raise (an exercise endpoint standing in for one), or an escalation step that called the
    # police carried out since. Until then the unit of its place does not read it
    # (`backend.auth.scope.routed_unit`): the routing gave it to the desk alone. Written in
    # the alert's own INSERT, and by the escalation step in its update of the row.
    told_police: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    region: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    # Webhook hand-off to the police: pending | delivered | unreachable | failed; None when no
    # subscription took the alert (see backend/subscriptions/status.py).
    police_delivery: Mapped[str | None] = mapped_column(String(16))
    acknowledged_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    dispatched_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # Routing (backend.routing): who is told, the escalation plan and where it stands.
    recipients: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON)
    escalation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    escalation_step: Mapped[int | None] = mapped_column(Integer)
    next_escalation_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Grouped health alerts (backend.supervision): the devices concerned.
    health_devices: Mapped[list[str] | None] = mapped_column(JSON)
    # Set once the follow-up hooks (case log, device commands) have run for the raise; an alert
    # redelivered while this is empty gets them then (see AlertFlow.follow_up).
    followed_up_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("device_id", "message_id"),
        Index("ix_alerts_next_escalation_at", "next_escalation_at"),
        Index("ix_alerts_state_priority", "state", "priority"),
        # By case; and the closed alerts of the cases in a health episode, of a type, raised
        # since a time (supervision, every pass).
        Index("ix_alerts_case_type_raised", "case_id", "type", "raised_at"),
    )


class AlertEvent(Base):
    """The alert's timeline: raised, transitions, deliveries, notes. Append-only."""

    __tablename__ = "alert_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("alerts.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16))
    to_state: Mapped[str | None] = mapped_column(String(16))
    detail: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    __table_args__ = (Index("ix_alert_events_alert_id", "alert_id"),)


class OutboxMessage(Base):
    """A message to hand to the broker (police feed, device ack/cmd), written in the same
    transaction as the change that caused it, and marked sent when the broker acknowledged it."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    alert_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, ForeignKey("alerts.id"))
    channel: Mapped[str] = mapped_column(String(16))  # "mqtt"
    target: Mapped[str] = mapped_column(String(256))  # the topic
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    qos: Mapped[int] = mapped_column(SmallInteger, default=1)
    # pending | sent | unconfirmed (police feed) | expired (device ack/cmd): backend.outbox
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)

    __table_args__ = (Index("ix_outbox_status", "status", "created_at"),)
