"""Tables of protective measures (zones as legal objects), the offender's registered home and
the catalogue version that tells every worker to reload its geofence engine."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from geofences.geojson import AUTHORITY_MAX, REFERENCE_MAX

from backend.db.base import Base, utcnow
from backend.db.types import GeoPoint, GeoShape, UTCDateTime

MEASURE_TYPES = ("exclusion_zone", "protected_place", "contact_ban")


class MeasureRow(Base):
    """One protective measure. Never deleted: deactivation keeps it for the record.

    `geometry` is the zone (Polygon/MultiPolygon) or the centre of a circle (Point, with
    `radius_m`), WGS84; null for a contact ban. Exceptions are kept as GeoJSON in JSON.
    """

    __tablename__ = "measures"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    case_id: Mapped[uuid.UUID] = mapped_column(Uuid, ForeignKey("cases.id", ondelete="RESTRICT"))
    type: Mapped[str] = mapped_column(String(16))
    geometry: Mapped[Any] = mapped_column(GeoShape, nullable=True)
    radius_m: Mapped[float | None] = mapped_column(Float)
    pre_alert_m: Mapped[float] = mapped_column(Float, default=0.0)
    valid_from: Mapped[datetime | None] = mapped_column(UTCDateTime)
    valid_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    time_windows: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    authority: Mapped[str] = mapped_column(String(AUTHORITY_MAX), default="")
    # court / OM reference
    reference: Mapped[str] = mapped_column(String(REFERENCE_MAX), default="")
    subject_device_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    protected_device_ids: Mapped[list[str]] = mapped_column(JSON, default=list)
    exceptions: Mapped[list[dict[str, Any]]] = mapped_column(JSON, default=list)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    deactivated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        CheckConstraint(
            "type in ('exclusion_zone', 'protected_place', 'contact_ban')", name="type"
        ),
        Index("ix_measures_case_id", "case_id"),
        Index("ix_measures_geometry", "geometry", postgresql_using="gist"),
    )


class OffenderHome(Base):
    """The offender's registered home address of a case, as a point (WGS84). A zone or
    pre-alert ring near it is refused unless an exception (e.g. a corridor) covers it, and a
    home near a measure standing is refused likewise (`backend.measures.homes`)."""

    __tablename__ = "offender_homes"

    case_id: Mapped[uuid.UUID] = mapped_column(
        Uuid, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True
    )
    location: Mapped[Any] = mapped_column(GeoPoint)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class MeasureCatalog(Base):
    """One row: a counter raised in the same transaction as every measure change. Workers poll
    it to know when to reload (a missing row reads as version 0)."""

    __tablename__ = "measure_catalog"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
