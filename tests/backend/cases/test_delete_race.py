"""A case is deleted only while nobody else has a stake in it, also when someone writes to it at
the same moment (PostgreSQL): a note or a device that is being written while the deletion runs
stops the deletion (409) and is kept; one written after the deletion finds the case gone (404),
never a 500, never a note that was accepted and then taken along."""

from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import select

from backend.caselog import service as caselog
from backend.caselog.models import CaseLogEntry
from backend.cases import service as cases
from backend.cases.errors import CaseInUse, CaseNotFound
from backend.cases.models import Case
from backend.devices.models import Device


def _case(sessions) -> uuid.UUID:
    case_id = uuid.uuid4()
    with sessions.begin() as s:
        s.add(Case(id=case_id, reference="DEL-RACE", home_vr_code="VR17",
                   custody_status="none", exercise=False, case_director="token:cd"))
    return case_id


def delete_in_thread(sessions, case_id: uuid.UUID) -> tuple[threading.Thread, list]:
    outcome: list = []

    def run() -> None:
        try:
            with sessions.begin() as s:
                cases.delete(s, cases.get(s, case_id), "token:cd")
            outcome.append("deleted")
        except Exception as exc:  # noqa: BLE001 - the outcome is what the test judges
            outcome.append(exc)

    return threading.Thread(target=run), outcome


@pytest.mark.parametrize("other_party", ["note", "device"])
def test_a_stake_taken_while_the_case_is_deleted_stops_the_deletion(pg_sessions, other_party):
    case_id = _case(pg_sessions)
    with pg_sessions.begin() as desk:  # meanwhile another party writes to the case
        if other_party == "note":
            caselog.append(desk, case_id, "note", "user:desk", {"text": "buren bellen"})
        else:
            desk.add(Device(id="dev-race", case_id=case_id, role="victim"))
            desk.flush()
        thread, outcome = delete_in_thread(pg_sessions, case_id)
        thread.start()
        thread.join(1.0)  # the deletion waits for the desk's transaction
        assert thread.is_alive()
    thread.join(10)
    [result] = outcome
    assert isinstance(result, CaseInUse), f"deletion ended with {result!r}"
    with pg_sessions() as s:
        assert s.get(Case, case_id) is not None
        notes = s.scalars(select(CaseLogEntry.kind).where(CaseLogEntry.case_id == case_id)).all()
    assert notes == (["note"] if other_party == "note" else [])


def test_a_note_after_the_deletion_finds_the_case_gone(pg_sessions):
    case_id = _case(pg_sessions)
    with pg_sessions.begin() as s:
        cases.delete(s, cases.get(s, case_id), "token:cd")
    with pg_sessions.begin() as desk, pytest.raises(CaseNotFound):
        caselog.append(desk, case_id, "note", "user:desk", {"text": "te laat"})
