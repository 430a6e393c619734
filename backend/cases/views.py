from __future__ import annotations

from collections.abc import Iterator

import uuid

from fastapi import APIRouter, Depends, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import require, runtime, session
from backend.auth.errors import Forbidden
from backend.auth.scoping import case_filter, may_see_case, person_id
from backend.auth.tokens import Principal
from backend.cases import service
from backend.cases.errors import CaseNotFound, UnknownHomeRegion
from backend.cases.flows import CaseFlow
from backend.cases.home import unknown_home_codes
from backend.cases.models import Case
from backend.cases.schemas import (
    CaseCreate,
    CaseOut,
    CaseUpdate,
    ContactIn,
    ContactOut,
    ContactUpdate,
)
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/cases", tags=["cases"])

WRITERS = ("case_director",)
READERS = ("case_director", "dispatcher")


def scoped_case(s: Session, p: Principal, case_id: uuid.UUID) -> Case:
    """The case if it is in the principal's scope (else 404: no existence oracle)."""
    case = service.get(s, case_id)
    if not may_see_case(s, p, case):
        raise CaseNotFound(f"case {case_id} not found")
    return case


def case_flow(case_id: uuid.UUID, rt: Runtime = Depends(runtime)) -> Iterator[CaseFlow]:
    """The case flow for a request on the case `case_id` (the path's)."""
    yield CaseFlow(
        rt.topics, rt.flow.policy, rt.settings.supervision.pursuit_report_interval_s
    )
    # After a change through the case flow this process sees it at once: the alert flow's
    # snapshot of the case and the case's devices in the directory (which carries case facts)
    # are dropped; the other processes read the case again within a second.
    rt.flow.forget_caches([case_id])
    rt.directory.forget_cases([case_id])


def as_creator(p: Principal, data: CaseCreate) -> CaseCreate:
    """A case director who creates a case is its case director (so that she sees it); she
    may not create one for somebody else. Admins name whomever they like."""
    if p.role != "case_director":
        return data
    me = person_id(p)
    if data.case_director not in (None, me):
        raise Forbidden("a case director creates only cases she directs herself")
    return data.model_copy(update={"case_director": me})


def _home_known(rt: Runtime, data: CaseCreate | CaseUpdate) -> None:
    if unknown := unknown_home_codes(data.model_dump(exclude_unset=True), rt.regions):
        raise UnknownHomeRegion("unknown home region codes (no such unit, safety region or "
                                "Veilig Thuis desk): " + ", ".join(unknown))


@router.post("", status_code=201, response_model=CaseOut)
def create_case(
    data: CaseCreate, s: Session = Depends(session), p: Principal = Depends(require(*WRITERS)),
    rt: Runtime = Depends(runtime),
) -> CaseOut:
    _home_known(rt, data)
    case = service.create(s, as_creator(p, data))
    s.commit()
    return CaseOut.model_validate(service.get(s, case.id))


@router.get("", response_model=list[CaseOut])
def list_cases(
    s: Session = Depends(session), p: Principal = Depends(require(*READERS))
):
    cases = s.scalars(
        select(Case).where(case_filter(p)).order_by(Case.created_at.desc()).limit(500)
    )
    return [CaseOut.model_validate(c) for c in cases]


@router.get("/{case_id}", response_model=CaseOut)
def get_case(
    case_id: uuid.UUID,
    s: Session = Depends(session),
    p: Principal = Depends(require(*READERS)),
):
    return CaseOut.model_validate(scoped_case(s, p, case_id))


@router.patch("/{case_id}", response_model=CaseOut)
def update_case(
    case_id: uuid.UUID,
    data: CaseUpdate,
    rt: Runtime = Depends(runtime),
    flow: CaseFlow = Depends(case_flow),
    p: Principal = Depends(require(*WRITERS)),
) -> CaseOut:
    """Change a case. A custody status that becomes `released` tightens the case for the
    policy's period (faster reporting, contacts notified, the victim told)."""
    _home_known(rt, data)
    with rt.sessions.begin() as s:
        scoped_case(s, p, case_id)
        _, effects = flow.update(s, case_id, data, actor=p.name)
    effects.carry_out(rt.dispatcher, rt.bus)
    with rt.sessions() as s:
        return CaseOut.model_validate(service.get(s, case_id))


@router.delete("/{case_id}", status_code=204)
def delete_case(
    case_id: uuid.UUID, s: Session = Depends(session), p: Principal = Depends(require(*WRITERS))
) -> Response:
    """Delete a case made by mistake: refused (409) while it has devices, alerts, or case log
    entries of anyone but the caller (the log is shared with every party of the case)."""
    service.delete(s, scoped_case(s, p, case_id), p.name)
    s.commit()
    return Response(status_code=204)


@router.get("/{case_id}/contacts", response_model=list[ContactOut])
def list_contacts(
    case_id: uuid.UUID,
    s: Session = Depends(session),
    p: Principal = Depends(require(*READERS)),
):
    return [ContactOut.model_validate(c) for c in scoped_case(s, p, case_id).contacts]


@router.post("/{case_id}/contacts", status_code=201, response_model=ContactOut)
def add_contact(
    case_id: uuid.UUID,
    data: ContactIn,
    s: Session = Depends(session),
    flow: CaseFlow = Depends(case_flow),
    p: Principal = Depends(require(*WRITERS)),
) -> ContactOut:
    scoped_case(s, p, case_id)
    contact = flow.add_contact(s, case_id, data, actor=p.name)
    out = ContactOut.model_validate(contact)
    s.commit()
    return out


@router.get("/{case_id}/contacts/{contact_id}", response_model=ContactOut)
def get_contact(
    case_id: uuid.UUID,
    contact_id: uuid.UUID,
    s: Session = Depends(session),
    p: Principal = Depends(require(*READERS)),
) -> ContactOut:
    scoped_case(s, p, case_id)
    return ContactOut.model_validate(service.get_contact(s, case_id, contact_id))


@router.patch("/{case_id}/contacts/{contact_id}", response_model=ContactOut)
def update_contact(
    case_id: uuid.UUID,
    contact_id: uuid.UUID,
    data: ContactUpdate,
    s: Session = Depends(session),
    flow: CaseFlow = Depends(case_flow),
    p: Principal = Depends(require(*WRITERS)),
) -> ContactOut:
    scoped_case(s, p, case_id)
    out = ContactOut.model_validate(
        flow.update_contact(s, case_id, contact_id, data, p.name)
    )
    s.commit()
    return out


@router.delete("/{case_id}/contacts/{contact_id}", status_code=204)
def delete_contact(
    case_id: uuid.UUID,
    contact_id: uuid.UUID,
    s: Session = Depends(session),
    flow: CaseFlow = Depends(case_flow),
    p: Principal = Depends(require(*WRITERS)),
) -> Response:
    scoped_case(s, p, case_id)
    flow.delete_contact(s, case_id, contact_id, p.name)
    s.commit()
    return Response(status_code=204)
