"""Thin routers: measures of a case as GeoJSON, and the offender's registered home.

Zones and protected places (a victim's home, school, work) are location data: every answer that
carries a measure's geometry or the offender's home writes one audit entry per measure (or
home), in the answer's transaction; a read may give `?reason=`, which the entry keeps."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from geofences import Problem
from backend.api.deps import require, runtime, session
from backend.api.text import free_text
from backend.audit.guard import cases_with_open_alerts
from backend.audit.log import LocationRead, record
from backend.auth.errors import ReasonRequired
from backend.auth.scope import location_allowed
from backend.auth.tokens import Principal
from backend.cases import service as cases
from backend.cases.errors import CaseNotFound
from backend.measures import flows, homes, service
from backend.measures.errors import MeasureRejected
from backend.measures.models import MeasureRow
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/cases/{case_id}", tags=["measures"])

WRITE = ("case_director",)
READ = ("case_director", "dispatcher")
# Bytes of a GeoJSON body to import or replace: a measure has at most
# `geofences.geojson.MAX_VERTICES` positions (some 400 KB as JSON); a larger collection is
# imported in parts.
MAX_BODY_BYTES = 4 * 1024 * 1024


class HomeIn(BaseModel):
    lat: float = Field(ge=-90, le=90)
    lon: float = Field(ge=-180, le=180)


def _case(s: Session, p: Principal, case_id: uuid.UUID) -> None:
    """The case must exist and be in the principal's scope (else 404: no existence oracle)."""
    from backend.auth.scoping import may_see_case

    case = cases.get(s, case_id)
    if not may_see_case(s, p, case):
        raise CaseNotFound(f"case {case_id} not found")


def _channel(request: Request) -> str:
    return "console" if getattr(request.state, "via_console", False) else "api"


def _protected(row: MeasureRow) -> str | None:
    """The protected device named by the measure, if any (the case names the data subject)."""
    return row.protected_device_ids[0] if row.protected_device_ids else None


def _may_read_places(s: Session, p: Principal, case_id: uuid.UUID, rows: list[MeasureRow],
                     reason: str | None) -> None:
    """A measure's geometry says where the victim lives, works or goes to school: a dispatcher
    reads it as she reads the victim's positions, while an alert of the case that she may see
    is open, or with a reason (ReasonRequired otherwise). Case directors, who manage the
    measures, and administrators read them as they are; every read is audited."""
    if p.role != "dispatcher" or not any(row.geometry is not None for row in rows):
        return
    is_open = case_id in cases_with_open_alerts(s, p, {case_id})
    if not location_allowed(alert_open=is_open, reason=reason):
        raise ReasonRequired("no urgent alert of this case that you may see is open: give ?reason= "
                             "to read its measures' places")


def _audit(
    s: Session, p: Principal, request: Request, case_id: uuid.UUID, rows: list[MeasureRow],
    reason: str | None = None,
) -> None:
    """One audit entry per measure with a geometry in the answer (the caller commits)."""
    reads = [LocationRead("measure", row.id, case_id, _protected(row))
             for row in rows if row.geometry is not None]
    record(s, p, reads, reason=reason, channel=_channel(request))


def _audit_home(
    s: Session, p: Principal, request: Request, case_id: uuid.UUID, reason: str | None = None,
) -> None:
    record(s, p, [LocationRead("offender_home", str(case_id), case_id, None)], reason=reason,
           channel=_channel(request))


async def geojson_body(request: Request) -> Any:
    """The request's JSON body, read up to `MAX_BODY_BYTES` (413 beyond: nothing is parsed or
    stored); a body that is not JSON is a 422 naming `body`."""
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > MAX_BODY_BYTES:
        raise _too_large()
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise _too_large()
        chunks.append(chunk)
    try:
        return json.loads(b"".join(chunks))
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError
        raise MeasureRejected([Problem("invalid_field", "body", "expected a JSON body")]) from None


def _too_large() -> HTTPException:
    return HTTPException(
        413, f"a measures body has at most {MAX_BODY_BYTES} bytes: import a larger collection "
             "in parts")


def _changed(rt: Runtime) -> None:
    if rt.geofences is not None:
        rt.geofences.mark_changed()


