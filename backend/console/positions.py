"""Victim and offender positions around an alert, for the console map and machine clients.

One track per role: the alerting device's when it has that role, otherwise the case's active
device of the role with the newest fix around the alert (a victim may carry a panic button and
an OwnTracks phone; a device switched off is not shown).

Shown without a reason only while an urgent alert of the case that the reader may see is open
(`backend.audit.guard`); otherwise `?reason=` is required. The trail covers the alert's window,
from `TRAIL_BEFORE` before it was raised until it closed (or now). An alert that releases no
positions itself (a low battery at P3, open for days; one closed) and is read without a reason
while another urgent alert of the case is open gets its trail clipped to what that urgent
alert releases: from `TRAIL_BEFORE` before the earliest of them was raised (`trail_floor`).
Otherwise the urgent alert would release days of the victim's history through the long-open
one. Clipped rather than refused, so that the desk's page of that alert still shows where the
victim is now; the whole window takes a reason, as once nothing urgent is open. Every answer
writes one audit entry per device whose positions it carries."""

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
from backend.audit.guard import releasing_since
from backend.audit.log import LocationRead, record
from backend.auth.errors import ReasonRequired
from backend.auth.scope import location_allowed, reason_given, releases_positions
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
            "last": trail[-1] if trail else None, "trail": trail,
            "_newest": pings[-1].fix_time if pings else None}


def shown_devices(devices: list[Device], alerting_device_id: str | None,
                  role: str) -> list[Device]:
    """The candidates for the track of this role, of a case's devices: the alerting device
    alone when it has this role (its trail is what the alert is about, whether or not it has
    been switched off since), else the case's active devices of the role. Pure."""
    of_role = [d for d in devices if d.role == role]
    alerting = [d for d in of_role if d.id == alerting_device_id]
    return alerting or [d for d in of_role if d.active]


def newest(tracks: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The track with the newest fix (the lowest device id among equals, and among tracks
    without a fix when none has one); None without a track. Pure."""
    if not tracks:
        return None
    ordered = sorted(tracks, key=lambda t: t["device_id"])
    with_fix = [t for t in ordered if t["_newest"] is not None]
    if not with_fix:
        return ordered[0]
    latest = max(t["_newest"] for t in with_fix)
    return next(t for t in with_fix if t["_newest"] == latest)


def _with_alert_fix(track: dict[str, Any] | None, alert: Alert) -> None:
    """The alert's own fix as the last position of the alerting device's track when the trail
    has none as new (an alarm's fix may not be among the device's pings)."""
    if track is None or track["device_id"] != alert.device_id or alert.lat is None \
            or alert.lon is None:
        return
    if track["_newest"] is None or (
            alert.fix_time is not None and track["_newest"] < alert.fix_time):
        track["last"] = {"lat": alert.lat, "lon": alert.lon, "acc_m": alert.acc,
                         "at": _iso(alert.fix_time)}


def _public(track: dict[str, Any] | None) -> dict[str, Any] | None:
    return {k: v for k, v in track.items() if k != "_newest"} if track else None


def trail_floor(*, releases_itself: bool, reason: str | None,
                released_since: datetime | None) -> datetime | None:
    """The earliest fix time a trail read may reach (None: the alert's whole window). Read
    without a reason through another urgent alert of the case (raised first at
    `released_since`), no further back than that alert's own trail would reach; the alert that
    releases positions itself, or a stated reason, opens its whole window. Pure."""
    if releases_itself or reason_given(reason) or released_since is None:
        return None
    return released_since - TRAIL_BEFORE


def trail_window(alert: Alert, now: datetime,
                 floor: datetime | None) -> tuple[datetime, datetime]:
    """From `TRAIL_BEFORE` before the alert was raised (not before `floor`) until it closed,
    or now while it is open. Pure."""
    start = alert.raised_at - TRAIL_BEFORE
    if floor is not None:
        start = max(start, floor)
    return start, alert.closed_at or now


def positions(s: Session, alert: Alert, now: datetime,
              floor: datetime | None = None) -> dict[str, Any]:
    """Pure read: the positions document of an alert (no checks, no audit). One track per
    role: the alerting device's when it has that role, else the case's active device of the
    role with the newest fix in the window (`trail_window`, not before `floor`); devices
    switched off are not shown otherwise. `trail_from` says where the window starts, and
    `trail_clipped` whether `floor` cut it short (a reason would show more)."""
    start, end = trail_window(alert, now, floor)
    devices = list(s.scalars(select(Device).where(Device.case_id == alert.case_id)
                             .order_by(Device.id))) if alert.case_id else []
    chosen: dict[str, dict[str, Any] | None] = {}
    for role in ("victim", "offender"):
        track = newest([_track(s, d, start, end)
                        for d in shown_devices(devices, alert.device_id, role)])
        _with_alert_fix(track, alert)
        chosen[role] = _public(track)
    victim, offender = chosen["victim"], chosen["offender"]
    distance = None
    if victim and offender and victim["last"] and offender["last"]:
        distance = distance_m((victim["last"]["lat"], victim["last"]["lon"]),
                              (offender["last"]["lat"], offender["last"]["lon"]))
    return {"alert_id": str(alert.id), "open": alert.state in OPEN_STATES,
            "victim": victim, "offender": offender, "distance_m": distance,
            "trail_from": _iso(start), "trail_clipped": start > alert.raised_at - TRAIL_BEFORE}


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
    itself = releases_positions(alert.state in OPEN_STATES, alert.priority)
    since = None if itself else releasing_since(s, p, alert.case_id)
    if not location_allowed(alert_open=itself or since is not None, reason=reason):
        raise ReasonRequired(
            "no urgent alert of this case that you may see is open: give ?reason= to read "
            "positions")
    floor = trail_floor(releases_itself=itself, reason=reason, released_since=since)
    document = positions(s, alert, datetime.now(UTC), floor)
    reads = [LocationRead("trail", str(alert.id), alert.case_id, track["device_id"])
             for track in (document["victim"], document["offender"]) if track]
    channel = "console" if getattr(request.state, "via_console", False) else "api"
    record(s, p, reads, reason=reason, channel=channel)
    s.commit()
    return document
