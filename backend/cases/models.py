from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, utcnow
from backend.db.types import UTCDateTime

RISK_LEVELS = ("low", "medium", "high")
CUSTODY_STATUSES = ("none", "in_custody", "released")


class Case(Base):
    """A stalking case. Victim and offender are known here only by pseudonymous references."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    home_police_unit: Mapped[str | None] = mapped_column(String(8))
    home_vr_code: Mapped[str | None] = mapped_column(String(8))
    risk_level: Mapped[str | None] = mapped_column(String(8))
    custody_status: Mapped[str] = mapped_column(String(16), default="none")
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    safety_plan: Mapped[str | None] = mapped_column(Text)
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    __table_args__ = (
        CheckConstraint("risk_level in ('low', 'medium', 'high')", name="risk_level"),
        CheckConstraint(
            "custody_status in ('none', 'in_custody', 'released')", name="custody_status"
        ),
    )
