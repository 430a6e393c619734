"""Column types that behave the same on PostgreSQL/PostGIS and on SQLite."""

from __future__ import annotations

from datetime import UTC, datetime

from geoalchemy2 import Geometry
from sqlalchemy import DateTime, Text
from sqlalchemy.types import TypeDecorator


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes in and out. SQLite drops the offset; this puts it back."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: use aware UTC datetimes")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect):  # type: ignore[override]
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def point_ewkt(lat: float, lon: float) -> str:
    """The EWKT of a WGS84 point, the value bound to a `GeoPoint` column on either back end."""
    return f"SRID=4326;POINT({lon!r} {lat!r})"


class _GeoColumn(TypeDecorator[str]):
    """A PostGIS geometry column on PostgreSQL; plain EWKT text on SQLite (the embedded default
    has no SpatiaLite). Bind EWKT strings (see `point_ewkt`); spatial queries run on PostGIS only."""

    impl = Text
    cache_ok = True
    geometry_type = "GEOMETRY"
    # Read by GeoAlchemy2's DDL hooks on PostgreSQL: no automatic index (migrations declare it).
    srid = 4326
    dimension = 2
    spatial_index = False
    use_N_D_index = False
    use_typmod = None
    nullable = True

    def load_dialect_impl(self, dialect):  # type: ignore[override]
        # GeoAlchemy2's DDL hooks ask with dialect=None: answer with the geometry type.
        if dialect is None or dialect.name == "postgresql":
            geometry = Geometry(self.geometry_type, srid=4326, spatial_index=False)
            return geometry if dialect is None else dialect.type_descriptor(geometry)
        return dialect.type_descriptor(Text())


class GeoPoint(_GeoColumn):
    geometry_type = "POINT"
    cache_ok = True  # read from the class itself, not inherited


class GeoShape(_GeoColumn):
    geometry_type = "GEOMETRY"
    cache_ok = True
