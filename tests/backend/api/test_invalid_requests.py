"""A request the API refuses gets a 422 that says where and why, never a 500 and never the
refused value echoed: NaN (which JSON cannot carry back), a lone surrogate (which UTF-8 cannot
encode), and a NUL in free text (which PostgreSQL does not store), in bodies, queries, paths and
the sign-in form. Nothing is written."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.cases.models import Case
from tests.backend.auth.world import build
from tests.backend.conftest import ADMIN_TOKEN

NUL = "text may not contain the NUL character"


@pytest.fixture
def api(stack) -> TestClient:
    return TestClient(create_app(stack.runtime), raise_server_exceptions=False,
                      headers={"Authorization": f"Bearer {ADMIN_TOKEN}",
                               "Content-Type": "application/json"})


def _refused(response, loc: list, msg: str | None = None) -> None:
    assert response.status_code == 422, response.text
    [problem] = response.json()["detail"]
    assert problem["loc"] == loc and set(problem) == {"type", "loc", "msg"}  # no input echoed
    if msg is not None:
        assert msg in problem["msg"]


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_values_json_or_utf8_cannot_carry_are_refused_without_echo(stack, api):
    world = build(stack)
    case, alert = world.rotterdam_case, world.rotterdam_alert
    _refused(api.put(f"/api/v1/cases/{case}/offender-home", content='{"lat": NaN, "lon": 4.5}'),
             ["body", "lat"])
    surrogate = '"a\\ud800b"'
    for method, path, body, field in (
        ("post", f"/api/v1/alerts/{alert}/acknowledge", '{"note": %s}', "note"),
        ("patch", f"/api/v1/cases/{case}", '{"safety_plan": %s}', "safety_plan"),
        ("post", f"/api/v1/cases/{case}/contacts",
         '{"organisation": "om", "name": %s, "phone": "0612345678"}', "name"),
        ("post", f"/api/v1/cases/{case}/log/notes", '{"text": %s}', "text"),
    ):
        _refused(api.request(method, path, content=body % surrogate), ["body", field])
    refused_key = api.post("/api/v1/tokens", content='{"name": "a", "role": "police", '
                                                     '"\\udc80x": 1}')
    assert refused_key.status_code == 422 and "\\udc80" not in refused_key.text
    with stack.runtime.sessions() as s:
        assert s.get(Case, case).safety_plan is None and s.get(Case, case).contacts == []
    assert api.get(f"/api/v1/alerts/{alert}").json()["state"] == "new"


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_nul_in_free_text_is_refused(stack, api):
    world = build(stack)
    case, closed = world.rotterdam_case, world.closed_alert
    nul = '"a\\u0000b"'
    for method, path, body, field in (
        ("patch", f"/api/v1/cases/{case}", '{"safety_plan": %s}', "safety_plan"),
        ("post", f"/api/v1/cases/{case}/contacts",
         '{"organisation": "om", "name": %s, "phone": "0612345678"}', "name"),
        ("post", f"/api/v1/cases/{case}/log/notes", '{"text": %s}', "text"),
        ("post", f"/api/v1/alerts/{world.rotterdam_alert}/resolve", '{"note": %s}', "note"),
        ("post", "/api/v1/tokens", '{"name": %s, "role": "police"}', "name"),
        ("post", f"/api/v1/alerts/{world.rotterdam_alert}/police-ack",
         '{"action": "acknowledge", "unit": "RE07", "note": %s}', "note"),
        ("post", "/api/v1/subscriptions", '{"name": %s, "url": "https://politie.example/h"}',
         "name"),
    ):
        _refused(api.request(method, path, content=body % nul), ["body", field], NUL)
    for path, loc in ((f"/api/v1/alerts/{closed}?reason=a%00b", ["query", "reason"]),
                      (f"/api/v1/alerts/{closed}/positions?reason=a%00b", ["query", "reason"]),
                      (f"/api/v1/cases/{case}/measures/a%00b", ["path", "measure_id"])):
        _refused(api.get(path), loc, NUL)
    # A device id in the path is one the protocol allows.
    _refused(api.get("/api/v1/devices/vic%00x"), ["path", "device_id"])
    _refused(api.patch("/api/v1/devices/vic%00x", content='{"active": false}'),
             ["path", "device_id"])
    with stack.runtime.sessions() as s:
        assert s.get(Case, case).safety_plan is None and s.get(Case, case).contacts == []


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_nul_in_the_sign_in_name_is_refused(stack):
    stack.runtime.settings.console.secure_cookies = False
    web = TestClient(create_app(stack.runtime), base_url="http://127.0.0.1",
                     raise_server_exceptions=False)
    csrf = re.search(r'name="csrf" value="([^"]+)"', web.get("/console/login").text).group(1)
    r = web.post("/console/login", data={"username": "desk\x00", "password": "x" * 12,
                                         "csrf": csrf})
    _refused(r, ["body", "username"], NUL)


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_free_text_keeps_its_length_bound(stack, api):
    """Where the field may be null, too: a text too long is refused as one."""
    case = build(stack).rotterdam_case
    _refused(api.patch(f"/api/v1/cases/{case}", json={"safety_plan": "x" * 10_001}),
             ["body", "safety_plan"], "at most 10000 characters")
    _refused(api.get(f"/api/v1/cases/{case}/measures", params={"reason": "x" * 501}),
             ["query", "reason"], "at most 500 characters")
    assert api.patch(f"/api/v1/cases/{case}",
                     json={"safety_plan": "Route via de politiepost"}).status_code == 200
