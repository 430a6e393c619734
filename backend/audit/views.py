from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from backend.api.deps import require, session
from backend.audit.log import entries
from backend.auth.tokens import Principal

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("")
def list_entries(
    case_id: uuid.UUID | None = None, limit: int = Query(200, ge=1, le=5_000),
    s: Session = Depends(session), _: Principal = Depends(require()),
) -> list[dict[str, Any]]:
    """The access log of location data (admin only)."""
    return entries(s, case_id=case_id, limit=limit)
