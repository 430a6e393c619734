"""Device acks and commands the broker never confirmed (safety invariant 4: bounded retries and
a recorded outcome).

The dispatcher re-publishes a pending outbox row every `ingest.outbox_resend_after_s` until the
broker acknowledges it. A device ack (`.../dev/{id}/ack`) or command (`.../dev/{id}/cmd`) still
pending once `outbox.device_deadline_s` has passed since it was written is ended `expired`
(with `last_error` saying why) by the dispatcher's sweep, before it re-publishes anything: it
is no longer re-published, so a broker that was away for an hour does not get an hour of old
acks and commands ahead of the next alarm's, and a message the broker refuses is not sent for
ever. What it leaves:

- an ack: an entry on its alert's timeline (`device feedback`, `delivery`, state `expired`).
  The device retransmits its alarm until it hears `received` (docs/protocol.md), and the alert
  flow answers a retransmission of an alarm whose ack was given up so (`ack_given_up`) with
  `received` and the alert's state now: the device learns where its alarm stands, not every
  step it went through while the broker was away;
- a command: an entry on its alert's timeline when an alert caused it, and a
  `device_command_expired` entry in the case log of the device's case (what the device was not
  told: the command and its interval or reason), for the desk and the case director.

A broker acknowledgement that still comes afterwards marks the row sent (the broker has it), as
for the police feed (`backend.outbox.unconfirmed`).
"""

from __future__ import annotations

import json
import logging
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.alerts.models import OutboxMessage
from backend.caselog import service as caselog
from backend.cases.errors import CaseNotFound
from backend.devices.models import Device

log = logging.getLogger(__name__)

EXPIRED = "expired"
# What `Topics.ack(device)` and `Topics.cmd(device)` make, `{root}/dev/{device_id}/ack|cmd`.
DEVICE_TOPICS = {"ack": "%/dev/%/ack", "cmd": "%/dev/%/cmd"}
# The fields of a command the case log keeps (the protocol's: no position is ever among them).
COMMAND_FIELDS = ("cmd", "report_interval_s", "reason", "ref")
ACTOR = "device feedback"
CASE_LOG_KIND = "device_command_expired"


@dataclass(frozen=True, slots=True)
class ExpiredMessage:
    outbox_id: int
    alert_id: uuid.UUID | None
    target: str
    payload: bytes

    @property
    def device_id(self) -> str:
        return device_topic(self.target)[0]

    @property
    def kind(self) -> str:
        return device_topic(self.target)[1]


def device_topic(topic: str) -> tuple[str, str]:
    """(device id, "ack" or "cmd") of a device downlink topic."""
    parts = topic.split("/")
    if len(parts) < 4 or parts[-3] != "dev" or parts[-1] not in DEVICE_TOPICS:
        raise ValueError(f"not a device downlink topic: {topic!r}")
    return parts[-2], parts[-1]


def command_summary(payload: bytes) -> dict[str, Any]:
    """What the case log keeps of a command: its protocol fields, nothing else."""
    try:
        body = json.loads(payload)
    except ValueError:
        return {}
    if not isinstance(body, dict):
        return {}
    return {k: body[k] for k in COMMAND_FIELDS if k in body}


def end_expired(session: Session, created_before: datetime, reason: str, limit: int = 100,
                ) -> list[ExpiredMessage]:
    """End the device acks and commands still pending that were created before
    `created_before`, in id order."""
    query = (
        select(OutboxMessage.id, OutboxMessage.alert_id, OutboxMessage.target,
               OutboxMessage.payload)
        .where(OutboxMessage.status == "pending",
               OutboxMessage.created_at <= created_before,
               or_(*(OutboxMessage.target.like(p) for p in DEVICE_TOPICS.values())))
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)  # another process ends the others
    rows = [ExpiredMessage(*row) for row in session.execute(query).all()]
    if rows:
        session.execute(
            update(OutboxMessage)
            .where(OutboxMessage.id.in_([r.outbox_id for r in rows]),
                   OutboxMessage.status == "pending")
            .values(status=EXPIRED, last_error=reason)
        )
    return rows


def ack_given_up(session: Session, alert_id: uuid.UUID, topic: str) -> bool:
    """Whether the device's last ack of the alert on `topic` was given up: one expired, and
    none written after it is pending or sent. Both lookups go by the status index (expired
    rows are few; the others are read from the expired one's time on)."""
    last = session.execute(
        select(OutboxMessage.id, OutboxMessage.created_at)
        .where(OutboxMessage.status == EXPIRED, OutboxMessage.alert_id == alert_id,
               OutboxMessage.target == topic)
        .order_by(OutboxMessage.id.desc()).limit(1)
    ).first()
    if last is None:
        return False
    later = session.scalar(
        select(OutboxMessage.id)
        .where(OutboxMessage.status.in_(("pending", "sent")),
               OutboxMessage.created_at >= last.created_at, OutboxMessage.id > last.id,
               OutboxMessage.alert_id == alert_id, OutboxMessage.target == topic)
        .limit(1))
    return later is None


def record(session: Session, ended: list[ExpiredMessage], reason: str, now: datetime) -> None:
    """Leave the outcome of each ended message where the desk sees it (see the module)."""
    for message in ended:
        log.warning("device %s outbox=%d device=%s expired", message.kind, message.outbox_id,
                    message.device_id)
        if message.alert_id is not None:
            alerts_service.add_event(
                session, message.alert_id, at=now, actor=ACTOR, kind="delivery",
                detail={"channel": "mqtt", "topic": message.target,
                        "outbox_id": message.outbox_id, "state": EXPIRED, "reason": reason})
        if message.kind == "cmd":
            _case_log(session, message, reason, now)


def _case_log(session: Session, message: ExpiredMessage, reason: str, now: datetime) -> None:
    case_id = session.scalar(select(Device.case_id).where(Device.id == message.device_id))
    if case_id is None:
        return
    data = {"device_id": message.device_id, "outbox_id": message.outbox_id,
            "command": command_summary(message.payload), "reason": reason}
    try:
        caselog.append(session, case_id, CASE_LOG_KIND, ACTOR, data,
                       alert_id=message.alert_id, at=now)
    except CaseNotFound:  # deleted meanwhile (nothing written): the row and the log line stay
        pass
