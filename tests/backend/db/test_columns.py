"""Plain-valued columns for passes over many rows, on PostgreSQL and on SQLite: times as whole
microseconds since the epoch, UUIDs as `str(uuid.UUID)` writes them, and the result as columns,
read in the session's own transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from backend.cases.models import Case
from backend.db.columns import epoch_us, fetch_columns, uuid_text
from backend.db.engine import make_engine, make_session_factory
from backend.db.migrate import upgrade
from backend.devices.models import Device
from backend.settings import DatabaseSettings
from backend.supervision.health import to_us
from tests.backend.conftest import truncate_all

STATUS_AT = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(request, tmp_path):
    if request.param == "postgresql":
        url = request.getfixturevalue("pg_url")
        truncate_all(url)
    else:
        url = f"sqlite:///{tmp_path}/columns.db"
        upgrade(url)
    engine = make_engine(DatabaseSettings(url=url))
    yield make_session_factory(engine)
    engine.dispose()


def _device_columns(session):
    return fetch_columns(session, select(
        Device.id, uuid_text(Device.case_id), epoch_us(Device.last_status_at), Device.battery,
        Device.online.is_(False),
    ).order_by(Device.id))


def test_columns_hold_plain_values_read_in_the_sessions_transaction(sessions):
    case_id = uuid.uuid4()
    with sessions.begin() as s:
        s.add(Case(id=case_id, reference="C-1", home_police_unit="RE07"))
        s.flush()
        s.add_all([
            Device(id="d1", case_id=case_id, role="victim", last_status_at=STATUS_AT,
                   battery=40, online=False),
            Device(id="d2", case_id=case_id, role="offender"),
        ])
        s.flush()  # not committed: the columns come from this transaction
        ids, cases, status_us, battery, offline = _device_columns(s)
        dialect = s.get_bind().dialect.name

    assert ids == ["d1", "d2"]
    assert cases == [str(case_id)] * 2
    if dialect == "postgresql":
        assert status_us[0] == to_us(STATUS_AT)
    else:  # SQLite keeps times as text: its julianday() reads them to the millisecond
        assert abs(status_us[0] - to_us(STATUS_AT)) <= 1_000
    assert status_us[1] is None
    assert battery == [40, None]
    assert [bool(v) for v in offline] == [True, False]


def test_no_rows_gives_one_empty_column_per_selected_column(sessions):
    with sessions() as s:
        assert _device_columns(s) == [[], [], [], [], []]