@router.post("/measures", status_code=201)
def import_measures(
    request: Request, case_id: uuid.UUID, s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
    body: Any = Depends(geojson_body),
) -> dict[str, Any]:
    """Import a GeoJSON Feature (answered with the stored Feature) or FeatureCollection
    (answered with a FeatureCollection): all measures are stored, or none (422 with reasons).
    The answer is made before the commit: should it fail, nothing is stored."""
    _case(s, p, case_id)
    rows, collection = flows.create(s, case_id, body, rt.settings.geofence.to_config())
    flows.log_change(s, rows, "imported", p.name)
    _audit(s, p, request, case_id, rows)
    out = flows.to_collection(rows) if collection else flows.to_feature(rows[0])
    s.commit()
    _changed(rt)
    return out


@router.get("/measures")
def export_measures(
    request: Request, case_id: uuid.UUID, include_inactive: bool = False,
    reason: free_text(500) | None = Query(None), s: Session = Depends(session),
    p: Principal = Depends(require(*READ)),
) -> dict[str, Any]:
    _case(s, p, case_id)
    rows = service.list_for_case(s, case_id, include_inactive)
    _may_read_places(s, p, case_id, rows, reason)
    out = flows.to_collection(rows)
    _audit(s, p, request, case_id, rows, reason)
    s.commit()
    return out


@router.get("/measures/{measure_id}")
def get_measure(
    request: Request, case_id: uuid.UUID, measure_id: free_text(64),
    reason: free_text(500) | None = Query(None), s: Session = Depends(session),
    p: Principal = Depends(require(*READ)),
) -> dict[str, Any]:
    _case(s, p, case_id)
    row = service.get(s, case_id, measure_id)
    _may_read_places(s, p, case_id, [row], reason)
    out = flows.to_feature(row)
    _audit(s, p, request, case_id, [row], reason)
    s.commit()
    return out


@router.put("/measures/{measure_id}")
def replace_measure(
    request: Request, case_id: uuid.UUID, measure_id: free_text(64),
    s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
    body: Any = Depends(geojson_body),
) -> dict[str, Any]:
    _case(s, p, case_id)
    row = flows.replace(s, case_id, measure_id, body, rt.settings.geofence.to_config())
    flows.log_change(s, [row], "replaced", p.name)
    _audit(s, p, request, case_id, [row])
    out = flows.to_feature(row)
    s.commit()
    _changed(rt)
    return out


@router.delete("/measures/{measure_id}")
def deactivate_measure(
    request: Request, case_id: uuid.UUID, measure_id: free_text(64),
    s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any]:
    """Deactivate: the measure stops applying and is kept for the record."""
    _case(s, p, case_id)
    row = flows.deactivate(s, case_id, measure_id)
    flows.log_change(s, [row], "deactivated", p.name)
    _audit(s, p, request, case_id, [row])
    out = flows.to_feature(row)
    s.commit()
    _changed(rt)
    return out


@router.put("/offender-home")
def set_offender_home(
    request: Request, case_id: uuid.UUID, data: HomeIn, s: Session = Depends(session),
    rt: Runtime = Depends(runtime), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any]:
    """Register the offender's home point, or move it. A measure standing (in force or to
    come) whose zone or pre-alert ring lies within exit margin and default accuracy of it, and
    no exception of which contains it, refuses the home: 422 naming each such measure, nothing
    stored or audited (`homes.register`)."""
    _case(s, p, case_id)
    homes.register(s, case_id, data.lon, data.lat, rt.settings.geofence.to_config(), time.time())
    _audit_home(s, p, request, case_id)
    s.commit()
    return {"type": "Point", "coordinates": [data.lon, data.lat]}


@router.get("/offender-home")
def get_offender_home(
    request: Request, case_id: uuid.UUID, reason: free_text(500) | None = Query(None),
    s: Session = Depends(session), p: Principal = Depends(require(*WRITE)),
) -> dict[str, Any] | None:
    _case(s, p, case_id)
    home = service.get_home(s, case_id)
    if home is None:
        return None
    _audit_home(s, p, request, case_id, reason)
    s.commit()
    return {"type": "Point", "coordinates": list(home)}
