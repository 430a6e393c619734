"""What holding an alert's row locks, on PostgreSQL. A webhook outcome (`service.lock`) and an
escalation pass hold the row while they recompute what they change; rows that refer to the
alert (a timeline entry: its foreign key takes a key-share lock on the alert) are still written
meanwhile, so an alarm's follow-up never waits behind them. Two holders still take turns."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from backend.alerts import service
from backend.alerts.models import Alert
from backend.caselog import service as caselog
from backend.escalation.loop import EscalationLoop
from tests.backend.escalation.support import RecordingBus, raise_panic


def _impatient(session) -> None:
    """Fail at once instead of waiting for a lock (the test's yardstick, not a timing)."""
    session.execute(text("SET LOCAL lock_timeout = '300ms'"))


def _alert(sessions) -> uuid.UUID:
    at = datetime.now(UTC)
    alert_id = uuid.uuid4()
    with sessions.begin() as s:
        s.add(Alert(id=alert_id, type="panic", priority="P1", state="new", sequence=1,
                    raised_at=at, updated_at=at, flags=[], recipients=[]))
    return alert_id


def _timeline_entry(session, alert_id: uuid.UUID) -> None:
    service.add_event(session, alert_id, at=datetime.now(UTC), actor="device:v", kind="raised")


def test_a_held_alert_still_takes_timeline_entries_but_not_a_second_holder(pg_sessions):
    alert_id = _alert(pg_sessions)
    with pg_sessions.begin() as holder:
        service.lock(holder, alert_id)
        with pg_sessions.begin() as follow_up:
            _impatient(follow_up)
            _timeline_entry(follow_up, alert_id)
        with pytest.raises(OperationalError, match="lock timeout"), \
                pg_sessions.begin() as second:
            _impatient(second)
            service.lock(second, alert_id)


def _waiting_for_a_lock(sessions) -> bool:
    with sessions() as s:
        return bool(s.scalar(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()")))


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_escalation_pass_does_not_hold_up_the_alerts_timeline(stack):
    alert = raise_panic(stack, "vic-row-lock")
    sessions = stack.runtime.sessions
    loop = EscalationLoop(stack.runtime, clock=lambda: alert.raised_at, bus=RecordingBus())
    due = alert.raised_at + timedelta(seconds=30)  # the first re-notification
    passes: list[int] = []
    with sessions.begin() as desk:
        # The desk writes in the case log: the pass, once it holds the alert, waits for the
        # case row to append its own entry, with the alert's row in its hands.
        assert alert.case_id is not None
        caselog.append(desk, alert.case_id, "note", "user:desk", {"text": "called her"})
        escalating = threading.Thread(target=lambda: passes.append(loop.run_once(due)))
        escalating.start()
        deadline = time.monotonic() + 10
        while not _waiting_for_a_lock(sessions) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert _waiting_for_a_lock(sessions), "the pass never reached the case log"
        with sessions.begin() as follow_up:
            _impatient(follow_up)
            _timeline_entry(follow_up, alert.id)
    escalating.join(10)
    assert passes == [1]  # the pass went on once the desk's transaction ended
