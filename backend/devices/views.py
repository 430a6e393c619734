from __future__ import annotations

from fastapi import APIRouter, Depends
from sqlalchemy.orm import Session

from backend.api.deps import require, runtime, session
from backend.devices import service
from backend.devices.schemas import DeviceCreate, DeviceOut, DeviceUpdate
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/devices", tags=["devices"])


@router.post("", status_code=201, response_model=DeviceOut)
def register_device(
    data: DeviceCreate, s: Session = Depends(session), rt: Runtime = Depends(runtime),
    _=Depends(require("case_director")),
):
    device = service.register(s, data)
    s.commit()
    rt.directory.invalidate(device.id)
    return DeviceOut.model_validate(device)


@router.get("", response_model=list[DeviceOut])
def list_devices(s: Session = Depends(session), _=Depends(require("case_director", "dispatcher"))):
    return [DeviceOut.model_validate(d) for d in service.list_all(s)]


@router.get("/{device_id}", response_model=DeviceOut)
def get_device(
    device_id: str, s: Session = Depends(session), _=Depends(require("case_director", "dispatcher"))
):
    return DeviceOut.model_validate(service.get(s, device_id))


@router.patch("/{device_id}", response_model=DeviceOut)
def update_device(
    device_id: str, data: DeviceUpdate, s: Session = Depends(session),
    rt: Runtime = Depends(runtime), _=Depends(require("case_director")),
):
    device = service.update(s, device_id, data)
    s.commit()
    rt.directory.invalidate(device_id)
    return DeviceOut.model_validate(device)
