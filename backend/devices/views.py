from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Path
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.api.deps import require, runtime, session
from backend.auth.scoping import case_filter, may_see_case
from backend.auth.tokens import Principal
from backend.cases.device_commands import config_now
from backend.cases.errors import CaseNotFound
from backend.cases.models import Case
from backend.devices import service
from backend.devices.errors import DeviceNotFound
from backend.devices.models import Device
from backend.devices.schemas import DEVICE_ID, DeviceCreate, DeviceOut, DeviceUpdate
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])
# A device id in the path is one the protocol allows (a NUL, say, is a 422, not a 500).
DeviceId = Annotated[str, Path(pattern=DEVICE_ID)]


def _scoped(s: Session, p: Principal, device_id: str) -> Device:
    """The device if its case is in the principal's scope (else 404: no existence oracle)."""
    device = service.get(s, device_id)
    case = s.get(Case, device.case_id)
    if case is None or not may_see_case(s, p, case):
        raise DeviceNotFound(f"device {device_id} not found")
    return device


@router.post("", status_code=201, response_model=DeviceOut)
def register_device(
    data: DeviceCreate, s: Session = Depends(session), rt: Runtime = Depends(runtime),
    p: Principal = Depends(require("case_director")),
):
    case = s.get(Case, data.case_id)
    if case is not None and not may_see_case(s, p, case):  # as unknown: no existence oracle
        raise CaseNotFound(f"case {data.case_id} not found")
    device = service.register(s, data, rt.settings.broker.reserved_names())
    s.commit()
    rt.directory.invalidate(device.id)
    rt.flow.forget_caches([device.case_id])
    return DeviceOut.model_validate(device)


@router.get("", response_model=list[DeviceOut])
def list_devices(
    s: Session = Depends(session), p: Principal = Depends(require("case_director", "dispatcher"))
):
    in_scope = select(Case.id).where(case_filter(p))
    devices = s.scalars(select(Device).where(Device.case_id.in_(in_scope)).order_by(Device.id)
                        .limit(1_000))
    return [DeviceOut.model_validate(d) for d in devices]


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(
    device_id: DeviceId, s: Session = Depends(session),
    p: Principal = Depends(require("case_director", "dispatcher")),
):
    return DeviceOut.model_validate(_scoped(s, p, device_id))


@router.patch("/{device_id}", response_model=DeviceOut)
def update_device(
    device_id: DeviceId, data: DeviceUpdate, s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require("case_director")),
):
    before = _scoped(s, p, device_id).report_interval_s
    device = service.update(s, device_id, data)
    commands = (config_now(s, rt.topics, rt.flow.policy, device, datetime.now(UTC))
                if device.report_interval_s != before else [])
    s.commit()
    rt.dispatcher.send(commands)  # the device is told its new interval
    rt.directory.invalidate(device_id)
    rt.flow.forget_caches([device.case_id])
    return DeviceOut.model_validate(device)
