"""Bearer tokens: the bootstrap admin token from settings, and tokens stored by their SHA-256."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.models import ApiToken

# The longest name of a token, as long as a user name's: every actor made of it (`token:<name>`,
# a police unit's `police:<name>`) fits the 128 characters of the actor columns (audit log,
# alert timeline, case log), so a read by any token is audited and an action by it recorded.
TOKEN_NAME_MAX = 64


@dataclass(frozen=True)
class Principal:
    name: str
    role: str  # admin | dispatcher | police | case_director
    scope: dict[str, Any] = field(default_factory=dict)


def new_token() -> str:
    return "sw_" + secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def authenticate(session: Session, token: str, admin_token: str | None) -> Principal | None:
    if admin_token and hmac.compare_digest(token.encode(), admin_token.encode()):
        return Principal("admin", "admin")
    row = session.scalar(
        select(ApiToken).where(
            ApiToken.token_sha256 == token_digest(token), ApiToken.revoked_at.is_(None)
        )
    )
    if row is None:
        return None
    return Principal(f"token:{row.name}", row.role, dict(row.scope or {}))
