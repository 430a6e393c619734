"""Reading a position writes an audit entry; closed alerts show positions only with a reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.audit.models import AuditEntry
from tests.backend.auth.world import build


def _entries(stack) -> list[AuditEntry]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
def world(stack):
    return build(stack)


def test_reading_an_alert_position_writes_an_audit_entry(stack, world):
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    from fastapi.testclient import TestClient

    from backend.api.app import create_app
    api = TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})
    assert _entries(stack) == []
    document = api.get(f"/api/v1/alerts/{world.rotterdam_alert}").json()
    assert document["location"]["lat"] == pytest.approx(51.9244)
    [entry] = _entries(stack)
    assert (entry.actor, entry.actor_role, entry.on_behalf_of) == (
        "token:test-dispatcher", "dispatcher", "dispatcher:VR17")
    assert (entry.action, entry.resource, entry.resource_id) == (
        "read_location", "alert", str(world.rotterdam_alert))
    assert entry.case_id == world.rotterdam_case and entry.device_id == "vic-rdam"
    assert entry.channel == "api" and entry.reason is None and entry.at is not None


def test_trail_read_audits_each_device(stack, world):
    api = stack.api()
    doc = api.get(f"/api/v1/alerts/{world.rotterdam_alert}/positions").json()
    assert len(doc["victim"]["trail"]) == 3 and doc["offender"]["last"]["lat"] == 51.93
    assert doc["distance_m"] > 0
    devices = sorted(e.device_id for e in _entries(stack) if e.resource == "trail")
    assert devices == ["off-rdam", "vic-rdam"]


def test_closed_alert_withholds_position_unless_a_reason_is_given(stack, world):
    # Close every Amsterdam alert so that no alert of that case is open.
    api = stack.api()
    api.post(f"/api/v1/alerts/{world.amsterdam_alert}/resolve")
    before = len(_entries(stack))
    withheld = api.get(f"/api/v1/alerts/{world.closed_alert}").json()
    assert withheld["location"] is None and withheld["location_withheld"] is True
    assert api.get(f"/api/v1/alerts/{world.closed_alert}/positions").status_code == 403
    assert len(_entries(stack)) == before  # nothing shown, nothing logged

    shown = api.get(f"/api/v1/alerts/{world.closed_alert}",
                    params={"reason": "court order 2026/117"}).json()
    assert shown["location"]["lat"] == pytest.approx(52.3731)
    entry = _entries(stack)[-1]
    assert entry.reason == "court order 2026/117" and entry.resource_id == str(world.closed_alert)
    assert api.get(f"/api/v1/alerts/{world.closed_alert}/positions",
                   params={"reason": "court order 2026/117"}).status_code == 200
