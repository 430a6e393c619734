"""`service.raise_alert` stores exactly the values it is given, on PostgreSQL (one statement,
each table's rows as one JSON parameter) and on SQLite: bytes, JSON values and None in JSON
columns (JSON null, as SQLAlchemy writes it), aware datetimes; companion rows with the alert;
a second raise of the same (device, message id) writes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.orm import Session, sessionmaker

from backend.alerts import service
from backend.alerts.models import Alert, OutboxMessage
from backend.cases.models import Case
from backend.db.engine import make_engine, make_session_factory
from backend.devices.models import Device
from backend.settings import DatabaseSettings
from backend.subscriptions.models import Delivery, Subscription
from tests.backend.conftest import truncate_all
from tests.support.db import sqlite_sessions


@pytest.fixture(params=["postgresql", "sqlite"])
def sessions(request, tmp_path: Path) -> Iterator[sessionmaker[Session]]:
    if request.param == "sqlite":
        yield from sqlite_sessions(tmp_path)
        return
    url = request.getfixturevalue("pg_url")
    truncate_all(url)
    engine = make_engine(DatabaseSettings(url=url))
    yield make_session_factory(engine)
    engine.dispose()


def _world(sessions) -> tuple[uuid.UUID, uuid.UUID]:
    case_id, subscription_id = uuid.uuid4(), uuid.uuid4()
    with sessions.begin() as s:
        s.add(Case(id=case_id, reference="SVC-1", home_police_unit="RE07",
                   custody_status="none", exercise=False))
        s.flush()
        s.add(Device(id="vic-svc", case_id=case_id, role="victim", active=True,
                     report_interval_s=60))
        s.add(Subscription(id=subscription_id, name="svc", url="http://127.0.0.1:9/hook",
                           secret="whsec_dGVzdA==", format="json"))
    return case_id, subscription_id


def _values(case_id: uuid.UUID, at: datetime) -> dict:
    alert = Alert(
        id=uuid.uuid4(), case_id=case_id, device_id="vic-svc", message_id="m-1", type="panic",
        priority="P1", state="new", sequence=1, raised_at=at, device_time=at - timedelta(seconds=2),
        lat=51.92, lon=4.48, acc=8.5, fix_time=at, location_source="alarm",
        flags=["late", "no_fix"], police_unit="RE07", told_police=True,
        region={"vr_code": "VR17", "gemeente_code": "GM0599", "name": "Rotterdam"},
        exercise=False, updated_at=at, recipients=[{"kind": "police", "unit": "RE07"}],
        escalation=None, escalation_step=None, next_escalation_at=None, health_devices=None,
    )
    return {c.key: getattr(alert, c.key) for c in Alert.__table__.columns}


def test_raise_alert_stores_every_value_once(sessions):
    case_id, subscription_id = _world(sessions)
    at = datetime(2026, 11, 29, 1, 2, 3, 456789, tzinfo=UTC)
    values = _values(case_id, at)
    payload = b'{"alert": "\\u00e9"}\x00\xff'
    outbox = [
        {"alert_id": values["id"], "channel": "mqtt", "target": "sd/v1/police/RE07/alerts",
         "payload": payload, "qos": 1, "status": "pending", "attempts": 0, "created_at": at},
        {"alert_id": values["id"], "channel": "mqtt", "target": "sd/v1/dev/vic-svc/ack",
         "payload": b"{}", "qos": 1, "status": "pending", "attempts": 0, "created_at": at},
    ]
    delivery_id = uuid.uuid4()
    deliveries = [{"id": delivery_id, "subscription_id": subscription_id,
                   "alert_id": values["id"], "sequence": 1, "priority": "P1", "format": "json",
                   "body": b"body\x01", "state": "pending", "attempts": 0, "created_at": at,
                   "window_start": at, "next_attempt_at": at}]

    with sessions.begin() as s:
        ids = service.raise_alert(s, values, outbox, [(Delivery.__table__, deliveries)])
    with sessions.begin() as s:
        again = service.raise_alert(s, {**values, "id": uuid.uuid4()}, outbox,
                                    [(Delivery.__table__, deliveries)])

    assert again is None
    with sessions() as s:
        stored = s.get(Alert, values["id"])
        for key, value in values.items():
            assert getattr(stored, key) == value, key
        rows = {r.id: r for r in s.scalars(select(OutboxMessage))}
        assert list(rows) == ids and len(ids) == 2
        assert [rows[i].target for i in ids] == [o["target"] for o in outbox]
        assert rows[ids[0]].payload == payload and rows[ids[0]].alert_id == values["id"]
        [delivery] = s.scalars(select(Delivery)).all()
        assert (delivery.id, delivery.body, delivery.alert_id) == (delivery_id, b"body\x01",
                                                                   values["id"])
        assert delivery.next_attempt_at == at
        # None in a JSON column is JSON null, whichever back end wrote it.
        assert s.scalar(text("SELECT count(*) FROM alerts WHERE health_devices IS NULL")) == 0


def test_raise_alert_refuses_naive_datetimes(sessions):
    case_id, _ = _world(sessions)
    values = _values(case_id, datetime(2026, 11, 29, tzinfo=UTC))
    values["raised_at"] = datetime(2026, 11, 29)
    with pytest.raises(Exception, match="naive datetime"), sessions.begin() as s:
        service.raise_alert(s, values, [])
    with sessions() as s:
        assert s.scalar(select(Alert.id)) is None
