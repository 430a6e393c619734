"""A batch the database refuses (a value or a constraint it will never accept) is taken apart:
the rest of the batch is stored, the one message it refuses is rejected as bad input is
(acknowledged, counted), and the lane goes on. A trigger in the real database does the refusing
(PostgreSQL and SQLite alike): the status report of firmware "poison" is refused, and so is
the alert of an alarm with id "poison"."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import select, text

from backend import metrics
from backend.alerts.models import Alert
from backend.devices.models import Device
from device_protocol import Alarm, Status, codec
from tests.support.db import execute_retrying
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

TRIGGERS = {
    "postgresql": [
        """CREATE FUNCTION refuse_poison() RETURNS trigger AS $$ BEGIN
             IF NEW.firmware = 'poison' THEN
               RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NEW; END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER refuse_poison BEFORE UPDATE ON devices FOR EACH ROW
             EXECUTE FUNCTION refuse_poison()""",
        """CREATE FUNCTION refuse_poison_alarm() RETURNS trigger AS $$ BEGIN
             IF NEW.message_id = 'poison' THEN
               RAISE EXCEPTION 'refused' USING ERRCODE = 'check_violation';
             END IF;
             RETURN NEW; END $$ LANGUAGE plpgsql""",
        """CREATE TRIGGER refuse_poison_alarm BEFORE INSERT ON alerts FOR EACH ROW
             EXECUTE FUNCTION refuse_poison_alarm()""",
    ],
    "sqlite": [
        """CREATE TRIGGER refuse_poison BEFORE UPDATE ON devices
             WHEN NEW.firmware = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END""",
        """CREATE TRIGGER refuse_poison_alarm BEFORE INSERT ON alerts
             WHEN NEW.message_id = 'poison' BEGIN SELECT RAISE(ABORT, 'refused'); END""",
    ],
}
DROP = {
    "postgresql": ["DROP TRIGGER IF EXISTS refuse_poison ON devices",
                   "DROP FUNCTION IF EXISTS refuse_poison()",
                   "DROP TRIGGER IF EXISTS refuse_poison_alarm ON alerts",
                   "DROP FUNCTION IF EXISTS refuse_poison_alarm()"],
    "sqlite": ["DROP TRIGGER IF EXISTS refuse_poison",
               "DROP TRIGGER IF EXISTS refuse_poison_alarm"],
}


@pytest.fixture
def refusing(stack):
    engine = stack.runtime.engine
    dialect = engine.dialect.name
    with engine.begin() as conn:  # what a run that was killed may have left, first
        for statement in (*DROP[dialect], *TRIGGERS[dialect]):
            conn.execute(text(statement))
    yield stack
    execute_retrying(engine, DROP[dialect])


def _firmware(stack, device_id: str) -> str | None:
    with stack.runtime.sessions() as s:
        return s.scalar(select(Device.firmware).where(Device.id == device_id))


def test_the_message_the_database_refuses_is_rejected_and_the_rest_stored(
        refusing, monkeypatch, caplog):
    from backend.ingest import worker as worker_module

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.05, 0.05))
    stack = refusing
    names = [f"off-50{i}" for i in range(4)]
    for name in names:
        stack.register(name, role="offender")
    clients = {name: stack.device(name) for name in names}
    refused_before = metrics.REJECTED.labels("unstorable")._value.get()
    now = time.time()
    stack.worker.fixes.inbox.linger_s = 1.0  # the four reports make one batch
    for name, firmware in zip(names, ("1.0", "poison", "1.1", "1.2"), strict=True):
        publish(clients[name], stack.topics.status(name),
                codec.encode(Status(tst=now, fw=firmware)))

    wait_until(lambda: [_firmware(stack, n) for n in names] == ["1.0", None, "1.1", "1.2"],
               timeout=20)
    wait_until(lambda: metrics.REJECTED.labels("unstorable")._value.get()
               == refused_before + 1, timeout=10)
    # The lane goes on, and the refused report was acknowledged: it does not come back.
    publish(clients["off-501"], stack.topics.status("off-501"),
            codec.encode(Status(tst=now + 1, fw="2.0")))
    wait_until(lambda: _firmware(stack, "off-501") == "2.0", timeout=10)
    assert stack.worker.problems() == []
    assert "batch of 4 refused by the database (IntegrityError): in halves" in caplog.text
    for client in clients.values():
        client.disconnect()


def test_an_alarm_the_database_refuses_is_raised_bare_and_flagged(refusing, monkeypatch):
    """Given up unacknowledged, the alarm would come back after each restart and be refused
    again, and the desk would never hear of the press."""
    from backend.ingest import worker as worker_module

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.05, 0.05))
    stack = refusing
    stack.register("vic-500")
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-500")
    publish(device, stack.topics.alarm("vic-500"),
            codec.encode(Alarm(id="poison", lat=51.92, lon=4.48, acc=10)))

    [(_, payload, _)] = police.wait_for(1, timeout=20)
    document = codec.decode_document(payload)
    assert document["type"] == "panic"
    assert {"unstorable", "no_fix"} <= set(document["flags"])
    with stack.runtime.sessions() as s:
        [alert] = s.scalars(select(Alert).where(Alert.device_id == "vic-500")).all()
    # Its own id refused too ("poison"): one derived from the payload, so redelivery is one.
    assert alert.message_id.startswith("err-")
    assert stack.worker.problems() == []  # stored and acknowledged: nothing given up
    # The lane goes on: the next alarm of the device is raised as sent.
    publish(device, stack.topics.alarm("vic-500"), codec.encode(Alarm(id="fine-1")))
    police.wait_for(2, timeout=20)
    with stack.runtime.sessions() as s:
        assert s.scalar(select(Alert.message_id).where(Alert.message_id == "fine-1"))
    police.close()
    device.disconnect()
