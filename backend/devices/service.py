"""Persistence of devices."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from dataclasses import dataclass

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from backend.cases import service as cases
from backend.devices.errors import DeviceConflict, DeviceNameReserved, DeviceNotFound
from backend.devices.models import Device
from backend.devices.schemas import DeviceCreate, DeviceUpdate


def register(session: Session, data: DeviceCreate,
             reserved: Collection[str] = frozenset()) -> Device:
    """Register the device. `reserved`: user names of the broker's service accounts, which no
    device id or OwnTracks user may take (`BrokerSettings.reserved_names`)."""
    for field, name in (("id", data.id), ("owntracks_user", data.owntracks_user)):
        if name is not None and name in reserved:
            raise DeviceNameReserved(f"{field} {name!r} is a broker service account's user "
                                     "name: choose another")
    cases.get(session, data.case_id)  # CaseNotFound if absent
    if session.get(Device, data.id) is not None:
        raise DeviceConflict(f"device {data.id} is already registered")
    names = accounts(data.id, data.owntracks_user)
    holders = session.execute(select(Device.id, Device.case_id, Device.role, Device.owntracks_user)
                              .where(or_(Device.id.in_(names), Device.owntracks_user.in_(names))))
    if (why := account_clash(data, [Holder(*row) for row in holders])) is not None:
        raise DeviceConflict(why)
    device = Device(**data.model_dump())
    session.add(device)
    try:
        session.flush()
    except IntegrityError:  # registered by another request since the check above
        session.rollback()
        cases.get(session, data.case_id)  # deleted meanwhile: CaseNotFound
        raise DeviceConflict(_clash(session, data)) from None
    return device


@dataclass(frozen=True, slots=True)
class Holder:
    """A registered device, as far as its broker accounts go."""

    id: str
    case_id: uuid.UUID
    role: str
    owntracks_user: str | None


def accounts(device_id: str, owntracks_user: str | None) -> set[str]:
    """The broker user names a device publishes as: its id (`sd/v1/dev/%u/...` in the broker's
    ACL) and its OwnTracks user (`owntracks/%u/+`). Pure."""
    return {device_id} | ({owntracks_user} if owntracks_user else set())


def account_clash(data: DeviceCreate, holders: list[Holder]) -> str | None:
    """Why the device may not be registered with these broker accounts, or None. One account
    publishes for every device it names, so an account shared with a device of another case or
    role would let one person send as the other (an offender's phone as the victim's device);
    devices of one person (one case and role, such as a phone and a tablet under one OwnTracks
    user) may share one. Names no other case. Pure."""
    mine = accounts(data.id, data.owntracks_user)
    for holder in holders:
        shared = mine & accounts(holder.id, holder.owntracks_user)
        if shared and (holder.case_id != data.case_id or holder.role != data.role):
            return (f"broker user name {sorted(shared)[0]!r} is already a device's of another "
                    "case or role: one account would publish as both; choose another")
    return None


def _clash(session: Session, data: DeviceCreate) -> str:
    """What a device that failed to register clashed with, read after the rollback."""
    if session.get(Device, data.id) is not None:
        return f"device {data.id} is already registered"
    if data.owntracks_user is not None and data.owntracks_device is not None:
        pair = select(Device.id).where(Device.owntracks_user == data.owntracks_user,
                                       Device.owntracks_device == data.owntracks_device)
        if session.scalar(pair) is not None:
            return "the OwnTracks user/device pair is already registered"
    return "a device registered at the same moment clashes with this one: try again"


def get(session: Session, device_id: str) -> Device:
    device = session.get(Device, device_id)
    if device is None:
        raise DeviceNotFound(f"device {device_id} not found")
    return device


def update(session: Session, device_id: str, data: DeviceUpdate) -> Device:
    device = get(session, device_id)
    for key, value in data.model_dump(exclude_none=True).items():
        setattr(device, key, value)
    session.flush()
    return device


def list_all(session: Session, limit: int = 1_000) -> list[Device]:
    return list(session.scalars(select(Device).order_by(Device.id).limit(limit)))
