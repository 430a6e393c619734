"""Bearer tokens: the bootstrap admin token from settings, and tokens stored by their SHA-256.

A stored token grants its role and scope until it expires (`expires_at`, set when it is issued:
`tokens.lifetime_s` or the lifetime asked for, at most `tokens.max_lifetime_s`) or is revoked
(`revoked_at`), whichever comes first. Every request reads its token's row again (no cache of
verified tokens), so a revocation or an expiry refuses the next request in every process at
once; a live stream checks again every `api.stream_recheck_s` and at the token's expiry
(`backend.auth.live`). The bootstrap admin token is set in the settings and ends only there."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.errors import InvalidLifetime, TokenNotFound
from backend.auth.models import ApiToken

# The longest name of a token, as long as a user name's: every actor made of it (`token:<name>`,
# a police unit's `police:<name>`) fits the 128 characters of the actor columns (audit log,
# alert timeline, case log), so a read by any token is audited and an action by it recorded.
TOKEN_NAME_MAX = 64

TokenState = Literal["live", "expired", "revoked"]


@dataclass(frozen=True)
class Principal:
    name: str  # who acted, as the timeline, the case log and the audit log record it
    role: str  # admin | dispatcher | police | case_director
    scope: dict[str, Any] = field(default_factory=dict)
    ref: str = "admin"  # who, as logs carry it: `user#<id>`, `token#<id>`, never a name


def loggable(actor: str) -> str:
    """An actor (`Principal.name`, or `device:<id>`, `system:<loop>`) as a log line may carry
    it: a person's or a token's name (`user:<name>`, `token:<name>`) only as its kind. Logs
    carry ids, never names; the timeline and the case log say who."""
    kind, _, _ = actor.partition(":")
    return kind if kind in ("user", "token") else actor


def new_token() -> str:
    return "sw_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def expiry(now: datetime, lifetime_s: int | None, default_s: int, max_s: int) -> datetime:
    """When a token issued now expires: after the lifetime asked for, else the default one; a
    lifetime beyond the maximum is refused."""
    if lifetime_s is not None and lifetime_s > max_s:
        raise InvalidLifetime(f"lifetime_s {lifetime_s} exceeds the maximum of {max_s} s "
                              "(tokens.max_lifetime_s)")
    return now + timedelta(seconds=default_s if lifetime_s is None else lifetime_s)


def state(row: ApiToken, now: datetime) -> TokenState:
    if row.revoked_at is not None:
        return "revoked"
    return "live" if now < row.expires_at else "expired"


def issue(s: Session, name: str, role: str, scope: dict[str, Any],
          expires_at: datetime) -> tuple[ApiToken, str]:
    """Store a new token (its SHA-256 only); returns the row and the token, shown once."""
    token = new_token()
    row = ApiToken(name=name, role=role, scope=scope, token_sha256=token_digest(token),
                   expires_at=expires_at)
    s.add(row)
    s.flush()
    return row, token


def revoke(s: Session, token_id: uuid.UUID, now: datetime | None = None) -> ApiToken:
    """Revoke the token with this id; one revoked already keeps the moment it was revoked."""
    row = s.get(ApiToken, token_id)
    if row is None:
        raise TokenNotFound(f"no token {token_id}")
    if row.revoked_at is None:
        row.revoked_at = now or datetime.now(UTC)
    return row


def revoke_presented(s: Session, token: str, now: datetime | None = None) -> ApiToken | None:
    """Revoke the stored token presented (a sign-out); None when no stored token is it."""
    row = s.scalar(select(ApiToken).where(ApiToken.token_sha256 == token_digest(token)))
    if row is not None and row.revoked_at is None:
        row.revoked_at = now or datetime.now(UTC)
    return row


def is_bootstrap(token: str, admin_token: str | None) -> bool:
    return bool(admin_token) and hmac.compare_digest(token.encode(), (admin_token or "").encode())


def authenticate_until(session: Session, token: str, admin_token: str | None,
                       now: datetime | None = None) -> tuple[Principal, datetime | None] | None:
    """The principal a token grants now and when it expires (None: the bootstrap admin token,
    which does not), or None for a token unknown, expired or revoked."""
    if is_bootstrap(token, admin_token):
        return Principal("admin", "admin"), None
    now = now or datetime.now(UTC)
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_sha256 == token_digest(token), ApiToken.revoked_at.is_(None),
            ApiToken.expires_at > now,
        )
    )
    if row is None:
        return None
    return (Principal(f"token:{row.name}", row.role, dict(row.scope or {}), f"token#{row.id}"),
            row.expires_at)


def authenticate(session: Session, token: str, admin_token: str | None,
                 now: datetime | None = None) -> Principal | None:
    found = authenticate_until(session, token, admin_token, now)
    return None if found is None else found[0]
