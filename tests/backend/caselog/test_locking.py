"""What a case log append locks, on PostgreSQL: appends to one case still chain one after the
other, but an alarm's raise for that case never waits for them. The alert's foreign key to its
case takes a key-share lock on the case row; an append that held the row `FOR UPDATE` (a zone
alert's follow-up in the fix worker, a desk's transition) would hold the panic of that very
case behind its whole transaction."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from backend.caselog import service as caselog
from backend.alerts import service
from backend.alerts.models import Alert
from backend.cases import service as cases
from backend.cases.custody_loop import due_cases
from backend.cases.models import Case
from backend.devices.models import Device


def _case(sessions) -> uuid.UUID:
    case_id = uuid.uuid4()
    with sessions.begin() as s:
        s.add(Case(id=case_id, reference="LOCK-1", home_police_unit="RE07",
                   custody_status="none", exercise=False))
        s.flush()
        s.add(Device(id="vic-lock", case_id=case_id, role="victim", active=True,
                     report_interval_s=60))
    return case_id


def _alert_values(case_id: uuid.UUID) -> dict:
    at = datetime.now(UTC)
    alert = Alert(
        id=uuid.uuid4(), case_id=case_id, device_id="vic-lock", message_id=uuid.uuid4().hex,
        type="panic", priority="P1", state="new", sequence=1, raised_at=at, updated_at=at,
        flags=[], police_unit="RE07", told_police=False, exercise=False, recipients=[],
    )
    return {c.key: getattr(alert, c.key) for c in Alert.__table__.columns}


def _impatient(session) -> None:
    """Fail at once instead of waiting for a lock (the test's yardstick, not a timing)."""
    session.execute(text("SET LOCAL lock_timeout = '300ms'"))


@pytest.mark.parametrize("holder", ["case log append", "case update", "custody loop claim"])
def test_a_raise_does_not_wait_for_a_transaction_holding_its_case(pg_sessions, holder):
    case_id = _case(pg_sessions)
    if holder == "custody loop claim":  # a release dated now, due to tighten the case
        with pg_sessions.begin() as s:
            s.get(Case, case_id).custody_status = "released"
            s.get(Case, case_id).released_at = datetime.now(UTC)
    with pg_sessions.begin() as held:
        if holder == "case log append":
            caselog.append(held, case_id, "note", "user:desk", {"text": "called her"})
        elif holder == "case update":
            cases.get(held, case_id, for_update=True)
        else:
            claimed = held.scalars(due_cases(datetime.now(UTC), 100, "postgresql")).all()
            assert [c.id for c in claimed] == [case_id]
        with pg_sessions.begin() as raising:  # meanwhile, the victim presses panic
            _impatient(raising)
            ids = service.raise_alert(raising, _alert_values(case_id), [])
        assert ids == []  # raised (no outbox rows asked), not refused as a redelivery

    with pg_sessions() as s:
        assert s.query(Alert).filter_by(case_id=case_id).count() == 1


def test_appends_to_one_case_still_wait_for_each_other(pg_sessions):
    case_id = _case(pg_sessions)
    with pg_sessions.begin() as first:
        caselog.append(first, case_id, "note", "user:desk", {"text": "first"})
        with pytest.raises(OperationalError, match="lock timeout"), \
                pg_sessions.begin() as second:
            _impatient(second)
            caselog.append(second, case_id, "note", "user:desk", {"text": "second"})
