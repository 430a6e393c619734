"""The tokens API: every token is issued with an expiry and refused from it on; an
administrator lists and revokes tokens, whoever holds one revokes it (signs out); a bad id or
a refused request changes nothing."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from fastapi.testclient import TestClient
from sqlalchemy import update

from backend.api.app import create_app
from backend.auth import sessions as web_sessions
from backend.auth.models import ApiToken
from backend.auth.users import add_user

POLICE = {"name": "police-rdam", "role": "police", "scope": {"units": ["RE07"]}}


def _as(stack, token: str) -> TestClient:
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


def _issue(stack, **extra) -> dict:
    r = stack.api().post("/api/v1/tokens", json={**POLICE, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def _works(stack, token: str) -> bool:
    r = _as(stack, token).get("/api/v1/alerts")
    assert r.status_code in (200, 401), r.text
    return r.status_code == 200


def test_a_token_is_issued_with_the_default_lifetime_or_the_one_asked_for(stack):
    stack.runtime.settings.tokens.lifetime_s = 30 * 86_400
    before = datetime.now(UTC)
    default = _issue(stack)
    expires = datetime.fromisoformat(default["expires_at"])
    assert before + timedelta(days=30) <= expires <= datetime.now(UTC) + timedelta(days=30)
    assert default["state"] == "live" and _works(stack, default["token"])
    short = _issue(stack, lifetime_s=3_600)
    assert datetime.fromisoformat(short["expires_at"]) <= datetime.now(UTC) + timedelta(hours=1)


def test_a_lifetime_beyond_the_maximum_is_refused_and_issues_nothing(stack):
    stack.runtime.settings.tokens.max_lifetime_s = 86_400
    r = stack.api().post("/api/v1/tokens", json={**POLICE, "lifetime_s": 86_401})
    assert r.status_code == 422 and "tokens.max_lifetime_s" in r.json()["detail"]
    assert stack.api().post("/api/v1/tokens", json={**POLICE, "lifetime_s": 0}).status_code == 422
    assert stack.api().get("/api/v1/tokens").json() == []


def test_an_expired_token_is_refused(stack):
    issued = _issue(stack)
    with stack.runtime.sessions.begin() as s:
        s.execute(update(ApiToken).where(ApiToken.id == uuid.UUID(issued["id"]))
                  .values(expires_at=datetime.now(UTC) - timedelta(seconds=1)))
    r = _as(stack, issued["token"]).get("/api/v1/alerts")
    assert r.status_code == 401 and r.json()["detail"] == "unknown, expired or revoked token"
    [listed] = stack.api().get("/api/v1/tokens").json()
    assert listed["state"] == "expired" and "token" not in listed


def test_an_administrator_revokes_a_token(stack):
    issued, other = _issue(stack), _issue(stack, name="police-other")
    r = stack.api().delete(f"/api/v1/tokens/{issued['id']}")
    assert r.status_code == 200 and r.json()["state"] == "revoked"
    assert not _works(stack, issued["token"]) and _works(stack, other["token"])
    again = stack.api().delete(f"/api/v1/tokens/{issued['id']}")  # as it is
    assert (again.status_code, again.json()["revoked_at"]) == (200, r.json()["revoked_at"])
    states = {t["name"]: t["state"] for t in stack.api().get("/api/v1/tokens").json()}
    assert states == {"police-rdam": "revoked", "police-other": "live"}


def test_a_bad_token_id_is_a_clear_error_and_changes_nothing(stack):
    issued = _issue(stack)
    api = stack.api()
    unknown = api.delete(f"/api/v1/tokens/{uuid.uuid4()}")
    assert unknown.status_code == 404 and unknown.json()["detail"].startswith("no token ")
    assert api.delete("/api/v1/tokens/not-a-uuid").status_code == 422
    assert [t["state"] for t in api.get("/api/v1/tokens").json()] == ["live"]
    assert _works(stack, issued["token"])


def test_no_one_but_an_administrator_revokes_or_lists_tokens(stack):
    issued, mine = _issue(stack), _issue(stack, name="police-other")
    other = _as(stack, mine["token"])
    assert other.delete(f"/api/v1/tokens/{issued['id']}").status_code == 403
    assert other.delete(f"/api/v1/tokens/{mine['id']}").status_code == 403  # signs out instead
    assert other.get("/api/v1/tokens").status_code == 403
    assert _works(stack, issued["token"]) and _works(stack, mine["token"])


def test_the_holder_of_a_token_revokes_it(stack):
    issued, other = _issue(stack), _issue(stack, name="police-other")
    holder = _as(stack, issued["token"])
    assert holder.delete("/api/v1/tokens/current").status_code == 204
    assert not _works(stack, issued["token"]) and _works(stack, other["token"])
    assert holder.delete("/api/v1/tokens/current").status_code == 401


def test_the_bootstrap_admin_token_is_not_revoked_through_the_api(stack):
    r = stack.api().delete("/api/v1/tokens/current")
    assert r.status_code == 409 and "SCHILDWACHT_API__ADMIN_TOKEN" in r.json()["detail"]
    assert stack.api().get("/api/v1/tokens").status_code == 200


def test_a_console_session_signs_out_through_the_api(stack):
    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", "correct horse battery", "dispatcher", {"regions": ["VR17"]})
    stack.runtime.settings.console.secure_cookies = False
    client = TestClient(create_app(stack.runtime), base_url="http://127.0.0.1")
    page = client.get("/console/login")
    csrf = re.search(r'name="csrf" value="([^"]+)"', page.text).group(1)
    client.post("/console/login", data={"username": "desk", "password": "correct horse battery",
                                        "csrf": csrf}, follow_redirects=False)
    cookie = client.cookies.get(web_sessions.COOKIE)
    queue = client.get("/console/")
    session_csrf = re.search(r'name="csrf-token" content="([^"]+)"', queue.text).group(1)
    assert client.delete("/api/v1/tokens/current").status_code == 403  # no CSRF token
    assert client.get("/api/v1/alerts").status_code == 200
    r = client.delete("/api/v1/tokens/current", headers={"X-CSRF-Token": session_csrf})
    assert r.status_code == 204
    client.cookies.set(web_sessions.COOKIE, cookie)  # kept by a client that ignores the answer
    assert client.get("/api/v1/alerts").status_code == 401
