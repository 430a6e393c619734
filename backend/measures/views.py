"""Thin routers: measures of a case as GeoJSON, and the offender's registered home."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter, Body, Depends
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from backend.api.deps import require, runtime, session
from backend.auth.tokens import Principal
from backend.cases import service as cases
from backend.cases.errors import CaseNotFound
from backend.measures import flows, service
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["measures"])

WRITE = ("case_director",)
READ = ("case_director", "dispatcher")


class HomeIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


def _case(s: Session, p: Principal, case_id: uuid.UUID) -> None:
    """The case must exist and be in the principal's scope (else 404: no existence oracle)."""
    from backend.auth.scoping import may_see_case

    case = cases.get(s, case_id)
    if not may_see_case(s, p, case):
        raise CaseNotFound(f"case {case_id} not found")


def _changed(rt: Runtime) -> None:
    if rt.geofences is not None:
        rt.geofences.mark_changed()


@router.post("/measures", status_code=201)
def import_measures(
    case_id: uuid.UUID, body: Any = Body(...), s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any]:
    """Import a GeoJSON Feature (answered with the stored Feature) or FeatureCollection
    (answered with a FeatureCollection): all measures are stored, or none (422 with reasons)."""
    _case(s, p, case_id)
    rows, collection = flows.create(s, case_id, body, rt.settings.geofence.to_config())
    s.commit()
    _changed(rt)
    return flows.to_collection(rows) if collection else flows.to_feature(rows[0])


@router.get("/measures")
def export_measures(
    case_id: uuid.UUID, include_inactive: bool = False, s: Session = Depends(session),
    p: Principal = Depends(require(*READ)),
) -> dict[str, Any]:
    _case(s, p, case_id)
    return flows.to_collection(service.list_for_case(s, case_id, include_inactive))


@router.get("/measures/{measure_id}")
def get_measure(
    case_id: uuid.UUID, measure_id: str, s: Session = Depends(session),
    p: Principal = Depends(require(*READ)),
) -> dict[str, Any]:
    _case(s, p, case_id)
    return flows.to_feature(service.get(s, case_id, measure_id))


@router.put("/measures/{measure_id}")
def replace_measure(
    case_id: uuid.UUID, measure_id: str, body: Any = Body(...), s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any]:
    _case(s, p, case_id)
    row = flows.replace(s, case_id, measure_id, body, rt.settings.geofence.to_config())
    s.commit()
    _changed(rt)
    return flows.to_feature(row)


@router.delete("/measures/{measure_id}")
def deactivate_measure(
    case_id: uuid.UUID, measure_id: str, s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any]:
    """Deactivate: the measure stops applying and is kept for the record."""
    _case(s, p, case_id)
    row = flows.deactivate(s, case_id, measure_id)
    s.commit()
    _changed(rt)
    return flows.to_feature(row)


@router.put("/offender-home")
def set_offender_home(
    case_id: uuid.UUID, data: HomeIn, s: Session = Depends(session),
    p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any]:
    """Register the offender's home point (zones that contain it need an exception)."""
    _case(s, p, case_id)
    service.set_home(s, case_id, data.lon, data.lat)
    s.commit()
    return {"type": "Point", "coordinates": [data.lon, data.lat]}


@router.get("/offender-home")
def get_offender_home(
    case_id: uuid.UUID, s: Session = Depends(session), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any] | None:
    _case(s, p, case_id)
    home = service.get_home(s, case_id)
    return None if home is None else {"type": "Point", "coordinates": list(home)}
