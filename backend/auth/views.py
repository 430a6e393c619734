"""Bearer tokens: an administrator issues, lists and revokes them; whoever holds one revokes it
(signs out). Every token expires (`backend.auth.tokens`); the token itself is shown once."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import require, runtime, session
from backend.api.text import free_text
from backend.auth import sessions as web_sessions
from backend.auth import tokens
from backend.auth.errors import NotRevocable
from backend.auth.models import ROLES, ApiToken
from backend.auth.scope import check_scope
from backend.auth.tokens import TOKEN_NAME_MAX
from backend.runtime import Runtime
from backend.settings import MAX_TOKEN_LIFETIME_S

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/v1/tokens", tags=["auth"])
_bearer = HTTPBearer(auto_error=False)


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: free_text(TOKEN_NAME_MAX, min_length=1)
    role: Literal[ROLES]
    scope: dict[str, Any] = Field(default_factory=dict)
    # Seconds until the token expires; None: `tokens.lifetime_s`. At most
    # `tokens.max_lifetime_s` (422 beyond it).
    lifetime_s: int | None = Field(None, ge=60, le=MAX_TOKEN_LIFETIME_S)


def describe(row: ApiToken, now: datetime) -> dict[str, Any]:
    """A token as an administrator sees it: never the token or its digest."""
    return {
        "id": str(row.id), "name": row.name, "role": row.role, "scope": row.scope or {},
        "created_at": row.created_at.isoformat(), "expires_at": row.expires_at.isoformat(),
        "revoked_at": row.revoked_at.isoformat() if row.revoked_at else None,
        "state": tokens.state(row, now),
    }


@router.post("", status_code=201)
def create_token(
    data: TokenCreate, s: Session = Depends(session), rt: Runtime = Depends(runtime),
    _=Depends(require()),
) -> dict[str, Any]:
    """Create a bearer token. The token is shown once; only its SHA-256 is stored."""
    scope = check_scope(data.role, data.scope)  # InvalidScope: 422
    now = datetime.now(UTC)
    settings = rt.settings.tokens
    expires_at = tokens.expiry(now, data.lifetime_s, settings.lifetime_s,
                               settings.max_lifetime_s)  # InvalidLifetime: 422
    row, token = tokens.issue(s, data.name, data.role, scope, expires_at)
    s.commit()
    return {**describe(row, now), "token": token}


@router.get("")
def list_tokens(s: Session = Depends(session), _=Depends(require())) -> list[dict[str, Any]]:
    """Every stored token, newest first, with its state (live, expired, revoked)."""
    now = datetime.now(UTC)
    rows = s.scalars(select(ApiToken).order_by(ApiToken.created_at.desc(), ApiToken.id))
    return [describe(row, now) for row in rows]


@router.delete("/current", status_code=204)
def sign_out(
    request: Request, response: Response, s: Session = Depends(session),
    rt: Runtime = Depends(runtime),
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    _=Depends(require(*ROLES)),
) -> None:
    """Revoke the credential this request came with: its bearer token, or its console session
    (which then ends as a sign-out does). The bootstrap admin token cannot be: 409."""
    if credentials is None:
        web_sessions.end(s, request.cookies.get(web_sessions.COOKIE, ""))
        s.commit()
        response.delete_cookie(web_sessions.COOKIE, path="/")
        return
    admin = rt.settings.api.admin_token
    if tokens.is_bootstrap(credentials.credentials, admin.get_secret_value() if admin else None):
        raise NotRevocable("the bootstrap admin token is set in the settings "
                           "(SCHILDWACHT_API__ADMIN_TOKEN): remove it there")
    row = tokens.revoke_presented(s, credentials.credentials)
    s.commit()
    if row is not None:
        log.info("token revoked by its holder token_id=%s", row.id)


@router.delete("/{token_id}")
def revoke_token(
    token_id: uuid.UUID, s: Session = Depends(session), _=Depends(require()),
) -> dict[str, Any]:
    """Revoke a token: every request with it is refused from now on (401). A token revoked
    already answers as it is; an unknown id answers 404."""
    row = tokens.revoke(s, token_id)  # TokenNotFound: 404
    s.commit()
    log.info("token revoked by an administrator token_id=%s", row.id)
    return describe(row, datetime.now(UTC))
