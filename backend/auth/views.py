from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from backend.api.deps import require, session
from backend.api.text import free_text
from backend.auth.models import ROLES, ApiToken
from backend.auth.scope import check_scope
from backend.auth.tokens import TOKEN_NAME_MAX, new_token, token_digest

router = APIRouter(prefix="/api/v1/tokens", tags=["auth"])


class TokenCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: free_text(TOKEN_NAME_MAX, min_length=1)
    role: Literal[ROLES]
    scope: dict[str, Any] = Field(default_factory=dict)


@router.post("", status_code=201)
def create_token(
    data: TokenCreate, s: Session = Depends(session), _=Depends(require())
) -> dict[str, Any]:
    """Create a bearer token. The token is shown once; only its SHA-256 is stored."""
    scope = check_scope(data.role, data.scope)  # InvalidScope: 422
    token = new_token()
    row = ApiToken(name=data.name, role=data.role, scope=scope, token_sha256=token_digest(token))
    s.add(row)
    s.commit()
    return {"id": str(row.id), "name": row.name, "role": row.role, "token": token}
