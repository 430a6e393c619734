"""The foundation API: health and readiness, OpenAPI, bearer tokens, device registration, and the
WebSocket stream that pushes alerts to consoles."""

from __future__ import annotations

import time

import pytest

from device_protocol import Alarm, codec
from tests.support.mqtt import publish


def test_health_ready_and_openapi(stack):
    api = stack.api()
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready")
    assert ready.status_code == 200 and ready.json()["checks"]["database"] is True
    assert ready.json()["checks"]["broker"] is True
    paths = api.get("/openapi.json").json()["paths"]
    assert "/api/v1/devices" in paths and "/api/v1/alerts/{alert_id}/acknowledge" in paths


def test_bearer_tokens_are_required_and_roles_enforced(stack):
    api = stack.api()
    anonymous = api.get("/api/v1/alerts", headers={"Authorization": ""})
    assert anonymous.status_code == 401
    assert api.get("/api/v1/alerts", headers={"Authorization": "Bearer nope"}).status_code == 401
    created = api.post("/api/v1/tokens", json={"name": "mk-1", "role": "police",
                                                "scope": {"units": ["RE07"]}})
    assert created.status_code == 201 and created.json()["token"].startswith("sw_")
    police = {"Authorization": f"Bearer {created.json()['token']}"}
    assert api.post("/api/v1/tokens", json={"name": "x", "role": "admin"},
                    headers=police).status_code == 403
    assert api.post("/api/v1/devices", json={}, headers=police).status_code == 403


def test_register_device_validation_and_conflicts(stack):
    api = stack.api()
    case = api.post("/api/v1/cases", json={"reference": "SW-API-0001", "home_police_unit": "RE07"})
    assert case.status_code == 201
    case_id = case.json()["id"]
    body = {"id": "vic-api-1", "case_id": case_id, "role": "victim",
            "owntracks_user": "anna", "owntracks_device": "phone"}
    assert api.post("/api/v1/devices", json=body).status_code == 201
    assert api.post("/api/v1/devices", json=body).status_code == 409
    other = {**body, "id": "vic-api-2"}  # same OwnTracks pair
    assert api.post("/api/v1/devices", json=other).status_code == 409
    for bad in ({**body, "id": "no"}, {**body, "role": "bystander"},
                {**body, "id": "vic-api-3", "owntracks_device": None},
                {**body, "id": "vic-api-4", "surprise": 1}):
        response = api.post("/api/v1/devices", json=bad)
        assert response.status_code == 422, bad
    unknown_case = {**body, "id": "vic-api-5", "case_id": "00000000-0000-0000-0000-000000000000",
                    "owntracks_user": None, "owntracks_device": None}
    assert api.post("/api/v1/devices", json=unknown_case).status_code == 404
    assert api.get("/api/v1/devices/vic-api-1").json()["role"] == "victim"


def test_no_device_takes_a_broker_service_accounts_name(stack):
    """The broker's ACL gives every user name a device's topics: a device called `police`
    would let the police systems' account publish alarms as that device."""
    api = stack.api()
    case_id = api.post("/api/v1/cases", json={"reference": "SW-API-0002",
                                              "home_police_unit": "RE07"}).json()["id"]
    reserved = sorted(stack.settings.broker.reserved_names())
    assert {"schildwacht", "police"} <= set(reserved)
    for name in reserved:
        for body in ({"id": name, "case_id": case_id, "role": "victim"},
                     {"id": "vic-api-9", "case_id": case_id, "role": "victim",
                      "owntracks_user": name, "owntracks_device": "phone"}):
            response = api.post("/api/v1/devices", json=body)
            assert response.status_code == 422, body
            assert "service account" in response.json()["detail"]
    assert api.get("/api/v1/devices").json() == []  # nothing registered
    ok = {"id": "vic-api-9", "case_id": case_id, "role": "victim",
          "owntracks_user": "police-fan", "owntracks_device": "phone"}
    assert api.post("/api/v1/devices", json=ok).status_code == 201


def test_deactivated_device_is_no_longer_heard(stack):
    stack.register("vic-deact")
    api = stack.api()
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-deact")
    publish(device, stack.topics.alarm("vic-deact"), codec.encode(Alarm(id="one")))
    assert len(police.wait_for(1)) == 1
    assert api.patch("/api/v1/devices/vic-deact", json={"active": False}).status_code == 200
    publish(device, stack.topics.alarm("vic-deact"), codec.encode(Alarm(id="two")))
    time.sleep(1.0)
    assert len(police.messages) == 1
    police.close()
    device.disconnect()


def test_websocket_stream_pushes_raised_alerts(stack):
    stack.register("vic-ws")
    api = stack.api()
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    with api.websocket_connect("/api/v1/stream", subprotocols=["bearer", token]) as ws:
        device = stack.device("vic-ws")
        publish(device, stack.topics.alarm("vic-ws"),
                codec.encode(Alarm(id="ws-1", lat=51.9244, lon=4.469)))
        event = ws.receive_json()
        assert event["event"] == "alert.raised"
        assert event["alert"]["message_id"] == "ws-1"
        device.disconnect()


def test_websocket_refuses_without_a_valid_token(stack):
    from starlette.websockets import WebSocketDisconnect

    api = stack.api()
    with pytest.raises(WebSocketDisconnect):
        with api.websocket_connect("/api/v1/stream", subprotocols=["bearer", "wrong"]) as ws:
            ws.receive_json()
