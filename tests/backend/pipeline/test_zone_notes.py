"""Notes of geofence events that raise no alert go on the timeline of the open alert of their
own measure (real PostgreSQL): never on that of a measure whose id differs only where the
note's measure id has a character that a LIKE pattern would take as a wildcard."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.alerts.models import Alert, AlertEvent
from backend.cases.models import Case
from backend.devices.models import Device
from backend.pipeline.zones import ConsoleAndTimelineNotes, message_id
from geofences import GeofenceEvent

pytestmark = pytest.mark.services


class Bus:
    def __init__(self) -> None:
        self.events: list[dict] = []

    def publish(self, event: dict) -> None:
        self.events.append(event)


def test_a_note_goes_to_its_own_measures_alert_only(pg_sessions) -> None:
    now = datetime.now(UTC)
    with pg_sessions.begin() as s:
        case = Case(reference="ZN-1", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-zn", case_id=case.id, role="offender"))
        s.flush()
        own, other = (
            Alert(case_id=case.id, device_id="off-zn", message_id=message_id(GeofenceEvent(
                      kind="zone_breach", measure_id=measure, case_id=str(case.id),
                      device_id="off-zn", at=100.0, confidence="possible", distance_m=0.0,
                      inside_m=5.0)),
                  type="zone_breach", priority="P1", raised_at=raised_at)
            for measure, raised_at in (("zone_a", now - timedelta(minutes=2)),
                                       ("zoneXa", now - timedelta(minutes=1)))
        )
        s.add_all([own, other])
        s.flush()
        own_id, other_id, case_id = own.id, other.id, case.id
    bus = Bus()
    cleared = GeofenceEvent(kind="zone_breach_cleared", measure_id="zone_a",
                            case_id=str(case_id), device_id="off-zn", at=200.0,
                            confidence="confirmed", distance_m=50.0, inside_m=None)
    ConsoleAndTimelineNotes(pg_sessions, bus).record([cleared], 200.0)
    with pg_sessions() as s:
        noted = list(s.scalars(select(AlertEvent.alert_id).where(AlertEvent.kind == "geofence")))
    assert noted == [own_id] and other_id not in noted
    assert bus.events[0]["geofence"]["alert_id"] == str(own_id)
