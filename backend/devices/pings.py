"""Storing accepted fixes as pings, in bulk.

On PostgreSQL a batch is one statement with one parameter whatever its size: the rows travel as
one JSON document (serialized by orjson, in C) that `jsonb_array_elements` turns back into rows;
the point is built by PostGIS from lon/lat. Binding the columns as arrays instead cost the fix
worker about a tenth of its CPU in psycopg's list dumper, one Python call per value. A redelivered
fix (same device and fix time) is stored once (`ON CONFLICT DO NOTHING`) on both back ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from backend.db.types import point_ewkt
from backend.devices.models import Ping

_JSON_INSERT = text("""
    INSERT INTO pings (device_id, fix_time, received_at, lat, lon, acc, vel, batt, geom)
    SELECT r->>0, (r->>1)::timestamptz, (r->>2)::timestamptz, (r->>3)::float8, (r->>4)::float8,
           (r->>5)::float8, (r->>6)::float8, (r->>7)::int2,
           ST_SetSRID(ST_MakePoint((r->>4)::float8, (r->>3)::float8), 4326)
    FROM jsonb_array_elements(CAST(:rows AS jsonb)) AS r
    ON CONFLICT DO NOTHING
""")


@dataclass(frozen=True, slots=True)
class PingRow:
    device_id: str
    tst: float  # device time of the fix (epoch seconds)
    received_at: float
    lat: float
    lon: float
    acc: float | None
    vel: float | None
    batt: int | None


def store_pings(session: Session, rows: list[PingRow]) -> None:
    """Insert the rows in the session's transaction; duplicates are skipped."""
    if not rows:
        return
    if session.get_bind().dialect.name == "postgresql":
        # Times as RFC 3339 text with their offset (exactly the microseconds `fromtimestamp`
        # gives), floats in their shortest round-trip form: the same values as bound one by one.
        session.execute(_JSON_INSERT, {"rows": orjson.dumps([
            (r.device_id, datetime.fromtimestamp(r.tst, UTC),
             datetime.fromtimestamp(r.received_at, UTC), r.lat, r.lon, r.acc, r.vel, r.batt)
            for r in rows
        ]).decode()})
        return
    session.execute(sqlite.insert(Ping).on_conflict_do_nothing(), [
        {"device_id": r.device_id, "fix_time": datetime.fromtimestamp(r.tst, UTC),
         "received_at": datetime.fromtimestamp(r.received_at, UTC), "lat": r.lat, "lon": r.lon,
         "acc": r.acc, "vel": r.vel, "batt": r.batt, "geom": point_ewkt(r.lat, r.lon)}
        for r in rows
    ])
