"""The police unit of an alert's place reads it only once the police were told of it: a police
unit among its recipients at the raise, or an escalation step that called the police. An alert
the routing gave the desk alone (an approach, a test press, a device's health) is not its to
list, read, follow on the stream, report on, or to read the positions and the case log by;
the case's home unit still sees every alert of its cases."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from backend.alerts.models import Alert
from backend.api.app import create_app
from backend.audit.guard import screen_event, screen_event_alone
from backend.auth.tokens import Principal
from backend.cases.models import Case
from backend.devices.models import Device
from backend.escalation.loop import EscalationLoop
from backend.pipeline.context import AlertDraft
from tests.backend.escalation.support import RecordingBus

ROTTERDAM_CS = (51.9244, 4.4690)  # VR17, police unit RE07
PLACE = Principal("token:p07", "police", {"units": ["RE07"]})  # the unit of the alerts' place
HOME = Principal("token:p05", "police", {"units": ["RE05"]})  # the case's home unit


def _case(stack, *, released: bool = False) -> uuid.UUID:
    """A case at home in RE05 (Amsterdam) with an offender's and a victim's device; released
    from custody yesterday when `released` (its alerts go one priority up: an approach P1)."""
    case_id = stack.register("off-told", role="offender", home_unit="RE05")
    with stack.runtime.sessions.begin() as s:
        case = s.get(Case, case_id)
        case.home_vr_code = "VR13"
        if released:
            case.custody_status = "released"
            case.released_at = datetime.now(UTC) - timedelta(days=1)
        s.add(Device(id="vic-told", case_id=case_id, role="victim"))
    return case_id


def _raise(stack, case_id: uuid.UUID, kind: str, device_id: str = "off-told"
           ) -> tuple[Alert, dict[str, Any]]:
    """An alert of `kind` placed at Rotterdam Central (RE07's area), and its raise event."""
    now = time.time()
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(s, [AlertDraft(
            type=kind, device_id=device_id, case_id=case_id, message_id=f"{kind}-1",
            raised_at=now, lat=ROTTERDAM_CS[0], lon=ROTTERDAM_CS[1], acc=10.0, fix_time=now,
            location_source="fix")])
    [alert] = effects.alerts
    [event] = [e for e in effects.events if e["event"] == "alert.raised"]
    return alert, event


def _as(stack, who: Principal) -> TestClient:
    token = stack.token("police", who.scope)
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


def _reads(api: TestClient, alert: Alert, *, case_log: bool = True) -> dict[str, Any]:
    """What a police token gets of the alert: listed, read, its positions and (`case_log`)
    the log of its case, which the police read by an alert routed to their unit."""
    url = f"/api/v1/alerts/{alert.id}"
    got = {
        "listed": str(alert.id) in {d["alert_id"] for d in api.get("/api/v1/alerts").json()},
        "read": api.get(url).status_code,
        "positions": api.get(f"{url}/positions").status_code,
    }
    if case_log:
        got["case_log"] = api.get(f"/api/v1/cases/{alert.case_id}/log").status_code
    return got


def _streamed(stack, who: Principal, event: dict[str, Any]) -> bool:
    """Whether the stream forwards the event to `who`: from the event alone, and from the
    database where the event alone cannot decide."""
    decided = screen_event_alone(who, event)
    if decided is not None:
        return decided[0] is not None
    with stack.runtime.sessions() as s:
        return screen_event(s, who, event) is not None


NOT_READ = {"listed": False, "read": 404, "positions": 404, "case_log": 404}
READ = {"listed": True, "read": 200, "positions": 200, "case_log": 200}
# The home unit sees every alert of its cases (not the case log by an alert routed elsewhere).
HOME_READ = {"listed": True, "read": 200, "positions": 200}


def test_an_approach_the_desk_has_alone_is_not_the_place_units(stack):
    """The scenario of the review: an approach (P2, the desk's alone) in RE07's area of a case
    at home in RE05. RE07 neither lists nor reads it, nor its positions, nor the case log by
    it, nor gets it on the stream, nor may report on it; RE05, the home unit, sees it (and,
    as before, may not report on an alert routed to no unit)."""
    alert, raised = _raise(stack, _case(stack), "approach")
    assert (alert.priority, alert.police_unit, alert.told_police) == ("P2", "RE07", False)
    place, home = _as(stack, PLACE), _as(stack, HOME)
    assert _reads(place, alert) == NOT_READ
    assert not _streamed(stack, PLACE, raised)
    ack = {"action": "acknowledge", "unit": "RE07"}
    assert place.post(f"/api/v1/alerts/{alert.id}/police-ack", json=ack).status_code == 404
    assert _reads(home, alert, case_log=False) == HOME_READ
    assert _streamed(stack, HOME, raised)
    ack = {"action": "acknowledge", "unit": "RE05"}
    assert home.post(f"/api/v1/alerts/{alert.id}/police-ack", json=ack).status_code == 403


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_the_stream_does_not_carry_the_desks_approach_to_the_place_unit(stack):
    """Live, on /api/v1/stream: the place unit's console gets the next event in its scope (a
    panic), not the approach raised before it."""
    case_id = _case(stack)
    token = stack.token("police", PLACE.scope)
    with TestClient(create_app(stack.runtime)) as client, client.websocket_connect(
            "/api/v1/stream?with_location=false", subprotocols=["bearer", token]) as ws:
        time.sleep(0.3)
        approach, raised = _raise(stack, case_id, "approach")
        panic, panic_raised = _raise(stack, case_id, "panic", device_id="vic-told")
        stack.runtime.bus.publish(raised)
        stack.runtime.bus.publish(panic_raised)
        frame = ws.receive_json()
    assert frame["event"] == "alert.raised"
    assert frame["alert"]["alert_id"] == str(panic.id) != str(approach.id)


def test_the_place_unit_reads_an_approach_once_its_escalation_calls_the_police(stack):
    """An approach under custody tightening is a P1 for the desk alone, whose escalation calls
    the police unit directly at 60 s: from that step on the place unit reads it, follows it on
    the stream and may report on it; before it, nothing."""
    alert, raised = _raise(stack, _case(stack, released=True), "approach")
    assert (alert.priority, alert.told_police) == ("P1", False)
    place = _as(stack, PLACE)
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, clock=lambda: alert.raised_at, bus=bus)
    assert loop.run_once(alert.raised_at + timedelta(seconds=45)) == 2  # the desk's steps
    assert _reads(place, alert) == NOT_READ
    assert not any(_streamed(stack, PLACE, e) for e in [raised, *bus.events])

    assert loop.run_once(alert.raised_at + timedelta(seconds=60)) == 1  # the police unit
    [called] = [e for e in bus.named("alert.escalated")
                if e["escalation"]["target"] == "police_unit"]
    assert _reads(place, alert) == READ
    assert _streamed(stack, PLACE, called)
    with stack.runtime.sessions() as s:
        stored = s.get(Alert, alert.id)
        assert stored is not None and stored.told_police and stored.escalation_step == 3
    r = place.post(f"/api/v1/alerts/{alert.id}/police-ack",
                   json={"action": "acknowledge", "unit": "RE07"})
    assert (r.status_code, r.json()["state"]) == (200, "acknowledged")


