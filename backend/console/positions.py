"""Victim and offender positions around an alert, for the console map and machine clients.

Shown without a reason only while an alert of the case is open; otherwise `?reason=` is
required. Every answer writes one audit entry per device whose positions it carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi import APIRouter, Depends, Query, Request
from pyproj import Geod
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.alerts.errors import AlertNotFound
from backend.alerts.lifecycle import OPEN_STATES
from backend.alerts.models import Alert
from backend.api.deps import require, session
from backend.api.text import free_text
from backend.audit.guard import cases_with_open_alerts
from backend.audit.log import LocationRead, record
from backend.auth.errors import ReasonRequired
from backend.auth.scope import location_allowed
from backend.auth.scoping import may_see_alert
from backend.auth.tokens import Principal
from backend.devices.models import Device, Ping

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])

TRAIL_BEFORE = timedelta(minutes=15)
TRAIL_MAX_POINTS = 2_000
_geod = Geod(ellps="WGS84")


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Geodesic distance in metres between two (lat, lon) points."""
    _, _, metres = _geod.inv(a[1], a[0], b[1], b[0])
    return round(float(metres), 1)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _track(s: Session, device: Device, start: datetime, end: datetime) -> dict[str, Any]:
    pings = list(s.scalars(
        select(Ping).where(Ping.device_id == device.id, Ping.fix_time >= start,
                           Ping.fix_time <= end)
        .order_by(Ping.fix_time.desc()).limit(TRAIL_MAX_POINTS)
    ))
    pings.reverse()
    trail = [{"lat": p.lat, "lon": p.lon, "acc_m": p.acc, "at": _iso(p.fix_time)} for p in pings]
    return {"device_id": device.id, "role": device.role,
            "last": trail[-1] if trail else None, "trail": trail}


def positions(s: Session, alert: Alert, now: datetime) -> dict[str, Any]:
    """Pure read: the positions document of an alert (no checks, no audit)."""
    start = alert.raised_at - TRAIL_BEFORE
    end = alert.closed_at or now
    devices = list(s.scalars(select(Device).where(Device.case_id == alert.case_id)
                             .order_by(Device.id))) if alert.case_id else []
    tracks = {d.role: _track(s, d, start, end) for d in devices}
    victim = tracks.get("victim")
    if alert.lat is not None and alert.lon is not None and victim is not None and (
        victim["last"] is None or alert.device_id == victim["device_id"]
        and (victim["last"]["at"] or "") < (_iso(alert.fix_time) or "")
    ):
        victim["last"] = {"lat": alert.lat, "lon": alert.lon, "acc_m": alert.acc,
                          "at": _iso(alert.fix_time)}
    offender = tracks.get("offender")
    distance = None
    if victim and offender and victim["last"] and offender["last"]:
        distance = distance_m((victim["last"]["lat"], victim["last"]["lon"]),
                              (offender["last"]["lat"], offender["last"]["lon"]))
    return {"alert_id": str(alert.id), "open": alert.state in OPEN_STATES,
            "victim": victim, "offender": offender, "distance_m": distance}


@router.get("/{alert_id}/positions")
def alert_positions(
    request: Request, alert_id: uuid.UUID,
    reason: free_text(500) | None = Query(None),
    s: Session = Depends(session),
    p: Principal = Depends(require("dispatcher", "police", "case_director")),
) -> dict[str, Any]:
    alert = alerts_service.get(s, alert_id)
    if alert is None or not may_see_alert(s, p, alert):
        raise AlertNotFound(f"alert {alert_id} not found")
    is_open = alert.state in OPEN_STATES or (
        alert.case_id is not None and alert.case_id in cases_with_open_alerts(s, {alert.case_id}))
    if not location_allowed(alert_open=is_open, reason=reason):
        raise ReasonRequired("no alert of this case is open: give ?reason= to read positions")
    document = positions(s, alert, datetime.now(UTC))
    reads = [LocationRead("trail", str(alert.id), alert.case_id, track["device_id"])
             for track in (document["victim"], document["offender"]) if track]
    channel = "console" if getattr(request.state, "via_console", False) else "api"
    record(s, p, reads, reason=reason, channel=channel)
    s.commit()
    return document
