"""The scope decisions in SQL (`alert_filter`) and in Python (`may_see_alert`) agree, and the
stream screens alike: storm summaries, raised for a Veilig Thuis desk, reach the dispatchers of
that desk's regions and not the police of the fallback unit."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.alerts.flows import case_scope, event_scope
from backend.alerts.models import Alert
from backend.api.app import create_app
from backend.audit.guard import screen_event, screen_event_alone
from backend.auth.scoping import alert_filter, desk_regions, may_see_alert
from backend.auth.tokens import Principal
from backend.cases.models import Case
from backend.supervision.grouping import StormSummary
from backend.supervision.loop import SupervisionLoop
from tests.backend.auth.world import build

WHO = {
    "admin": Principal("admin", "admin"),
    "desk-VR17": Principal("d17", "dispatcher", {"regions": ["VR17"]}),
    "desk-VR18": Principal("d18", "dispatcher", {"regions": ["VR18"]}),
    "desk-VR13": Principal("d13", "dispatcher", {"regions": ["VR13"]}),
    "police-RE07": Principal("p07", "police", {"units": ["RE07"]}),  # the fallback unit
    "director": Principal("c", "case_director", {"cases": ["C-RDAM"]}),
}
# Storm summaries by desk: VT4607 serves Rotterdam-Rijnmond (VR17) in the packaged table;
# VT_RR is no packaged desk, but a case at home in VR18 names it as its home desk; VTxRR is
# neither (and must not match VT_RR's underscore as a wildcard); None names no desk. The last
# two are placed in no region: every dispatcher's, rather than nobody's.
STORMS = ("VT4607", "VT_RR", "VTxRR", None)
SEES_STORMS = {
    "admin": {"VT4607", "VT_RR", "VTxRR", None},
    "desk-VR17": {"VT4607", "VTxRR", None},
    "desk-VR18": {"VT_RR", "VTxRR", None},
    "desk-VR13": {"VTxRR", None},
    "police-RE07": set(),
    "director": set(),
}


def _raise_storm(stack, desk: str | None) -> tuple[uuid.UUID, dict[str, Any]]:
    """A storm summary as the supervision loop raises it: its alert and its console event."""
    now = datetime.now(UTC)
    draft = SupervisionLoop._storm_draft(StormSummary(
        desk_code=desk, device_count=12, total_device_count=12, window_start=now), now)
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(s, [draft])
    [alert] = effects.alerts
    [event] = [e for e in effects.events if e["event"] == "alert.raised"]
    return alert.id, event


@pytest.fixture
def storms(stack) -> dict[uuid.UUID, str | None]:
    build(stack)  # the usual alerts in VR17 and VR13 besides
    with stack.runtime.sessions.begin() as s:
        s.add(Case(reference="C-DORD", home_police_unit="RE07", home_vr_code="VR18",
                   home_vt_desk="VT_RR"))
    return {_raise_storm(stack, desk)[0]: desk for desk in STORMS}


@pytest.mark.parametrize("who", sorted(WHO))
def test_storm_summaries_reach_the_desks_of_their_regions_alike_in_sql_and_python(
        stack, storms, who):
    principal = WHO[who]
    with stack.runtime.sessions() as s:
        alerts = list(s.scalars(select(Alert)))
        by_python = {a.id for a in alerts if may_see_alert(s, principal, a)}
        by_sql = set(s.scalars(select(Alert.id).where(alert_filter(principal))))
        assert by_sql == by_python
        assert {storms[i] for i in by_sql if i in storms} == SEES_STORMS[who]
        assert len(by_sql - set(storms)) == {"admin": 3, "desk-VR17": 1, "desk-VR13": 2,
                                             "police-RE07": 1, "director": 1}.get(who, 0)


def test_the_regions_of_a_desk_are_those_it_serves_and_its_cases_homes(stack, storms):
    with stack.runtime.sessions() as s:
        assert desk_regions(s, "VT4607") == {"VR17"}
        assert desk_regions(s, "VT_RR") == {"VR18"}
        assert desk_regions(s, "VTxRR") == frozenset()


def test_the_stream_screens_a_storm_summary_as_the_api_does(stack, storms):
    """From the event alone the police of the fallback unit are refused it; a dispatcher's
    screen asks the database, which admits the desk of its regions."""
    desk = next(i for i, d in storms.items() if d == "VT4607")
    _, event = _raise_storm(stack, "VT4607")
    assert screen_event_alone(WHO["police-RE07"], event) == (None, [])
    assert screen_event_alone(WHO["desk-VR17"], event) is None
    with stack.runtime.sessions() as s:
        for who, principal in WHO.items():
            screened = screen_event(s, principal, event)
            assert (screened is not None) is ("VT4607" in SEES_STORMS[who]), who
            if screened is not None:
                assert "scope" not in screened
        storm = s.get(Alert, desk)
        assert storm is not None and storm.police_unit == "RE07"  # the fallback, not a route


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_the_stream_carries_a_storm_summary_to_its_desk_not_to_the_fallback_police(stack):
    build(stack)
    desk17 = stack.token("dispatcher", {"regions": ["VR17"]})
    police = stack.token("police", {"units": ["RE07"]})
    with TestClient(create_app(stack.runtime)) as client, \
            client.websocket_connect("/api/v1/stream", subprotocols=["bearer", desk17]) as ws, \
            client.websocket_connect("/api/v1/stream",
                                     subprotocols=["bearer", police]) as ws_police:
        time.sleep(0.3)
        storm_id, event = _raise_storm(stack, "VT4607")
        stack.runtime.bus.publish(event)
        frame = ws.receive_json()
        assert frame["alert"]["alert_id"] == str(storm_id) and "scope" not in frame
        # The police console's next frame is the next event in its scope, not the storm.
        marker = {"event": "alert.updated", "alert": {"alert_id": "marker", "state": "new",
                                                      "location": None, "region": None},
                  "scope": {"police_unit": "RE07", "told_police": True, "case_id": None,
                            "case_reference": None, "case_home_vr": None,
                            "case_director": None}}
        stack.runtime.bus.publish(marker)
        assert ws_police.receive_json()["alert"]["alert_id"] == "marker"


def test_an_alert_placed_in_no_region_reaches_every_dispatcher_alike_in_sql_and_python(stack):
    """A panic without a fix of a case registered without its home region has no region to
    be routed to a desk by: every dispatcher sees it, rather than none (admins only, as
    before). An alert of such a case placed by its position keeps to its region, and the
    case's own events do not go to every desk."""
    world = build(stack)
    now = datetime.now(UTC)
    with stack.runtime.sessions.begin() as s:
        homeless = Case(reference="C-NOWHERE")
        s.add(homeless)
        s.flush()
        ids = {}
        for key, region in (("nowhere", None), ("placed", {"vr_code": "VR17"})):
            alert = Alert(case_id=homeless.id, message_id=f"m-{key}", type="panic",
                          priority="P1", state="new", raised_at=now, police_unit="RE07",
                          told_police=True, region=region, flags=["police_fallback"])
            s.add(alert)
            s.flush()
            ids[key] = alert.id
        event = {"event": "case.pursuit", "scope": case_scope(homeless)}
    dispatchers = [p for who, p in WHO.items() if who.startswith("desk-")]
    with stack.runtime.sessions() as s:
        for principal in WHO.values():
            alerts = list(s.scalars(select(Alert)))
            by_python = {a.id for a in alerts if may_see_alert(s, principal, a)}
            by_sql = set(s.scalars(select(Alert.id).where(alert_filter(principal))))
            assert by_sql == by_python, principal.name
            assert (ids["nowhere"] in by_sql) is (principal.role in ("admin", "dispatcher")
                                                  or principal.name == "p07")
            assert (ids["placed"] in by_sql) is (principal.name in ("admin", "d17", "p07"))
            assert world.amsterdam_alert not in by_sql or principal.name in ("admin", "d13")
        for principal in dispatchers:  # the case is not every desk's: VR17's, by its alert
            assert (screen_event(s, principal, event) is None) is (principal.name != "d17")
    # From the event alone, as the stream screens it: every dispatcher has the alert.
    with stack.runtime.sessions() as s:
        alert = s.get(Alert, ids["nowhere"])
        raised = {"event": "alert.raised",
                  "alert": {"alert_id": str(alert.id), "type": "panic", "state": "new",
                            "location": None, "region": None},
                  "scope": event_scope(alert, "C-NOWHERE", None, None, None)}
    for principal in dispatchers:
        screened = screen_event_alone(principal, raised)
        assert screened is not None and screened[0] is not None, principal.name