@pytest.mark.parametrize("kind", ["test", "device_silent", "battery_low", "no_fix"])
def test_test_presses_and_device_health_are_not_the_place_units(stack, kind):
    """A test press (P4) and a device's health (P3) go to the desk alone: the place unit does
    not read them; the case's home unit does."""
    alert, raised = _raise(stack, _case(stack), kind, device_id="vic-told")
    assert (alert.police_unit, alert.told_police) == ("RE07", False)
    assert alert.priority == ("P4" if kind == "test" else "P3")
    place, home = _as(stack, PLACE), _as(stack, HOME)
    assert not _reads(place, alert)["listed"]
    assert place.get(f"/api/v1/alerts/{alert.id}").status_code == 404
    assert not _streamed(stack, PLACE, raised)
    assert _reads(home, alert)["listed"] and _streamed(stack, HOME, raised)


def test_a_panic_is_the_place_units_at_once(stack):
    """A panic names the police unit of its place among its recipients: it reads the alert,
    its positions and the case log from the raise on, and follows it on the stream."""
    alert, raised = _raise(stack, _case(stack), "panic", device_id="vic-told")
    assert (alert.police_unit, alert.told_police) == ("RE07", True)
    assert _reads(_as(stack, PLACE), alert) == READ
    assert _streamed(stack, PLACE, raised)
    assert _reads(_as(stack, HOME), alert, case_log=False) == HOME_READ
