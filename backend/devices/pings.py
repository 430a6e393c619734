"""Storing accepted fixes as pings, in bulk.

On PostgreSQL a batch is one statement whatever its size: the columns travel as arrays and
`unnest` turns them back into rows, the point is built by PostGIS from lon/lat. That is several
times cheaper for the ingest worker than binding one row at a time. A redelivered fix (same
device and fix time) is stored once (`ON CONFLICT DO NOTHING`) on both back ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import text
from sqlalchemy.dialects import sqlite
from sqlalchemy.orm import Session

from backend.db.types import point_ewkt
from backend.devices.models import Ping

_UNNEST_INSERT = text("""
    INSERT INTO pings (device_id, fix_time, received_at, lat, lon, acc, vel, batt, geom)
    SELECT d, t, r, la, lo, a, v, b, ST_SetSRID(ST_MakePoint(lo, la), 4326)
    FROM unnest(
        CAST(:device_id AS text[]), CAST(:fix_time AS timestamptz[]),
        CAST(:received_at AS timestamptz[]), CAST(:lat AS float8[]), CAST(:lon AS float8[]),
        CAST(:acc AS float8[]), CAST(:vel AS float8[]), CAST(:batt AS int2[])
    ) AS u(d, t, r, la, lo, a, v, b)
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
        session.execute(_UNNEST_INSERT, {
            "device_id": [r.device_id for r in rows],
            "fix_time": [datetime.fromtimestamp(r.tst, UTC) for r in rows],
            "received_at": [datetime.fromtimestamp(r.received_at, UTC) for r in rows],
            "lat": [r.lat for r in rows],
            "lon": [r.lon for r in rows],
            "acc": [r.acc for r in rows],
            "vel": [r.vel for r in rows],
            "batt": [r.batt for r in rows],
        })
        return
    session.execute(sqlite.insert(Ping).on_conflict_do_nothing(), [
        {"device_id": r.device_id, "fix_time": datetime.fromtimestamp(r.tst, UTC),
         "received_at": datetime.fromtimestamp(r.received_at, UTC), "lat": r.lat, "lon": r.lon,
         "acc": r.acc, "vel": r.vel, "batt": r.batt, "geom": point_ewkt(r.lat, r.lon)}
        for r in rows
    ])
