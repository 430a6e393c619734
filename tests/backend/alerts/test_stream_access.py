"""A stream ends with the access it was opened with: signing out, a session's expiry, a user
disabled or a token revoked stop its frames (no position leaves, none is audited) and close it
with 4401, also while no event is due. The credential itself: checked at most every
`every_s`, and always at a session's expiry."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import orjson
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from backend.api.app import create_app
from backend.audit.models import AuditEntry
from backend.auth import live
from backend.auth import sessions as web_sessions
from backend.auth.live import LiveCredential
from backend.auth.models import ApiToken, User
from backend.auth.tokens import token_digest
from backend.auth.users import add_user
from tests.support.server import serving
from tests.support.waiting import wait_until

RECHECK_S = 0.3
SCOPE = {"police_unit": "RE07", "case_id": None, "case_reference": None,
         "case_home_vr": "VR17", "case_director": None}
EVENT = {"event": "alert.raised", "scope": SCOPE,
         "alert": {"alert_id": "a-1", "state": "new", "priority": "P1",
                   "region": {"vr_code": "VR17"},
                   "device": {"id": "vic-1", "role": "victim"},
                   "location": {"lat": 51.9, "lon": 4.5}}}


def _user_session(stack, lifetime_s: float = 3_600) -> tuple[str, str]:
    """A dispatcher's console session: (cookie, CSRF token)."""
    with stack.runtime.sessions.begin() as s:
        user = add_user(s, "desk", "correct horse battery", "dispatcher", {"regions": ["VR17"]})
        return web_sessions.start(s, user, lifetime_s)


def _audited(stack) -> int:
    with stack.runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(AuditEntry))


def _open(base: str, *, cookie: str | None = None, token: str | None = None):
    url = base.replace("http://", "ws://") + "/api/v1/stream"
    if token:
        return connect(url, subprotocols=["bearer", token], open_timeout=5)
    return connect(url, additional_headers={"Cookie": f"{web_sessions.COOKIE}={cookie}"},
                   open_timeout=5)


def _sign_out(stack, cookie: str, csrf: str) -> None:
    client = TestClient(create_app(stack.runtime), base_url="http://127.0.0.1")
    client.cookies.set(web_sessions.COOKIE, cookie)
    r = client.post("/console/logout", data={"csrf": csrf}, follow_redirects=False)
    assert r.status_code == 303


def _disable(stack) -> None:
    with stack.runtime.sessions.begin() as s:
        s.execute(update(User).values(disabled_at=datetime.now(UTC)))


def _revoke(stack, token: str) -> None:
    with stack.runtime.sessions.begin() as s:
        s.execute(update(ApiToken).where(ApiToken.token_sha256 == token_digest(token))
                  .values(revoked_at=datetime.now(UTC)))


def _closed_code(console) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        while True:  # nothing may arrive before the close
            frame = orjson.loads(console.recv(timeout=5))
            raise AssertionError(f"a frame after access ended: {frame}")
    return closed.value.rcvd.code if closed.value.rcvd else None


@pytest.mark.parametrize("stack", ["services"], indirect=True)
@pytest.mark.parametrize("ending", ["sign_out", "expiry", "disabled", "revoked"])
def test_a_stream_ends_with_its_access(stack, ending):
    stack.runtime.settings.api.stream_recheck_s = RECHECK_S
    # Long enough for the first frame and its audit on a busy machine.
    lifetime_s = 4.0 if ending == "expiry" else 3_600
    cookie, csrf = _user_session(stack, lifetime_s)
    token = stack.token("dispatcher", {"regions": ["VR17"]}) if ending == "revoked" else None
    with serving(create_app(stack.runtime)) as base:
        console = _open(base, cookie=cookie, token=token)
        wait_until(lambda: stack.runtime.bus.subscriber_count() == 1, timeout=5)
        stack.runtime.bus.publish(EVENT)
        assert orjson.loads(console.recv(timeout=5))["alert"]["location"] is not None
        assert wait_until(lambda: _audited(stack) == 1, timeout=5)
        opened = time.monotonic()
        {"sign_out": lambda: _sign_out(stack, cookie, csrf),
         "expiry": lambda: time.sleep(lifetime_s),
         "disabled": lambda: _disable(stack),
         "revoked": lambda: _revoke(stack, token)}[ending]()
        time.sleep(RECHECK_S * 2)  # a check is due (or was made) by now
        stack.runtime.bus.publish(EVENT)
        assert _closed_code(console) == 4401
        # Closed by itself, soon after access ended: no further event was needed.
        assert time.monotonic() - opened < (lifetime_s if ending == "expiry" else 0) + 4
        wait_until(lambda: stack.runtime.bus.subscriber_count() == 0, timeout=5)
    assert _audited(stack) == 1


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_stream_closes_at_expiry_while_no_event_is_due(stack):
    """A long interval between checks does not stretch a session past its expiry."""
    stack.runtime.settings.api.stream_recheck_s = 60
    with serving(create_app(stack.runtime)) as base:
        # Made once the server is up: a slow start must not end it before the stream opens.
        cookie, _ = _user_session(stack, lifetime_s=2.0)
        console = _open(base, cookie=cookie)
        started = time.monotonic()
        assert _closed_code(console) == 4401
        assert time.monotonic() - started < 4


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_credential_is_read_again_after_every_s(stack):
    token = stack.token("police", {"units": ["RE07"]})

    async def run() -> tuple:
        credential = LiveCredential(stack.runtime.sessions, live.bearer(token, None), 0.5)
        first = await credential.principal()
        _revoke(stack, token)
        cached = await credential.principal()  # within every_s: the answer kept
        await asyncio.sleep(0.6)
        return first, cached, await credential.principal(), credential.ended

    first, cached, after, ended = asyncio.run(run())
    assert first is not None and first.role == "police" and cached == first
    assert after is None and ended


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_session_is_read_again_at_its_expiry(stack):
    cookie, _ = _user_session(stack, lifetime_s=0.5)

    async def run() -> tuple:
        credential = LiveCredential(stack.runtime.sessions, live.console_session(cookie), 60)
        first = await credential.principal()
        await asyncio.wait_for(credential.until_ended(), timeout=3)
        return first, await credential.principal()

    first, after = asyncio.run(run())
    assert first is not None and first.name == "user:desk" and after is None


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_stream_refused_at_its_start_closes_with_4401_behind_a_real_server(stack):
    """A revoked token or a session gone while the console was away: the server completes the
    handshake and closes with 4401 (a browser then signs in again); a refusal during the
    handshake is an HTTP 403, which a browser only sees as 1006 and retries for ever."""
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    _revoke(stack, token)
    with serving(create_app(stack.runtime), ws="websockets-sansio") as base:  # as `api` runs
        console = _open(base, token=token)
        assert _closed_code(console) == 4401
        console = _open(base, cookie="no-such-session")
        assert _closed_code(console) == 4401
    assert _audited(stack) == 0
