"""Bulk ping storage on both back ends: every column lands, the point is the fix's position,
and a redelivered fix is stored once."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.orm import Session

from backend.db.migrate import upgrade
from backend.devices.models import Ping
from backend.devices.pings import PingRow, store_pings
from tests.backend.conftest import truncate_all

T0 = 1_790_000_000.123456


@pytest.fixture(params=["postgresql", "sqlite"])
def db_url(request, tmp_path: Path) -> str:
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        truncate_all(url)
        return url
    url = f"sqlite:///{tmp_path}/pings.db"
    upgrade(url)
    return url


def test_batch_is_stored_once_with_every_column(db_url: str) -> None:
    rows = [PingRow(f"d{i % 3}", T0 + i, T0 + i + 0.5, 51.9 + i / 1000, 4.48, None if i else 7.5,
                    1.25, 80 - i) for i in range(10)]
    engine = create_engine(db_url)
    with Session(engine) as session, session.begin():
        store_pings(session, rows)
    with Session(engine) as session, session.begin():
        store_pings(session, rows[:4] + rows[:1])  # redelivery, and a duplicate within a batch
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ping)) == 10
        first = session.get(Ping, ("d0", datetime.fromtimestamp(T0, UTC)))
        assert first is not None
        assert (first.lat, first.lon, first.acc, first.vel, first.batt) == (51.9, 4.48, 7.5, 1.25, 80)
        assert first.received_at == datetime.fromtimestamp(T0 + 0.5, UTC)
        last = session.get(Ping, ("d0", datetime.fromtimestamp(T0 + 9, UTC)))
        assert last is not None and last.acc is None and last.batt == 71
        if engine.dialect.name == "postgresql":
            x, y, srid = session.execute(text(
                "SELECT ST_X(geom), ST_Y(geom), ST_SRID(geom) FROM pings "
                "WHERE device_id = 'd0' AND fix_time = :t"), {"t": first.fix_time}).one()
            assert (x, y, srid) == (4.48, 51.9, 4326)
    engine.dispose()


def test_empty_batch_does_nothing(db_url: str) -> None:
    engine = create_engine(db_url)
    with Session(engine) as session, session.begin():
        store_pings(session, [])
    with Session(engine) as session:
        assert session.scalar(select(func.count()).select_from(Ping)) == 0
    engine.dispose()


def test_times_and_coordinates_keep_every_digit(db_url: str) -> None:
    """Sub-microsecond device times round as `datetime.fromtimestamp` rounds them (a redelivered
    fix must hit the same key), and coordinates come back as the very same floats."""
    tst, lat, lon = 1_796_403_985.3697636, 51.90039802082054, 4.400229682300178
    engine = create_engine(db_url)
    with Session(engine) as session, session.begin():
        store_pings(session, [PingRow("d9", tst, tst + 1e-7, lat, lon, 4.999999999999999, None,
                                      None)])
    with Session(engine) as session:
        ping = session.get(Ping, ("d9", datetime.fromtimestamp(tst, UTC)))
        assert ping is not None
        assert (ping.lat, ping.lon, ping.acc, ping.vel, ping.batt) == (
            lat, lon, 4.999999999999999, None, None)
        assert ping.received_at == datetime.fromtimestamp(tst + 1e-7, UTC)
    engine.dispose()
