"""The alert endpoints: an operator's action in one transaction, documents without wasted reads."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, func, select

from backend.alerts.models import Alert
from backend.alerts.views import documents
from backend.audit.models import AuditEntry
from backend.escalation.loop import EscalationLoop
from backend.pipeline.context import AlertDraft
from tests.backend.escalation.support import RecordingBus
from tests.support.db import sqlite_sessions, statements


def _raise(stack, device_id: str) -> uuid.UUID:
    """A panic alert with a position, of a registered victim device."""
    case_id = stack.register(device_id)
    now = time.time()
    draft = AlertDraft(type="panic", device_id=device_id, case_id=case_id, message_id="v-1",
                       raised_at=now, device_time=now, lat=51.9225, lon=4.4792, acc=8.0,
                       fix_time=now, location_source="alarm")
    with stack.runtime.sessions.begin() as s:
        [alert] = stack.runtime.flow.raise_alerts(s, [draft]).alerts
    return alert.id


def test_an_action_takes_one_connection_and_one_commit(stack):
    alert_id = _raise(stack, "vic-view-1")
    engine, checkouts, commits = stack.runtime.engine, [], []

    # The outbox thread's own work (marking the action's messages sent once the broker has
    # them) may fall in the window: counted are the request's connections only.
    def checkout(*_):
        if threading.current_thread().name != "outbox":
            checkouts.append(1)

    def commit(*_):
        if threading.current_thread().name != "outbox":
            commits.append(1)

    event.listen(engine, "checkout", checkout)
    event.listen(engine, "commit", commit)
    try:
        r = stack.api().post(f"/api/v1/alerts/{alert_id}/acknowledge")
    finally:
        event.remove(engine, "checkout", checkout)
        event.remove(engine, "commit", commit)
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    assert r.json()["location"] is not None  # released to the operator, so audited
    assert (len(checkouts), len(commits)) == (1, 1)
    with stack.runtime.sessions() as s:
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.resource_id == str(alert_id)))
    assert audited == 1


@pytest.fixture
def sqlite(tmp_path: Path):
    yield from sqlite_sessions(tmp_path)


def test_documents_of_alerts_without_device_or_case_read_nothing(sqlite):
    seen = statements(sqlite)
    alert = Alert(id=uuid.uuid4(), type="device_storm", priority="P2", state="new", sequence=1,
                  raised_at=datetime.now(UTC), updated_at=datetime.now(UTC), flags=[],
                  exercise=False)
    with sqlite() as s:
        [document] = documents(s, [alert])
    assert document["device"] is None and document["case"] is None
    assert seen == []


def test_a_document_says_where_the_escalation_stands(stack):
    """The API's document names the last escalation step carried out after the first
    notification, so a console that lost the `alert.escalated` event still marks it."""
    alert_id = _raise(stack, "vic-view-esc")
    api = stack.api()
    assert api.get(f"/api/v1/alerts/{alert_id}").json()["escalation"] is None
    with stack.runtime.sessions() as s:
        raised_at = s.get(Alert, alert_id).raised_at
    loop = EscalationLoop(stack.runtime, clock=lambda: raised_at, bus=RecordingBus())
    assert loop.run_once(raised_at + timedelta(seconds=45)) == 2
    expected = {"step": 2, "action": "escalate", "target": "desk_supervisor"}
    assert api.get(f"/api/v1/alerts/{alert_id}").json()["escalation"] == expected
    [listed] = api.get("/api/v1/alerts?with_location=false").json()
    assert listed["escalation"] == expected


def test_an_action_a_colleague_took_first_keeps_its_note(stack):
    """Two operators acknowledge one alert: the second changes nothing, but her note is on the
    timeline (kind `note`); a repeat without a note writes nothing."""
    from tests.backend.escalation.support import raise_panic

    alert = raise_panic(stack, "vic-note")
    api = stack.api()
    assert api.post(f"/api/v1/alerts/{alert.id}/acknowledge").status_code == 200
    second = api.post(f"/api/v1/alerts/{alert.id}/acknowledge",
                      json={"note": "called her, car 12 on its way"})
    assert second.status_code == 200 and second.json()["state"] == "acknowledged"
    assert api.post(f"/api/v1/alerts/{alert.id}/acknowledge").status_code == 200
    timeline = api.get(f"/api/v1/alerts/{alert.id}?with_location=false").json()["timeline"]
    assert [(e["kind"], e["to_state"]) for e in timeline] == [
        ("raised", "new"), ("transition", "acknowledged"), ("note", "acknowledged")]
    assert timeline[-1]["detail"] == {"note": "called her, car 12 on its way"}
