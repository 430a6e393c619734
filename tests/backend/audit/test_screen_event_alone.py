"""Screening a console event from what it carries (no database): the same scope rules as the
database path, the positions to audit, and a hand-over to the database where the event alone
cannot decide."""

from __future__ import annotations

import uuid

import pytest

from backend.audit.guard import screen_event_alone
from backend.auth.tokens import Principal
from backend.hub.bus import STREAM_DELAYED, STREAM_RESYNC

CASE = uuid.uuid4()


def _event(*, state: str = "new", location: bool = True, vr: str = "VR17",
           unit: str = "RE07", told: bool = True, home_vr: str = "VR17",
           director: str | None = None) -> dict:
    return {
        "event": "alert.raised",
        "alert": {
            "alert_id": "a-1", "state": state, "priority": "P1",
            "device": {"id": "vic-1", "role": "victim"},
            "region": {"vr_code": vr},
            "location": {"lat": 51.9, "lon": 4.5} if location else None,
        },
        "scope": {"police_unit": unit, "told_police": told, "case_id": str(CASE),
                  "case_reference": "R-1", "case_home_vr": home_vr, "case_director": director},
    }


@pytest.mark.parametrize(("who", "event", "sees"), [
    (Principal("admin", "admin"), _event(), True),
    (Principal("d", "dispatcher", {"regions": ["VR17"]}), _event(vr="VR13"), True),  # home
    (Principal("d", "dispatcher", {"regions": ["VR13"]}), _event(vr="VR13"), True),  # fix
    (Principal("d", "dispatcher", {"regions": ["VR13"]}), _event(), False),
    (Principal("p", "police", {"units": ["RE07"]}), _event(), True),
    (Principal("p", "police", {"units": ["RE05"]}), _event(), False),
    # The desk's alone (an approach): not the unit of its place's until the police are told.
    (Principal("p", "police", {"units": ["RE07"]}), _event(told=False), False),
    (Principal("c", "case_director", {"cases": ["R-1"]}), _event(), True),
    (Principal("user:eva", "case_director", {}), _event(director="eva"), True),
    (Principal("user:eva", "case_director", {}), _event(director="ann"), False),
])
def test_scope_is_decided_from_the_event(who: Principal, event: dict, sees: bool) -> None:
    decided = screen_event_alone(who, event)
    assert decided is not None
    screened, reads = decided
    assert (screened is not None) is sees
    if sees:
        assert "scope" not in screened  # internal: never sent
        assert screened["alert"]["location"] is not None
        assert [(r.resource_id, r.case_id, r.device_id) for r in reads] == [("a-1", CASE, "vic-1")]
    else:
        assert reads == []


def test_no_position_means_nothing_to_audit() -> None:
    screened, reads = screen_event_alone(Principal("admin", "admin"), _event(location=False))
    assert screened is not None and reads == []


@pytest.mark.parametrize("event", [
    _event(state="resolved"),  # release depends on the case's other alerts
    {"event": "alert.updated", "alert": {"alert_id": "a-1"}},  # no scope carried
])
def test_the_database_decides_what_the_event_cannot(event: dict) -> None:
    assert screen_event_alone(Principal("admin", "admin"), event) is None


@pytest.mark.parametrize("event", [
    {"event": "geofence.approach_cleared", "geofence": {"case_id": "c-1"}},
    {"event": "case.pursuit", "case_id": "c-1", "mode": "started", "alert_id": "a-1"},  # no scope
    {"event": "geofence.approach_cleared", "scope": {"case_home_vr": "VR17"}},  # not a case's
])
def test_events_about_no_alert_go_to_administrators_only(event: dict) -> None:
    assert screen_event_alone(Principal("admin", "admin"), event) == (event, [])
    for who in (Principal("d", "dispatcher", {"regions": ["VR17"]}),
                Principal("p", "police", {"units": ["RE07"]})):
        assert screen_event_alone(who, event) == (None, [])


def _case_event(director: str | None = None) -> dict:
    return {"event": "case.custody_released", "case_id": str(CASE), "reference": "R-1",
            "until": "2027-01-15T12:00:00+00:00",
            "scope": {"police_unit": "RE07", "told_police": True, "case_id": str(CASE),
                      "case_reference": "R-1", "case_home_vr": "VR17",
                      "case_director": director}}


@pytest.mark.parametrize(("who", "sees"), [
    (Principal("admin", "admin"), True),
    (Principal("d", "dispatcher", {"regions": ["VR17"]}), True),  # the case's home region
    (Principal("d", "dispatcher", {}), False),  # no region at all
    (Principal("p", "police", {"units": ["RE07"]}), True),  # its home unit
    (Principal("p", "police", {"units": ["RE05"]}), False),
    (Principal("c", "case_director", {"cases": ["R-1"]}), True),
    (Principal("c", "case_director", {"cases": ["R-2"]}), False),
])
def test_a_case_event_reaches_who_sees_the_case_at_home(who: Principal, sees: bool) -> None:
    screened, reads = screen_event_alone(who, _case_event())
    assert reads == []  # no position in it
    if sees:
        assert screened == {k: v for k, v in _case_event().items() if k != "scope"}
    else:
        assert screened is None


def test_for_a_dispatcher_of_another_region_the_database_decides_a_case_event() -> None:
    """She sees the case, and its notices, when it had an alert in her regions."""
    assert screen_event_alone(Principal("d", "dispatcher", {"regions": ["VR13"]}),
                              _case_event()) is None


def test_a_case_event_reaches_the_case_director_it_names() -> None:
    eva = Principal("user:eva", "case_director", {})
    assert screen_event_alone(eva, _case_event(director="eva"))[0] is not None
    assert screen_event_alone(eva, _case_event(director="ann"))[0] is None


@pytest.mark.parametrize("event", [STREAM_DELAYED, STREAM_RESYNC])
def test_a_notice_about_the_stream_reaches_everyone(event: dict) -> None:
    for who in (Principal("admin", "admin"), Principal("d", "dispatcher", {}),
                Principal("p", "police", {"units": ["RE07"]}),
                Principal("c", "case_director", {"cases": ["R-2"]})):
        assert screen_event_alone(who, event) == (event, [])
