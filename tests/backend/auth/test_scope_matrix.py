"""Every endpoint that returns case or location data, for every role, in and out of scope."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from tests.backend.auth.world import World, build

# (role, scope, sees the Rotterdam case/alert)
PRINCIPALS = {
    "admin": None,
    "dispatcher-in": ("dispatcher", {"regions": ["VR17"]}),
    "dispatcher-out": ("dispatcher", {"regions": ["VR22"]}),
    "dispatcher-unscoped": ("dispatcher", {}),
    "police-in": ("police", {"units": ["RE07"]}),
    "police-out": ("police", {"units": ["RE01"]}),
    "director-in": ("case_director", {"cases": ["C-RDAM"]}),
    "director-out": ("case_director", {"cases": ["C-OTHER"]}),
    # A partner organisation's contact person reads the case log (`test_scope_matrix_more`),
    # nothing else.
    "partner-in": ("partner", {"cases": ["C-RDAM"]}),
    "partner-out": ("partner", {"cases": ["C-OTHER"]}),
}
SEES_ALERT = {"admin", "dispatcher-in", "police-in", "director-in"}
READS_ALERTS = set(PRINCIPALS) - {"partner-in", "partner-out"}  # by role
READS_CASES = {"admin", "dispatcher-in", "dispatcher-out", "dispatcher-unscoped", "director-in",
               "director-out"}  # police has no case endpoints
SEES_CASE = {"admin", "dispatcher-in", "director-in"}


@pytest.fixture
def world(stack) -> World:
    return build(stack)


def _client(stack, who: str) -> TestClient:
    if who == "admin":
        return stack.api()
    role, scope = PRINCIPALS[who]
    token = stack.token(role, scope)
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
def test_matrix(stack, world: World, who: str):
    api = _client(stack, who)
    alert, case = str(world.rotterdam_alert), str(world.rotterdam_case)
    sees_alert, sees_case = who in SEES_ALERT, who in SEES_CASE

    if who not in READS_ALERTS:
        for url in ("/api/v1/alerts", f"/api/v1/alerts/{alert}",
                    f"/api/v1/alerts/{alert}/positions"):
            assert api.get(url).status_code == 403, url
    else:
        listed = {d["alert_id"] for d in api.get("/api/v1/alerts").json()}
        assert (alert in listed) is sees_alert
        if who != "admin":
            assert str(world.amsterdam_alert) not in listed  # nobody here is scoped to Amsterdam
        assert api.get(f"/api/v1/alerts/{alert}").status_code == (200 if sees_alert else 404)
        r0 = api.get(f"/api/v1/alerts/{alert}/positions")
        assert r0.status_code == (200 if sees_alert else 404), r0.text

    r = api.get("/api/v1/cases")
    if who not in READS_CASES:
        assert r.status_code == 403
        assert api.get(f"/api/v1/cases/{case}").status_code == 403
        assert api.get("/api/v1/devices").status_code == 403
        assert api.get("/api/v1/devices/vic-rdam").status_code == 403
    else:
        assert (case in {c["id"] for c in r.json()}) is sees_case
        assert api.get(f"/api/v1/cases/{case}").status_code == (200 if sees_case else 404)
        devices = {d["id"] for d in api.get("/api/v1/devices").json()}
        assert ("vic-rdam" in devices) is sees_case
        assert api.get("/api/v1/devices/vic-rdam").status_code == (200 if sees_case else 404)

    ack = api.post(f"/api/v1/alerts/{alert}/acknowledge")
    if who in ("admin", "dispatcher-in"):
        assert ack.status_code == 200
    elif who.startswith("dispatcher"):
        assert ack.status_code == 404
    else:
        assert ack.status_code == 403
    assert api.get("/api/v1/audit").status_code == (200 if who == "admin" else 403)


def test_dispatcher_sees_alerts_in_her_region_of_cases_homed_elsewhere(stack, world: World):
    """The fix decides as well as the case's home region: an Amsterdam case alerting in VR13 is
    seen by VR13, and the Rotterdam case is seen by VR17 wherever it alerts."""
    api = _client(stack, "dispatcher-in")
    token = stack.token("dispatcher", {"regions": ["VR13"]})
    amsterdam = TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})
    assert {d["alert_id"] for d in amsterdam.get("/api/v1/alerts").json()} == {
        str(world.amsterdam_alert)}
    assert {d["alert_id"] for d in api.get("/api/v1/alerts").json()} == {
        str(world.rotterdam_alert)}


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_stream_only_carries_alerts_in_scope(stack, world: World):
    from backend.alerts.models import Alert
    from backend.alerts.views import documents

    token_in = stack.token("police", {"units": ["RE07"]})
    token_out = stack.token("police", {"units": ["RE05"]})
    app = create_app(stack.runtime)
    with TestClient(app) as client:
        with client.websocket_connect("/api/v1/stream", subprotocols=["bearer", token_in]) as ws_in, \
             client.websocket_connect("/api/v1/stream", subprotocols=["bearer", token_out]) as ws_out:
            with stack.runtime.sessions() as s:
                rdam = documents(s, [s.get(Alert, world.rotterdam_alert)])[0]
                adam = documents(s, [s.get(Alert, world.amsterdam_alert)])[0]
            import time
            time.sleep(0.3)
            stack.runtime.bus.publish({"event": "alert.raised", "alert": rdam})
            stack.runtime.bus.publish({"event": "alert.raised", "alert": adam})
            assert ws_in.receive_json()["alert"]["alert_id"] == str(world.rotterdam_alert)
            assert ws_out.receive_json()["alert"]["alert_id"] == str(world.amsterdam_alert)
