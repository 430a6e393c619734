"""Persistence of measures and offender homes (no decisions here)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from backend.db.base import utcnow
from backend.db.engine import hold_write_lock
from backend.devices.models import Device
from backend.measures import repository
from backend.measures.errors import MeasureNotFound
from backend.measures.models import MeasureRow, OffenderHome


def get(
    session: Session, case_id: uuid.UUID, measure_id: str, *, for_update: bool = False
) -> MeasureRow:
    """The measure of the case; with `for_update`, locked against other changes until the
    transaction ends, so a change (`update`, `deactivate`) raises the version it read
    (`FOR NO KEY UPDATE` on PostgreSQL; on SQLite the database's write lock, before the measure
    is read: `backend.db.engine.hold_write_lock`)."""
    if for_update:
        query = (
            select(MeasureRow).where(MeasureRow.id == measure_id)
            .execution_options(populate_existing=True)
        )
        if session.get_bind().dialect.name == "postgresql":
            query = query.with_for_update(key_share=True)
        else:
            hold_write_lock(session)
        row = session.scalar(query)
    else:
        row = session.get(MeasureRow, measure_id)
    if row is None or row.case_id != case_id:
        raise MeasureNotFound(f"measure {measure_id} not found in case {case_id}")
    return row


def exists(session: Session, measure_id: str) -> bool:
    return session.get(MeasureRow, measure_id) is not None


def list_for_case(
    session: Session, case_id: uuid.UUID, include_inactive: bool = False
) -> list[MeasureRow]:
    query = select(MeasureRow).where(MeasureRow.case_id == case_id)
    if not include_inactive:
        query = query.where(MeasureRow.active.is_(True))
    return list(session.scalars(query.order_by(MeasureRow.created_at, MeasureRow.id)))


def insert(session: Session, measure_id: str, case_id: uuid.UUID, values: dict[str, Any]) -> MeasureRow:
    now = utcnow()
    row = MeasureRow(
        id=measure_id, case_id=case_id, active=True, version=1, created_at=now,
        updated_at=now, **values,
    )
    session.add(row)
    session.flush()
    repository.bump_catalog(session)
    return row


def update(session: Session, row: MeasureRow, values: dict[str, Any]) -> MeasureRow:
    """Change a measure read with `get(..., for_update=True)`: its version goes up by one."""
    for key, value in values.items():
        setattr(row, key, value)
    row.version += 1
    row.updated_at = utcnow()
    session.flush()
    repository.bump_catalog(session)
    return row


def deactivate(session: Session, row: MeasureRow, at: datetime | None = None) -> MeasureRow:
    """Deactivate a measure read with `get(..., for_update=True)`."""
    if row.active:
        row.active = False
        row.deactivated_at = at or utcnow()
        row.version += 1
        row.updated_at = row.deactivated_at
        session.flush()
        repository.bump_catalog(session)
    return row


def case_devices(session: Session, case_id: uuid.UUID) -> dict[str, str]:
    """Device id -> role, for the devices of one case."""
    rows = session.execute(select(Device.id, Device.role).where(Device.case_id == case_id))
    return {device_id: role for device_id, role in rows}


def get_home(session: Session, case_id: uuid.UUID) -> tuple[float, float] | None:
    """The offender's registered home point of a case as (lon, lat), or None."""
    row = session.get(OffenderHome, case_id)
    return None if row is None else repository.point_from_db(row.location)


def set_home(session: Session, case_id: uuid.UUID, lon: float, lat: float) -> None:
    """Register the offender's home point, or move it: one statement that inserts or updates,
    so two first registrations at the same moment do not clash (the later one is kept)."""
    dialect = session.get_bind().dialect.name
    insert = (postgresql.insert if dialect == "postgresql" else sqlite.insert)(OffenderHome)
    insert = insert.values(
        case_id=case_id, location=repository.point_ewkt(lon, lat), updated_at=utcnow()
    )
    session.execute(insert.on_conflict_do_update(
        index_elements=["case_id"],
        set_={"location": insert.excluded.location, "updated_at": insert.excluded.updated_at},
    ))
    loaded = session.identity_map.get(session.identity_key(OffenderHome, case_id))
    if loaded is not None:  # read before in this session: read again when next used
        session.expire(loaded)


def delete_home(session: Session, case_id: uuid.UUID) -> None:
    row = session.get(OffenderHome, case_id)
    if row is not None:
        session.delete(row)
        session.flush()
