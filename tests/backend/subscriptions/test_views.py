"""The subscription API: admin only, clear 422s, the secret shown once."""

from __future__ import annotations

import base64
import uuid

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.police import signing
from backend.police.sealing import PREFIX
from backend.subscriptions.models import Subscription

pytestmark = pytest.mark.services

VALID = {"name": "Meldkamer Rotterdam", "url": "https://politie.example/hooks"}


INVALID = [
    {"url": "not a url"},
    {"url": "ftp://politie.example/hooks"},
    {"format": "xml"},
    {"secret": "plain-secret"},
    {"secret": "whsec_c2hvcnQ="},  # too short
    {"priorities": ["P9"]},
    {"alert_types": ["burglary"]},
    {"police_units": ["Rotterdam"]},
    {"vr_codes": ["17"]},
    {"colour": "blue"},
    {"name": ""},
]


def test_invalid_subscriptions_get_422_and_change_nothing(stack):
    api = stack.api()
    for change in INVALID:
        r = api.post("/api/v1/subscriptions", json={**VALID, **change})
        assert r.status_code == 422, (change, r.text)
        assert r.json()["detail"][0]["loc"][0] == "body"
    assert api.get("/api/v1/subscriptions").json() == []


def test_a_webhook_in_plain_http_to_another_host_is_refused(stack):
    """Alerts carry victims' positions: https, or plain http to loopback only (or to a host
    the operator names, `police.plain_http_hosts`). A refused URL changes nothing."""
    api = stack.api()
    r = api.post("/api/v1/subscriptions", json={**VALID, "url": "http://politie.example/hooks"})
    assert r.status_code == 422 and "https" in r.json()["detail"], r.text
    assert api.get("/api/v1/subscriptions").json() == []
    local = api.post("/api/v1/subscriptions", json={**VALID, "url": "http://127.0.0.1:9/h"})
    assert local.status_code == 201, local.text
    sub = local.json()["id"]
    r = api.patch(f"/api/v1/subscriptions/{sub}", json={"url": "http://10.0.0.8/hooks"})
    assert r.status_code == 422
    assert api.get(f"/api/v1/subscriptions/{sub}").json()["url"] == "http://127.0.0.1:9/h"
    stack.runtime.settings.police.plain_http_hosts = ["10.0.0.8"]
    r = api.patch(f"/api/v1/subscriptions/{sub}", json={"url": "http://10.0.0.8/hooks"})
    assert r.status_code == 200 and r.json()["url"] == "http://10.0.0.8/hooks"


def test_create_list_update_deactivate(stack):
    api = stack.api()
    supplied = signing.new_secret()
    r = api.post("/api/v1/subscriptions", json={
        **VALID, "secret": supplied, "format": "cap", "police_units": ["RE07", "RE07"],
        "priorities": ["P2", "P1"], "drill": True})
    assert r.status_code == 201
    created = r.json()
    assert created["secret"] == supplied
    assert created["police_units"] == ["RE07"] and created["priorities"] == ["P1", "P2"]
    generated = api.post("/api/v1/subscriptions", json=VALID).json()
    assert generated["secret"].startswith("whsec_") and signing.secret_key(generated["secret"])

    listed = api.get("/api/v1/subscriptions").json()
    assert len(listed) == 2 and all("secret" not in s for s in listed)
    r = api.patch(f"/api/v1/subscriptions/{created['id']}", json={"alert_types": ["panic"]})
    assert r.status_code == 200 and r.json()["alert_types"] == ["panic"]
    assert r.json()["format"] == "cap"
    r = api.delete(f"/api/v1/subscriptions/{created['id']}")
    assert r.status_code == 200 and r.json()["active"] is False
    assert api.get("/api/v1/subscriptions/00000000-0000-0000-0000-000000000000").status_code == 404


def _stored_secret(stack, subscription_id: str) -> str:
    with stack.runtime.sessions() as s:
        sub = s.get(Subscription, uuid.UUID(subscription_id))
        assert sub is not None
        return sub.secret


def test_the_secret_is_stored_sealed_where_keys_are_set(stack):
    api = stack.api()
    created = api.post("/api/v1/subscriptions", json=VALID).json()
    stored = _stored_secret(stack, created["id"])
    sealed = stack.backend == "services"  # the services stack has keys, the embedded one none
    assert stored.startswith(PREFIX) is sealed
    assert (created["secret"] not in stored) is sealed
    assert stack.runtime.secrets.open(stored) == created["secret"]

    replaced = signing.new_secret()
    r = api.patch(f"/api/v1/subscriptions/{created['id']}", json={"secret": replaced})
    assert r.status_code == 200 and "secret" not in r.json()
    stored = _stored_secret(stack, created["id"])
    assert (replaced not in stored) is sealed
    assert stack.runtime.secrets.open(stored) == replaced


def test_a_secret_longer_than_standard_webhooks_allows_gets_422(stack):
    r = stack.api().post("/api/v1/subscriptions", json={**VALID, "secret": signing.new_secret(64)})
    assert r.status_code == 201
    long = "whsec_" + base64.b64encode(b"k" * 65).decode()
    r = stack.api().post("/api/v1/subscriptions", json={**VALID, "secret": long})
    assert r.status_code == 422 and "16 to 64 bytes" in r.text


def test_only_admins_manage_subscriptions(stack):
    dispatcher = TestClient(create_app(stack.runtime),
                            headers={"Authorization": f"Bearer {stack.token('dispatcher')}"})
    assert dispatcher.post("/api/v1/subscriptions", json=VALID).status_code == 403
    assert dispatcher.get("/api/v1/subscriptions").status_code == 403
