"""Persistence of cases."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.cases.errors import CaseConflict, CaseNotFound
from backend.cases.models import Case
from backend.cases.schemas import CaseCreate


def create(session: Session, data: CaseCreate) -> Case:
    case = Case(**data.model_dump())
    session.add(case)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise CaseConflict(f"case reference {data.reference} is already in use") from None
    return case


def get(session: Session, case_id: uuid.UUID) -> Case:
    case = session.get(Case, case_id)
    if case is None:
        raise CaseNotFound(f"case {case_id} not found")
    return case


def list_all(session: Session, limit: int = 500) -> list[Case]:
    return list(session.scalars(select(Case).order_by(Case.created_at.desc()).limit(limit)))
