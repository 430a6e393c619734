"""The only place where stored geometry (EWKT text on SQLite, PostGIS WKB on PostgreSQL) and
shapely geometry meet, and where rows become `geofences` measures and back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Collection, Iterable
from datetime import UTC, datetime
from typing import Any

import shapely
from geoalchemy2.elements import WKBElement, WKTElement
from geoalchemy2.shape import to_shape
from shapely.geometry import Point, mapping, shape
from shapely.geometry.base import BaseGeometry
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from geofences import (
    ContactBan,
    ExclusionZone,
    Exemption,
    GeofenceError,
    Measure,
    ProtectedPlace,
    TimeWindow,
)
from backend.measures.models import MeasureCatalog, MeasureRow

log = logging.getLogger(__name__)

SRID = 4326


# -- geometry ---------------------------------------------------------------------------------
def to_ewkt(geom: BaseGeometry) -> str:
    """The EWKT bound to a `GeoShape`/`GeoPoint` column on either back end."""
    return f"SRID={SRID};{shapely.to_wkt(geom, rounding_precision=-1)}"


def from_db(value: Any) -> BaseGeometry | None:
    """A stored geometry as shapely: EWKT text (SQLite) or a GeoAlchemy2 element (PostGIS)."""
    if value is None:
        return None
    if isinstance(value, WKBElement | WKTElement):
        return to_shape(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return shapely.from_wkb(bytes(value))
    text = str(value)
    if text.upper().startswith("SRID="):
        text = text.split(";", 1)[1]
    try:
        return shapely.from_wkt(text)
    except shapely.errors.GEOSException:  # hex-encoded (E)WKB
        return shapely.from_wkb(bytes.fromhex(text))


def point_ewkt(lon: float, lat: float) -> str:
    return to_ewkt(Point(lon, lat))


def point_from_db(value: Any) -> tuple[float, float] | None:
    """(lon, lat) of a stored point."""
    geom = from_db(value)
    if geom is None or not isinstance(geom, Point):
        return None
    return (geom.x, geom.y)


# -- times ------------------------------------------------------------------------------------
def _dt(ts: float | None) -> datetime | None:
    return None if ts is None else datetime.fromtimestamp(ts, UTC)


def _ts(value: datetime | None) -> float | None:
    return None if value is None else value.timestamp()


# -- measures ---------------------------------------------------------------------------------
def measure_values(measure: Measure) -> dict[str, Any]:
    """Column values of a measure (without id, case, bookkeeping)."""
    geometry: str | None
    radius: float | None = getattr(measure, "radius_m", None)
    if isinstance(measure, ContactBan):
        geometry = None
    elif measure.area is not None:
        geometry = to_ewkt(measure.area)
    else:
        geometry = point_ewkt(*measure.centre)
    return {
        "type": measure.kind,
        "geometry": geometry,
        "radius_m": radius,
        "pre_alert_m": measure.pre_alert_m,
        "valid_from": _dt(measure.valid_from),
        "valid_until": _dt(measure.valid_until),
        "time_windows": [w.as_dict() for w in measure.time_windows],
        "authority": measure.authority,
        "reference": measure.reference,
        "subject_device_ids": list(measure.subject_device_ids),
        "protected_device_ids": list(getattr(measure, "protected_device_ids", ())),
        "exceptions": [
            {
                "geometry": mapping(e.geometry),
                "valid_from": e.valid_from,
                "valid_until": e.valid_until,
                "reason": e.reason,
            }
            for e in measure.exceptions
        ],
    }


def to_measure(row: MeasureRow) -> Measure:
    """A stored measure as a `geofences` measure (validated when it was stored, not again)."""
    common: dict[str, Any] = {
        "id": row.id,
        "case_id": str(row.case_id),
        "subject_device_ids": tuple(row.subject_device_ids or ()),
        "pre_alert_m": float(row.pre_alert_m or 0.0),
        "valid_from": _ts(row.valid_from),
        "valid_until": _ts(row.valid_until),
        "time_windows": tuple(
            TimeWindow.from_dict(w, f"time_windows[{i}]")
            for i, w in enumerate(row.time_windows or ())
        ),
        "authority": row.authority or "",
        "reference": row.reference or "",
        "exceptions": tuple(
            Exemption(
                geometry=shape(e["geometry"]),
                valid_from=e.get("valid_from"),
                valid_until=e.get("valid_until"),
                reason=e.get("reason", ""),
            )
            for e in row.exceptions or ()
        ),
    }
    if row.type == "contact_ban":
        return ContactBan(
            protected_device_ids=tuple(row.protected_device_ids or ()),
            radius_m=float(row.radius_m or 0.0),
            **common,
        )
    geom = from_db(row.geometry)
    if isinstance(geom, Point):
        cls = ExclusionZone if row.type == "exclusion_zone" else ProtectedPlace
        return cls(centre=(geom.x, geom.y), radius_m=float(row.radius_m or 0.0), **common)
    return ExclusionZone(area=geom, **common)


def active_versions(session: Session) -> dict[str, int]:
    """Id -> version of every active measure (a light read: no geometry)."""
    rows = session.execute(
        select(MeasureRow.id, MeasureRow.version).where(MeasureRow.active.is_(True)))
    return {measure_id: version for measure_id, version in rows}


def load_active(
    session: Session, ids: Collection[str] | None = None, chunk: int = 1_000,
    case_id: uuid.UUID | None = None,
) -> dict[str, tuple[int, Measure]]:
    """Id -> (version, measure) of the active measures, all of them or those of `ids` (read
    `chunk` ids a query), of every case or of `case_id`. A row that cannot be read is skipped
    and logged by id, so one bad row never takes every other measure down."""
    query = select(MeasureRow).where(MeasureRow.active.is_(True))
    if case_id is not None:
        query = query.where(MeasureRow.case_id == case_id)
    if ids is None:
        queries = [query]
    else:
        wanted = sorted(ids)
        queries = [query.where(MeasureRow.id.in_(wanted[i:i + chunk]))
                   for i in range(0, len(wanted), chunk)]
    measures: dict[str, tuple[int, Measure]] = {}
    for q in queries:
        for row in session.scalars(q):
            try:
                measures[row.id] = (row.version, to_measure(row))
            except (GeofenceError, ValueError, TypeError, KeyError) as exc:
                log.error("measure unreadable id=%s error=%s", row.id, type(exc).__name__)
    return measures


def to_measures(rows: Iterable[MeasureRow]) -> list[Measure]:
    return [to_measure(r) for r in rows]


# -- catalogue version ------------------------------------------------------------------------
def catalog_version(session: Session) -> int:
    value = session.scalar(select(MeasureCatalog.version).where(MeasureCatalog.id == 1))
    return int(value or 0)


def bump_catalog(session: Session) -> None:
    """Raise the catalogue version in the caller's transaction (creates the row if missing)."""
    dialect = session.get_bind().dialect.name
    ins = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(MeasureCatalog)
    session.execute(
        ins.values(id=1, version=1).on_conflict_do_update(
            index_elements=["id"], set_={"version": MeasureCatalog.version + 1}
        )
    )
