from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, utcnow
from backend.db.types import UTCDateTime


class AuditEntry(Base):
    """One read of location data. Append-only; carries no coordinates itself.

    - who: `actor` (the principal name) and `actor_role`;
    - what: `action` (e.g. ``read_location``), `resource` (``alert``, ``trail``, ``device``,
      ``stream``), `resource_id`, and the data subject: `case_id` and `device_id`;
    - when: `at`;
    - on whose behalf: `on_behalf_of` (the organisation/scope the actor acts for);
    - why: `reason` (required when no alert of the case that the reader may see is open),
      `channel` (api, console, stream).
    """

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    actor_role: Mapped[str] = mapped_column(String(16))
    on_behalf_of: Mapped[str] = mapped_column(String(256))
    action: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(32))
    resource_id: Mapped[str] = mapped_column(String(80))
    case_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    device_id: Mapped[str | None] = mapped_column(String(64))
    reason: Mapped[str | None] = mapped_column(Text)
    channel: Mapped[str] = mapped_column(String(16))

    __table_args__ = (
        Index("ix_audit_log_case_id", "case_id", "at"),
        Index("ix_audit_log_actor", "actor", "at"),
    )
