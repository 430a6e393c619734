from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from backend.db.base import Base, utcnow
from backend.db.types import UTCDateTime

RISK_LEVELS = ("low", "medium", "high")
CUSTODY_STATUSES = ("none", "in_custody", "released")
# One named contact per partner organisation (names as in the routing policy).
ORGANISATIONS = ("police", "veilig_thuis", "vrouwenopvang", "three_ro", "om")


class Case(Base):
    """A stalking case. Victim and offender are known here only by pseudonymous references."""

    __tablename__ = "cases"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    home_police_unit: Mapped[str | None] = mapped_column(String(8))
    home_vr_code: Mapped[str | None] = mapped_column(String(8))
    home_vt_desk: Mapped[str | None] = mapped_column(String(16))
    # Pseudonymous identifiers only: no names, no dates of birth.
    victim_ref: Mapped[str | None] = mapped_column(String(64))
    offender_ref: Mapped[str | None] = mapped_column(String(64))
    process_director: Mapped[str | None] = mapped_column(String(128))
    case_director: Mapped[str | None] = mapped_column(String(128))
    risk_level: Mapped[str | None] = mapped_column(String(8))
    custody_status: Mapped[str] = mapped_column(String(16), default="none")
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Kept by `CaseFlow.reconcile_custody`: the release (its `released_at`) whose tightening was
    # carried out, and when the tightening in force ends (None: none in force).
    custody_tightened_release: Mapped[datetime | None] = mapped_column(UTCDateTime)
    custody_tightened_until: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    safety_plan: Mapped[str | None] = mapped_column(Text)
    exercise: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )
    contacts: Mapped[list[CaseContact]] = relationship(
        lazy="selectin",
        order_by="CaseContact.organisation",
        cascade="all, delete-orphan",
        passive_deletes=True,
    )

    __table_args__ = (
        CheckConstraint("risk_level in ('low', 'medium', 'high')", name="risk_level"),
        CheckConstraint(
            "custody_status in ('none', 'in_custody', 'released')",
            name="custody_status",
        ),
    )


class CaseContact(Base):
    """The one named contact of a partner organisation for a case, with their reachability."""

    __tablename__ = "case_contacts"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=uuid.uuid4)
    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE")
    )
    organisation: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(128))
    phone: Mapped[str] = mapped_column(String(32))
    reachability: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(
        UTCDateTime, default=utcnow, onupdate=utcnow
    )

    __table_args__ = (
        UniqueConstraint("case_id", "organisation"),
        CheckConstraint(
            "organisation in ('police', 'veilig_thuis', 'vrouwenopvang', 'three_ro', 'om')",
            name="organisation",
        ),
    )
