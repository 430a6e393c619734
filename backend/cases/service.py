"""Persistence of cases and their named contacts."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.alerts.models import Alert
from backend.caselog.models import CaseLogEntry
from backend.cases.errors import CaseConflict, CaseInUse, CaseNotFound
from backend.cases.models import Case, CaseContact
from backend.cases.schemas import CaseCreate, ContactIn
from backend.db.engine import hold_write_lock
from backend.devices.models import Device


def create(session: Session, data: CaseCreate) -> Case:
    case = Case(**data.model_dump())
    session.add(case)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise CaseConflict(
            f"case reference {data.reference} is already in use"
        ) from None
    return case


def get(session: Session, case_id: uuid.UUID, *, for_update: bool = False) -> Case:
    """The case; with `for_update`, locked against other changes until the transaction ends
    (`FOR NO KEY UPDATE` on PostgreSQL: an alert raised for the case meanwhile, whose foreign
    key takes a key-share lock on the row, does not wait; see `backend.caselog.service`; on
    SQLite the database's write lock, `backend.db.engine.hold_write_lock`)."""
    query = (
        select(Case).where(Case.id == case_id).execution_options(populate_existing=True)
    )
    if for_update and session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(key_share=True)
    elif for_update:  # SQLite: the database's write lock, before the case is read
        hold_write_lock(session)
    case = session.scalar(query)
    if case is None:
        raise CaseNotFound(f"case {case_id} not found")
    return case


def list_all(session: Session, limit: int = 500) -> list[Case]:
    return list(
        session.scalars(select(Case).order_by(Case.created_at.desc()).limit(limit))
    )


def update(
    session: Session, case: Case, changes: dict[str, Any]
) -> dict[str, tuple[Any, Any]]:
    """Apply changes; return {field: (old, new)} of what actually changed."""
    changed = {}
    for name, value in changes.items():
        old = getattr(case, name)
        if old != value:
            changed[name] = (old, value)
            setattr(case, name, value)
    if (
        changes.get("custody_status") not in (None, "released")
        and case.released_at is not None
    ):
        changed["released_at"] = (case.released_at, None)
        case.released_at = None
    session.flush()
    return changed


def delete(session: Session, case: Case, actor: str) -> None:
    """Delete a case nobody else has a stake in yet: refused while it has devices, alerts, or
    log entries of anyone but `actor` (the case log is shared with every party of the case; a
    deletion takes its entries along). The case is locked first (`FOR UPDATE` on PostgreSQL,
    the database's write lock on SQLite): whoever is writing to the case at this moment (a
    note, a device registered) is waited for, so the checks see what they wrote, and whoever
    comes later waits for the deletion and finds the case gone."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(select(Case.id).where(Case.id == case.id).with_for_update())
    else:
        hold_write_lock(session)
    in_use = session.scalar(
        select(
            exists().where(Device.case_id == case.id)
            | exists().where(Alert.case_id == case.id)
        )
    )
    if in_use:
        raise CaseInUse(f"case {case.id} still has devices or alerts")
    if session.scalar(select(exists().where(CaseLogEntry.case_id == case.id,
                                            CaseLogEntry.actor != actor))):
        raise CaseInUse(f"case {case.id} has log entries of other parties")
    session.delete(case)
    session.flush()


def get_contact(
    session: Session, case_id: uuid.UUID, contact_id: uuid.UUID
) -> CaseContact:
    contact = session.get(CaseContact, contact_id)
    if contact is None or contact.case_id != case_id:
        raise CaseNotFound(f"contact {contact_id} of case {case_id} not found")
    return contact


def add_contact(session: Session, case: Case, data: ContactIn) -> CaseContact:
    if any(c.organisation == data.organisation for c in case.contacts):
        raise CaseConflict(
            f"case {case.id} already has a named {data.organisation} contact; update it instead"
        )
    contact = CaseContact(case_id=case.id, **data.model_dump())
    case.contacts.append(contact)
    try:
        session.flush()
    except IntegrityError:
        session.rollback()
        raise CaseConflict(
            f"case {case.id} already has a named {data.organisation} contact"
        ) from None
    return contact
