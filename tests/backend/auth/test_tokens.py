"""Bearer tokens expire: the expiry a token is issued with, its state, and authentication
refusing it from its expiry on as once revoked; a live stream's check ends at the expiry."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.auth import live
from backend.auth.errors import InvalidLifetime, TokenNotFound
from backend.auth.live import LiveCredential
from backend.auth.models import ApiToken
from backend.auth.tokens import authenticate, expiry, issue, loggable, revoke, state

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
DAY = 86_400


def test_a_token_expires_after_the_default_lifetime_or_the_one_asked_for():
    assert expiry(NOW, None, 90 * DAY, 365 * DAY) == NOW + timedelta(days=90)
    assert expiry(NOW, 3_600, 90 * DAY, 365 * DAY) == NOW + timedelta(hours=1)
    assert expiry(NOW, 365 * DAY, 90 * DAY, 365 * DAY) == NOW + timedelta(days=365)


def test_a_lifetime_beyond_the_maximum_is_refused():
    with pytest.raises(InvalidLifetime, match="exceeds the maximum of 31536000 s"):
        expiry(NOW, 365 * DAY + 1, 90 * DAY, 365 * DAY)


def test_the_state_of_a_token():
    row = ApiToken(expires_at=NOW + timedelta(seconds=1))
    assert state(row, NOW) == "live"
    assert state(row, NOW + timedelta(seconds=1)) == "expired"
    row.revoked_at = NOW
    assert state(row, NOW) == "revoked"


def _issue(stack, expires_at: datetime) -> tuple[uuid.UUID, str]:
    with stack.runtime.sessions.begin() as s:
        row, token = issue(s, "police-rdam", "police", {"units": ["RE07"]}, expires_at)
        return row.id, token


def test_an_expired_token_authenticates_no_more(stack):
    now = datetime.now(UTC)
    token_id, token = _issue(stack, now + timedelta(minutes=5))
    with stack.runtime.sessions() as s:
        who = authenticate(s, token, None, now)
        assert (who.name, who.ref) == ("token:police-rdam", f"token#{token_id}")
        assert authenticate(s, token, None, now + timedelta(minutes=5)) is None


def test_a_revoked_token_keeps_the_moment_it_was_revoked(stack):
    token_id, token = _issue(stack, datetime.now(UTC) + timedelta(days=1))
    with stack.runtime.sessions.begin() as s:
        assert revoke(s, token_id, NOW).revoked_at == NOW
    with stack.runtime.sessions.begin() as s:
        assert revoke(s, token_id).revoked_at == NOW
        assert authenticate(s, token, None) is None


def test_an_unknown_token_is_not_revoked(stack):
    with stack.runtime.sessions.begin() as s, pytest.raises(TokenNotFound):
        revoke(s, uuid.uuid4())


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_stream_credential_is_read_again_at_the_token_expiry(stack):
    """A stream's token is checked again at its expiry, whatever the interval of checks."""
    _, token = _issue(stack, datetime.now(UTC) + timedelta(seconds=0.5))

    async def run() -> tuple:
        credential = LiveCredential(stack.runtime.sessions, live.bearer(token, None), 60)
        first = await credential.principal()
        await asyncio.wait_for(credential.until_ended(), timeout=3)
        return first, await credential.principal()

    first, after = asyncio.run(run())
    assert first is not None and first.role == "police" and after is None


def test_a_log_line_carries_an_actor_by_kind_or_id_never_by_name():
    assert loggable("user:anna.devries") == "user"
    assert loggable("token:Anna de Vries (desk RR)") == "token"
    assert loggable("device:vic-001") == "device:vic-001"
    assert loggable("system:escalation") == "system:escalation"
    assert loggable("admin") == "admin"


def test_an_action_logs_who_by_kind_and_the_timeline_by_name(stack, caplog):
    """DESIGN: logs carry ids, never names. A token named after its holder acknowledges an
    alert: the log says a token did, the alert's timeline who."""
    from tests.backend.escalation.support import raise_panic

    alert = raise_panic(stack, "vic-names")
    with stack.runtime.sessions.begin() as s:
        _row, token = issue(s, "Anna de Vries (desk RR)", "dispatcher", {"regions": ["VR17"]},
                            datetime.now(UTC) + timedelta(days=1))
    api = stack.api()
    caplog.set_level("INFO")
    response = api.post(f"/api/v1/alerts/{alert.id}/acknowledge",
                        headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert f"alert acknowledged id={alert.id} by=token" in caplog.text
    assert "Anna" not in caplog.text
    timeline = api.get(f"/api/v1/alerts/{alert.id}?with_location=false").json()["timeline"]
    assert timeline[-1]["actor"] == "token:Anna de Vries (desk RR)"
