"""The positions document of an alert: one track per role, the right device's, and every device
whose positions it carries audited."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest
from sqlalchemy import select

from backend.alerts.models import Alert
from backend.audit.models import AuditEntry
from backend.cases.models import Case
from backend.console.positions import TRAIL_BEFORE, newest, shown_devices, trail_floor
from backend.devices.models import Device, Ping

NOW = datetime.now(UTC)


def _case_with(stack, devices: list[tuple[str, str, bool]],
               fixes: list[tuple[str, float, float, float]]):
    """A case with these devices (id, role, active) and fixes (device, seconds ago, lat, lon)."""
    with stack.runtime.sessions.begin() as s:
        case = Case(reference="C-TWO", home_police_unit="RE07", home_vr_code="VR17")
        s.add(case)
        s.flush()
        s.add_all([Device(id=d, case_id=case.id, role=role, active=active)
                   for d, role, active in devices])
        s.flush()
        s.add_all([Ping(device_id=d, fix_time=NOW - timedelta(seconds=ago), received_at=NOW,
                        lat=lat, lon=lon, acc=10) for d, ago, lat, lon in fixes])
        return case.id


def _alert(stack, case_id, device_id: str, kind: str, lat: float, lon: float, *,
           priority: str = "P1", ago: timedelta = timedelta(seconds=60)) -> str:
    with stack.runtime.sessions.begin() as s:
        alert = Alert(case_id=case_id, device_id=device_id, message_id=f"m-{kind}", type=kind,
                      priority=priority, state="new", raised_at=NOW - ago,
                      lat=lat, lon=lon, acc=8, fix_time=NOW - ago,
                      location_source="alarm", police_unit="RE07",
                      region={"vr_code": "VR17"}, flags=[])
        s.add(alert)
        s.flush()
        return str(alert.id)


def _trail_reads(stack) -> list[str]:
    with stack.runtime.sessions() as s:
        return sorted(e.device_id for e in s.scalars(
            select(AuditEntry).where(AuditEntry.resource == "trail")))


def test_an_urgent_alert_releases_no_older_trail_through_a_long_open_one(stack):
    """A low battery (P3) on the victim's button, raised three days ago, is still open; a
    proximity (P1) of the case opened two minutes ago. Before, the P3's positions read without
    a reason came with the three days of hourly fixes since it was raised, released by the P1.
    Now they reach back only as far as the P1's own trail: fifteen minutes before it was
    raised. With a reason, the P3's whole window, as once no urgent alert is open."""
    hourly = [("btn-1", hours * 3600, 51.90 + hours / 10_000, 4.48) for hours in range(1, 73)]
    case_id = _case_with(stack, [("btn-1", "victim", True), ("off-1", "offender", True)],
                         hourly + [("btn-1", 300, 51.880, 4.490), ("btn-1", 60, 51.881, 4.490),
                                   ("off-1", 90, 51.8805, 4.4905)])
    battery = _alert(stack, case_id, "btn-1", "battery_low", 51.95, 4.48, priority="P3",
                     ago=timedelta(days=3))
    proximity = _alert(stack, case_id, "off-1", "proximity", 51.8805, 4.4905,
                       ago=timedelta(minutes=2))
    api = stack.api()
    api.headers["Authorization"] = "Bearer " + stack.token("dispatcher", {"regions": ["VR17"]})

    def fixes(doc: dict) -> list[datetime]:
        return [datetime.fromisoformat(f["at"]) for f in doc["victim"]["trail"]]

    urgent = api.get(f"/api/v1/alerts/{proximity}/positions").json()
    clipped = api.get(f"/api/v1/alerts/{battery}/positions")
    assert clipped.status_code == 200
    assert fixes(clipped.json()) == fixes(urgent) == [NOW - timedelta(seconds=300),
                                                      NOW - timedelta(seconds=60)]
    assert datetime.fromisoformat(clipped.json()["trail_from"]) == NOW - timedelta(minutes=17)
    assert clipped.json()["trail_clipped"] is True and urgent["trail_clipped"] is False
    assert clipped.json()["victim"]["last"]["lat"] == 51.881  # where she is now
    whole = api.get(f"/api/v1/alerts/{battery}/positions",
                    params={"reason": "battery complaint: her route this week"}).json()
    assert len(fixes(whole)) == 74 and min(fixes(whole)) == NOW - timedelta(hours=72)
    assert whole["trail_clipped"] is False
    with stack.runtime.sessions() as s:
        reasons = [e.reason for e in s.scalars(
            select(AuditEntry).where(AuditEntry.resource_id == battery,
                                     AuditEntry.device_id == "btn-1")
            .order_by(AuditEntry.id))]
    assert reasons == [None, "battery complaint: her route this week"]


