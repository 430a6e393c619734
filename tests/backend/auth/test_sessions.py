"""Console sign-in: cookie flags, CSRF on state changes, sign-out ends the session."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.auth.users import add_user
from tests.backend.auth.world import build

PASSWORD = "correct horse battery"


def _sign_in(stack, username="desk") -> tuple[TestClient, str]:
    stack.runtime.settings.console.secure_cookies = False
    client = TestClient(create_app(stack.runtime), base_url="http://127.0.0.1")
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/console/login", data={"username": username, "password": PASSWORD,
                                             "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303, r.text
    cookie = r.headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=strict" in cookie.replace("Strict", "strict")
    queue = client.get("/console/")
    session_csrf = re.search(r'name="csrf-token" content="([^"]+)"', queue.text).group(1)
    return client, session_csrf


def test_session_cookie_and_csrf(stack):
    world = build(stack)
    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    client, csrf = _sign_in(stack)
    assert [d["alert_id"] for d in client.get("/api/v1/alerts").json()] == [
        str(world.rotterdam_alert)]
    path = f"/api/v1/alerts/{world.rotterdam_alert}/acknowledge"
    assert client.post(path).status_code == 403  # no CSRF token
    assert client.post(path, headers={"X-CSRF-Token": "forged"}).status_code == 403
    r = client.post(path, headers={"X-CSRF-Token": csrf})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert client.get("/api/v1/alerts").status_code == 401


def test_wrong_password_and_secure_flag(stack):
    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    client = TestClient(create_app(stack.runtime), base_url="https://127.0.0.1")
    page = client.get("/console/login")
    assert "Secure" in page.headers["set-cookie"]  # secure_cookies defaults on
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    r = client.post("/console/login", data={"username": "desk", "password": "nope-nope-nope",
                                             "csrf": csrf}, follow_redirects=False)
    assert r.status_code == 401 and "sw_session" not in r.headers.get("set-cookie", "")
    assert client.get("/console/", follow_redirects=False).status_code == 303
