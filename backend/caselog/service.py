"""Persistence of the case log. Appends lock the case row on PostgreSQL, so two transactions
writing to one case chain one after the other; on SQLite an append takes the database's write
lock before it reads the last entry (`backend.db.engine.hold_write_lock`), which does the same.
The lock is `FOR NO KEY UPDATE`, not `FOR UPDATE`: inserting an alert checks its foreign key to
the case with a key-share lock on the case row, which `FOR UPDATE` would block, so a panic would
wait for whatever transaction is appending to its case (a zone alert's follow-up, a desk's
transition)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.caselog.chain import (
    GENESIS,
    ChainEntry,
    Verification,
    entry_hash,
    normalise,
    verify_chain,
)
from backend.caselog.models import CaseLogEntry
from backend.cases.errors import CaseNotFound
from backend.cases.models import Case
from backend.db.engine import hold_write_lock


def append(
    session: Session,
    case_id: uuid.UUID,
    kind: str,
    actor: str,
    data: dict[str, Any],
    *,
    alert_id: uuid.UUID | None = None,
    at: datetime | None = None,
) -> CaseLogEntry:
    at = (at or datetime.now(UTC)).astimezone(UTC)
    exists = select(Case.id).where(Case.id == case_id)
    if session.get_bind().dialect.name == "postgresql":
        exists = exists.with_for_update(key_share=True)
    else:
        hold_write_lock(session)
    if session.execute(exists).first() is None:  # deleted meanwhile (`cases.service.delete`)
        raise CaseNotFound(f"case {case_id} not found")
    last = session.execute(
        select(CaseLogEntry.seq, CaseLogEntry.hash)
        .where(CaseLogEntry.case_id == case_id)
        .order_by(CaseLogEntry.seq.desc())
        .limit(1)
    ).first()
    seq, prev = (last[0] + 1, last[1]) if last else (1, GENESIS)
    data = normalise(data)
    entry = CaseLogEntry(
        case_id=case_id,
        seq=seq,
        at=at,
        kind=kind,
        actor=actor,
        alert_id=alert_id,
        data=data,
        prev_hash=prev,
        hash=entry_hash(
            prev,
            case_id=str(case_id),
            seq=seq,
            at=at,
            kind=kind,
            actor=actor,
            alert_id=str(alert_id) if alert_id else None,
            data=data,
        ),
    )
    session.add(entry)
    session.flush()
    return entry


def entries(
    session: Session, case_id: uuid.UUID, kinds: set[str] | None = None,
    newest: int | None = None,
) -> list[CaseLogEntry]:
    """The case's entries of these kinds (None: all) in order; with `newest`, only that many,
    the newest first."""
    query = select(CaseLogEntry).where(CaseLogEntry.case_id == case_id)
    if kinds is not None:
        query = query.where(CaseLogEntry.kind.in_(sorted(kinds)))
    if newest is not None:
        return list(session.scalars(query.order_by(CaseLogEntry.seq.desc()).limit(newest)))
    return list(session.scalars(query.order_by(CaseLogEntry.seq)))


def verify(session: Session, case_id: uuid.UUID) -> Verification:
    return verify_chain(
        ChainEntry(
            case_id=str(e.case_id),
            seq=e.seq,
            at=e.at,
            kind=e.kind,
            actor=e.actor,
            alert_id=str(e.alert_id) if e.alert_id else None,
            data=e.data,
            prev_hash=e.prev_hash,
            hash=e.hash,
        )
        for e in entries(session, case_id)
    )
