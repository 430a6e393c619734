"""The case log over HTTP: every party of the case reads it according to role."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from backend.api.deps import require, session
from backend.api.text import free_text
from backend.auth.scoping import may_read_case_log, may_see_case
from backend.auth.tokens import Principal
from backend.caselog import service
from backend.caselog.readers import READERS, WRITERS, kinds_read
from backend.cases import service as cases
from backend.cases.errors import CaseNotFound

router = APIRouter(prefix="/api/v1/cases", tags=["case log"])


def _readable(s: Session, p: Principal, case_id: uuid.UUID) -> None:
    """The log of a case the principal may read (else 404: no existence oracle)."""
    if not may_read_case_log(s, p, cases.get(s, case_id)):
        raise CaseNotFound(f"case {case_id} not found")


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: free_text(5_000, min_length=1)


def _entry(e: Any) -> dict[str, Any]:
    return {
        "seq": e.seq,
        "at": e.at.isoformat(),
        "kind": e.kind,
        "actor": e.actor,
        "alert_id": str(e.alert_id) if e.alert_id else None,
        "data": e.data,
        "prev_hash": e.prev_hash,
        "hash": e.hash,
    }


@router.get("/{case_id}/log")
def read_log(
    case_id: uuid.UUID,
    s: Session = Depends(session),
    p: Principal = Depends(require(*READERS)),
) -> list[dict[str, Any]]:
    """The entries carry no coordinates (see `backend.caselog.hook.alert_summary`): reading
    the log is not a read of location data."""
    _readable(s, p, case_id)
    return [_entry(e) for e in service.entries(s, case_id, kinds_read(p.role))]


@router.post("/{case_id}/log/notes", status_code=201)
def add_note(
    case_id: uuid.UUID,
    body: NoteIn,
    s: Session = Depends(session),
    p: Principal = Depends(require(*WRITERS)),
) -> dict[str, Any]:
    if not may_see_case(s, p, cases.get(s, case_id)):
        raise CaseNotFound(f"case {case_id} not found")
    entry = service.append(s, case_id, "note", p.name, {"text": body.text})
    out = _entry(entry)
    s.commit()
    return out


@router.get("/{case_id}/log/verify")
def verify_log(
    case_id: uuid.UUID,
    s: Session = Depends(session),
    p: Principal = Depends(require(*READERS)),
) -> dict[str, Any]:
    """Recompute the chain: `ok`, the number of entries, and the first broken entry."""
    _readable(s, p, case_id)
    result = service.verify(s, case_id)
    return {
        "ok": result.ok,
        "entries": result.entries,
        "first_broken_seq": result.first_broken_seq,
        "reason": result.reason,
    }