def test_the_trail_floor_is_the_urgent_alerts_own_reach_without_a_reason():
    raised = NOW - timedelta(minutes=2)
    assert trail_floor(releases_itself=False, reason=None,
                       released_since=raised) == raised - TRAIL_BEFORE
    assert trail_floor(releases_itself=False, reason="  ",
                       released_since=raised) == raised - TRAIL_BEFORE  # blank is no reason
    assert trail_floor(releases_itself=False, reason="court order",
                       released_since=raised) is None
    assert trail_floor(releases_itself=True, reason=None, released_since=raised) is None
    assert trail_floor(releases_itself=True, reason=None, released_since=None) is None


def test_the_victim_track_is_the_alerting_button_not_the_phone_left_at_home(stack):
    """A victim with a panic button and an OwnTracks phone: the button raised a panic 65 m
    from the offender while the phone, at home 5.7 km away, reported later. The map shows the
    button, and the distance is the button's to the offender."""
    case_id = _case_with(stack, [("btn-1", "victim", True), ("phone-1", "victim", True),
                                 ("off-1", "offender", True)],
                         [("btn-1", 30, 51.880, 4.490), ("phone-1", 20, 51.930, 4.470),
                          ("off-1", 25, 51.8805, 4.4905)])
    alert_id = _alert(stack, case_id, "btn-1", "panic", 51.880, 4.490)
    doc = stack.api().get(f"/api/v1/alerts/{alert_id}/positions").json()
    assert doc["victim"]["device_id"] == "btn-1"
    assert (doc["victim"]["last"]["lat"], doc["victim"]["last"]["lon"]) == (51.880, 4.490)
    assert doc["offender"]["device_id"] == "off-1"
    assert doc["distance_m"] == pytest.approx(65, abs=5)
    assert _trail_reads(stack) == ["btn-1", "off-1"]  # the phone's positions did not leave


def test_an_offender_alert_shows_the_freshest_active_victim_device_and_no_inactive_one(stack):
    """A zone breach raised by the offender's monitor: the victim track is the active victim
    device with the newest fix (not a switched-off one, though its fix is newer), and the
    alert's own fix is the offender's, never the victim's."""
    case_id = _case_with(stack, [("btn-1", "victim", True), ("phone-1", "victim", True),
                                 ("old-phone", "victim", False), ("off-1", "offender", True),
                                 ("off-old", "offender", False)],
                         [("btn-1", 200, 51.880, 4.490), ("phone-1", 40, 51.930, 4.470),
                          ("old-phone", 5, 52.000, 4.400), ("off-old", 5, 52.100, 4.300)])
    alert_id = _alert(stack, case_id, "off-1", "zone_breach", 51.9300, 4.4720)
    doc = stack.api().get(f"/api/v1/alerts/{alert_id}/positions").json()
    assert doc["victim"]["device_id"] == "phone-1"
    assert doc["victim"]["last"]["lat"] == 51.930
    assert doc["offender"]["device_id"] == "off-1"
    assert (doc["offender"]["last"]["lat"], doc["offender"]["last"]["lon"]) == (51.93, 4.472)
    assert doc["distance_m"] == pytest.approx(137, abs=5)
    assert _trail_reads(stack) == ["off-1", "phone-1"]


def test_a_victim_without_a_fix_does_not_take_the_offenders_alert_position(stack):
    """Before, a victim track without a fix took the alert's position whichever device raised
    it: an offender's tamper put the victim on the offender (distance 0)."""
    case_id = _case_with(stack, [("btn-1", "victim", True), ("off-1", "offender", True)], [])
    alert_id = _alert(stack, case_id, "off-1", "tamper", 51.93, 4.47)
    doc = stack.api().get(f"/api/v1/alerts/{alert_id}/positions").json()
    assert doc["victim"]["device_id"] == "btn-1" and doc["victim"]["last"] is None
    assert doc["offender"]["last"]["lat"] == 51.93
    assert doc["distance_m"] is None


def _device(device_id: str, role: str, active: bool = True):
    return SimpleNamespace(id=device_id, role=role, active=active)


def test_shown_devices_prefer_the_alerting_device_else_the_active_ones():
    devices = [_device("btn", "victim", active=False), _device("phone", "victim"),
               _device("off", "offender"), _device("off-2", "offender", active=False)]
    assert [d.id for d in shown_devices(devices, "btn", "victim")] == ["btn"]
    assert [d.id for d in shown_devices(devices, "btn", "offender")] == ["off"]
    assert [d.id for d in shown_devices(devices, None, "victim")] == ["phone"]
    assert shown_devices([_device("btn", "victim", active=False)], None, "victim") == []


def test_newest_takes_the_newest_fix_then_the_lowest_id():
    def track(device_id: str, seconds: int | None):
        return {"device_id": device_id,
                "_newest": None if seconds is None else NOW - timedelta(seconds=seconds)}

    assert newest([]) is None
    assert newest([track("a", 30), track("b", 10), track("c", None)])["device_id"] == "b"
    assert newest([track("b", 10), track("a", 10)])["device_id"] == "a"
    assert newest([track("b", None), track("a", None)])["device_id"] == "a"
