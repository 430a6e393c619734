from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from backend.db.base import Base, utcnow
from backend.db.types import GeoPoint, UTCDateTime

ROLES = ("victim", "offender")


class Device(Base):
    __tablename__ = "devices"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="RESTRICT"))
    role: Mapped[str] = mapped_column(String(16))
    owntracks_user: Mapped[str | None] = mapped_column(String(64))
    owntracks_device: Mapped[str | None] = mapped_column(String(64))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    report_interval_s: Mapped[int] = mapped_column(Integer, default=60)
    # Last reported health (status topic); the hot copy lives in the state store.
    online: Mapped[bool | None] = mapped_column(Boolean)
    battery: Mapped[int | None] = mapped_column(SmallInteger)
    charging: Mapped[bool | None] = mapped_column(Boolean)
    tamper: Mapped[bool | None] = mapped_column(Boolean)
    firmware: Mapped[str | None] = mapped_column(String(64))
    last_status_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    __table_args__ = (
        CheckConstraint("role in ('victim', 'offender')", name="role"),
        UniqueConstraint("owntracks_user", "owntracks_device"),
        Index("ix_devices_case_id", "case_id"),
    )


class Ping(Base):
    """One accepted GPS fix. Keyed by (device, fix time), so a redelivered fix is stored once.

    On PostgreSQL the table is partitioned by month of `fix_time` (see the migration).
    """

    __tablename__ = "pings"

    device_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    fix_time: Mapped[datetime] = mapped_column(UTCDateTime, primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    lat: Mapped[float] = mapped_column(Float)
    lon: Mapped[float] = mapped_column(Float)
    acc: Mapped[float | None] = mapped_column(Float)
    vel: Mapped[float | None] = mapped_column(Float)
    batt: Mapped[int | None] = mapped_column(SmallInteger)
    # No spatial index: nothing queries pings by place (migration 0007).
    geom: Mapped[str | None] = mapped_column(GeoPoint)
