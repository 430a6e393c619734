from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from backend.api.deps import require, session
from backend.cases import service
from backend.cases.schemas import CaseCreate, CaseOut

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])


@router.post("", status_code=201, response_model=CaseOut)
def create_case(
    data: CaseCreate, s: Session = Depends(session), _=Depends(require("case_director"))
) -> CaseOut:
    case = service.create(s, data)
    s.commit()
    return CaseOut.model_validate(case)


@router.get("", response_model=list[CaseOut])
def list_cases(s: Session = Depends(session), _=Depends(require("case_director", "dispatcher"))):
    return [CaseOut.model_validate(c) for c in service.list_all(s)]


@router.get("/{case_id}", response_model=CaseOut)
def get_case(
    case_id: uuid.UUID, s: Session = Depends(session),
    _=Depends(require("case_director", "dispatcher")),
):
    return CaseOut.model_validate(service.get(s, case_id))
