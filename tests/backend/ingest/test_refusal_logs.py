"""A row the database refuses is logged by the error's type and SQLSTATE, never with the
server's message: PostgreSQL's DETAIL of a refused row repeats the row ("Failing row contains
(...)", a position among it), and logs carry ids, never coordinates. Triggers in the real
database refuse an alarm's alert (on the network thread, in the lane, and raised bare with its
own id) and every timeline entry (the follow-up), each with such a DETAIL."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import func, select, text

from backend.alerts.models import Alert
from device_protocol import Alarm, codec
from tests.support.db import execute_retrying
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

DETAIL = "Failing row contains (51.9244, 4.4690)"
REFUSE = """RAISE EXCEPTION 'new row violates check constraint'
              USING ERRCODE = 'check_violation', DETAIL = '{detail}';""".format(detail=DETAIL)
TRIGGERS = [
    f"""CREATE FUNCTION refuse_alert_with_detail() RETURNS trigger AS $$ BEGIN
          IF NEW.message_id = 'detail-1' THEN {REFUSE} END IF;
          RETURN NEW; END $$ LANGUAGE plpgsql""",
    f"""CREATE FUNCTION refuse_event_with_detail() RETURNS trigger AS $$ BEGIN
          {REFUSE} END $$ LANGUAGE plpgsql""",
    """CREATE TRIGGER refuse_with_detail BEFORE INSERT ON alerts FOR EACH ROW
         EXECUTE FUNCTION refuse_alert_with_detail()""",
    """CREATE TRIGGER refuse_with_detail BEFORE INSERT ON alert_events FOR EACH ROW
         EXECUTE FUNCTION refuse_event_with_detail()""",
]
DROP = ["DROP TRIGGER IF EXISTS refuse_with_detail ON alerts",
        "DROP TRIGGER IF EXISTS refuse_with_detail ON alert_events",
        "DROP FUNCTION IF EXISTS refuse_alert_with_detail()",
        "DROP FUNCTION IF EXISTS refuse_event_with_detail()"]


@pytest.fixture
def refusing(stack):
    if stack.backend != "services":
        pytest.skip("a DETAIL is PostgreSQL's")
    engine = stack.runtime.engine
    with engine.begin() as conn:
        for statement in (*DROP, *TRIGGERS):
            conn.execute(text(statement))
    yield stack
    execute_retrying(engine, DROP)


def test_a_refused_alarm_and_follow_up_are_logged_without_the_servers_detail(
        refusing, monkeypatch, caplog):
    from backend.ingest import worker as worker_module

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.05, 0.05))
    caplog.set_level(logging.INFO)
    stack = refusing
    stack.register("vic-detail")
    device = stack.device("vic-detail")
    publish(device, stack.topics.alarm("vic-detail"),
            codec.encode(Alarm(id="detail-1", lat=51.9244, lon=4.4690, acc=10)))

    def raised_bare() -> bool:
        with stack.runtime.sessions() as s:
            return s.scalar(select(func.count()).select_from(Alert)
                            .where(Alert.device_id == "vic-detail")) == 1

    wait_until(raised_bare, timeout=20)
    wait_until(lambda: "follow-up of alerts ids=" in caplog.text, timeout=20)
    logged = caplog.text
    assert "Failing row" not in logged and "51.92" not in logged
    assert "alarm failed on the network thread (IntegrityError sqlstate=23514)" in logged
    assert "the bare alarm was refused too (own_id=True, IntegrityError sqlstate=23514)" \
        in logged
    assert "failed (IntegrityError sqlstate=23514): the follow-up sweep finishes it" in logged
    device.disconnect()
