"""The routing facts of a stored case (`backend.routing.CaseFacts`), built at the edge."""

from __future__ import annotations

from typing import cast, get_args

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.cases.models import Case
from backend.devices.models import Device
from backend.routing import CaseFacts, Contact, CustodyStatus
from backend.routing.facts import RiskLevel


def case_facts(session: Session, case: Case) -> CaseFacts:
    victims = tuple(
        session.scalars(
            select(Device.id)
            .where(
                Device.case_id == case.id,
                Device.role == "victim",
                Device.active.is_(True),
            )
            .order_by(Device.id)
        )
    )
    return facts_of(case, victims)


def facts_of(case: Case, victim_device_ids: tuple[str, ...]) -> CaseFacts:
    """The routing facts of a loaded case (with its contacts) and its active victim devices."""
    state = (
        case.custody_status
        if case.custody_status in ("in_custody", "released")
        else "none"
    )
    released_at = case.released_at if state == "released" else None
    if state == "released" and released_at is None:
        state = "none"
    risk = cast(
        RiskLevel,
        case.risk_level if case.risk_level in get_args(RiskLevel) else "medium",
    )
    return CaseFacts(
        case_id=str(case.id),
        home_police_unit=case.home_police_unit,
        home_vr=case.home_vr_code,
        home_vt_desk=case.home_vt_desk,
        risk_level=risk,
        custody=CustodyStatus(state=state, released_at=released_at),  # type: ignore[arg-type]
        contacts=tuple(
            Contact(id=str(c.id), organisation=c.organisation)  # type: ignore[arg-type]
            for c in case.contacts
        ),
        case_director_id=case.case_director,
        victim_device_ids=tuple(sorted(victim_device_ids)),
    )