def test_the_police_of_the_place_read_alike_in_sql_and_python_what_they_were_told_of(stack):
    """Alerts placed in RE07's area of a case at home in RE05: the desk's alone (an approach,
    a test press, a low battery, an approach whose escalation has not called the police yet)
    are not RE07's; a panic and an approach whose escalation called the police are. RE05, the
    home unit, has them all. SQL and Python agree for every principal."""
    from datetime import timedelta

    from backend.devices.models import Device
    from backend.escalation.loop import EscalationLoop
    from backend.pipeline.context import AlertDraft
    from tests.backend.escalation.support import RecordingBus

    build(stack)
    ids: dict[str, uuid.UUID] = {}
    for name, released in (("at-home", False), ("released", True)):
        case_id = stack.register(f"off-{name}", role="offender", home_unit="RE05")
        with stack.runtime.sessions.begin() as s:
            case = s.get(Case, case_id)
            if released:  # its approach is a P1 for the desk, whose escalation calls the police
                case.custody_status = "released"
                case.released_at = datetime.now(UTC) - timedelta(days=1)
            s.add(Device(id=f"vic-{name}", case_id=case_id, role="victim"))
        kinds = (("approach", "off"), ("test", "vic"), ("battery_low", "vic"), ("panic", "vic"))
        for kind, role in kinds if not released else (("approach", "off"),):
            now = time.time()
            with stack.runtime.sessions.begin() as s:
                [alert] = stack.runtime.flow.raise_alerts(s, [AlertDraft(
                    type=kind, device_id=f"{role}-{name}", case_id=case_id,
                    message_id=f"{kind}-1", raised_at=now, lat=51.9244, lon=4.4690, acc=10.0,
                    fix_time=now, location_source="fix")]).alerts
            ids[f"{kind}-{name}"] = alert.id
    escalated = ids["approach-released"]
    with stack.runtime.sessions() as s:
        raised_at = s.get(Alert, escalated).raised_at
    loop = EscalationLoop(stack.runtime, clock=lambda: raised_at, bus=RecordingBus())
    home = Principal("p05", "police", {"units": ["RE05"]})

    def agree() -> dict[str, set[str]]:
        seen = {}
        with stack.runtime.sessions() as s:
            alerts = list(s.scalars(select(Alert)))
            for who, principal in {**WHO, "police-RE05": home}.items():
                by_python = {a.id for a in alerts if may_see_alert(s, principal, a)}
                by_sql = set(s.scalars(select(Alert.id).where(alert_filter(principal))))
                assert by_sql == by_python, who
                seen[who] = {name for name, i in ids.items() if i in by_sql}
        return seen

    seen = agree()
    assert seen["police-RE07"] == {"panic-at-home"}
    assert seen["police-RE05"] == set(ids)  # the home unit's cases
    assert seen["desk-VR17"] == set(ids) and seen["admin"] == set(ids)
    loop.run_once(raised_at + timedelta(seconds=45))  # the desk's steps (the panic's too)
    assert agree()["police-RE07"] == {"panic-at-home"}
    loop.run_once(raised_at + timedelta(seconds=60))  # the police unit directly
    seen = agree()
    assert seen["police-RE07"] == {"panic-at-home", "approach-released"}
    assert seen["police-RE05"] == set(ids)
