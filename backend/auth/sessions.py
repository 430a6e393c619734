"""Console sessions: a random cookie token (stored as SHA-256) and a per-session CSRF token."""

from __future__ import annotations

import hmac
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from backend.auth.models import User, WebSession
from backend.auth.tokens import Principal, token_digest
from backend.auth.users import principal_of

COOKIE = "sw_session"
CSRF_HEADER = "X-CSRF-Token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def start(s: Session, user: User, lifetime_s: float, now: datetime | None = None) -> tuple[str, str]:
    """Open a session; returns (cookie token, CSRF token)."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    s.add(WebSession(token_sha256=token_digest(token), user_id=user.id, csrf_token=csrf,
                     created_at=now, expires_at=now + timedelta(seconds=lifetime_s)))
    return token, csrf


def resolve(s: Session, token: str, now: datetime | None = None) -> tuple[Principal, str] | None:
    """The principal and CSRF token of a live session, or None."""
    found = _live(s, token, now)
    if found is None:
        return None
    web_session, user = found
    return principal_of(user), web_session.csrf_token


def resolve_until(s: Session, token: str,
                  now: datetime | None = None) -> tuple[Principal, datetime] | None:
    """The principal of a live session and the moment the session expires, or None."""
    found = _live(s, token, now)
    if found is None:
        return None
    web_session, user = found
    return principal_of(user), web_session.expires_at


def _live(s: Session, token: str, now: datetime | None) -> tuple[WebSession, User] | None:
    """A session not ended or expired, of a user not disabled."""
    now = now or datetime.now(UTC)
    row = s.execute(
        select(WebSession, User).join(User, User.id == WebSession.user_id).where(
            WebSession.token_sha256 == token_digest(token), WebSession.ended_at.is_(None),
            WebSession.expires_at > now, User.disabled_at.is_(None))
    ).first()
    return None if row is None else (row[0], row[1])


def end(s: Session, token: str, now: datetime | None = None) -> None:
    s.execute(update(WebSession).where(WebSession.token_sha256 == token_digest(token))
              .values(ended_at=now or datetime.now(UTC)))


def csrf_ok(expected: str, presented: str | None) -> bool:
    return bool(presented) and hmac.compare_digest(expected.encode(), (presented or "").encode())
