from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import require, session
from backend.auth.scoping import case_filter, may_see_case
from backend.auth.tokens import Principal
from backend.cases import service
from backend.cases.errors import CaseNotFound
from backend.cases.models import Case
from backend.cases.schemas import CaseCreate, CaseOut

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


def scoped_case(s: Session, p: Principal, case_id: uuid.UUID) -> Case:
    """The case if it is in the principal's scope (else 404: no existence oracle)."""
    case = service.get(s, case_id)
    if not may_see_case(s, p, case):
        raise CaseNotFound(f"case {case_id} not found")
    return case


@router.post("", status_code=201, response_model=CaseOut)
def create_case(
    data: CaseCreate, s: Session = Depends(session), _=Depends(require("case_director"))
) -> CaseOut:
    case = service.create(s, data)
    s.commit()
    return CaseOut.model_validate(case)


@router.get("", response_model=list[CaseOut])
def list_cases(
    s: Session = Depends(session), p: Principal = Depends(require("case_director", "dispatcher"))
):
    cases = s.scalars(select(Case).where(case_filter(p)).order_by(Case.created_at.desc())
                      .limit(500))
    return [CaseOut.model_validate(c) for c in cases]


@router.get("/{case_id}", response_model=CaseOut)
def get_case(
    case_id: uuid.UUID, s: Session = Depends(session),
    p: Principal = Depends(require("case_director", "dispatcher")),
):
    return CaseOut.model_validate(scoped_case(s, p, case_id))
