"""Writing and reading the audit log. A read of location data writes its entry in the same
session before the data leaves the server: no entry, no data."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from backend.audit.models import AuditEntry
from backend.auth.scope import on_behalf_of
from backend.auth.tokens import Principal

MAX_REASON = 500


@dataclass(frozen=True, slots=True)
class LocationRead:
    resource: str  # alert | trail | device | stream
    resource_id: str
    case_id: uuid.UUID | None
    device_id: str | None


def record(
    s: Session, who: Principal, reads: list[LocationRead], *, reason: str | None, channel: str,
    behalf: str | None = None, now: datetime | None = None,
) -> None:
    """Add one entry per read to the caller's transaction (the caller commits)."""
    if not reads:
        return
    at = now or datetime.now(UTC)
    s.execute(insert(AuditEntry), [
        {"at": at, "actor": who.name, "actor_role": who.role,
         "on_behalf_of": (behalf or on_behalf_of(who))[:256], "action": "read_location",
         "resource": r.resource, "resource_id": r.resource_id, "case_id": r.case_id,
         "device_id": r.device_id, "reason": (reason or None) and reason.strip()[:MAX_REASON],
         "channel": channel}
        for r in reads
    ])


def entries(s: Session, *, case_id: uuid.UUID | None = None, limit: int = 200) -> list[dict[str, Any]]:
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if case_id is not None:
        query = query.where(AuditEntry.case_id == case_id)
    return [
        {"at": e.at.isoformat(), "actor": e.actor, "actor_role": e.actor_role,
         "on_behalf_of": e.on_behalf_of, "action": e.action, "resource": e.resource,
         "resource_id": e.resource_id, "case_id": str(e.case_id) if e.case_id else None,
         "device_id": e.device_id, "reason": e.reason, "channel": e.channel}
        for e in s.scalars(query)
    ]
