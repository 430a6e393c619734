"""Places and GeoJSON features for the measure tests (Rotterdam, RD New squares)."""

from __future__ import annotations

import uuid
from typing import Any

from geofences.projection import projection_for

from backend.cases.models import Case
from backend.devices.models import Device

ROTTERDAM = (51.9244, 4.4690)  # (lat, lon), Rotterdam Centraal
offset = projection_for("EPSG:28992").offset  # (lat, lon) moved east_m, north_m metres


def square(lat: float, lon: float, half_m: float) -> list[list[float]]:
    """A closed (lon, lat) ring of a square of 2*half_m metres around (lat, lon)."""
    corners = [(-half_m, -half_m), (half_m, -half_m), (half_m, half_m), (-half_m, half_m),
               (-half_m, -half_m)]
    ring = []
    for e, n in corners:
        la, lo = offset(lat, lon, e, n)
        ring.append([lo, la])
    return ring


def zone_feature(offender: str, *, centre=ROTTERDAM, half_m: float = 200.0,
                 measure_id: str | None = None, **props: Any) -> dict[str, Any]:
    feature: dict[str, Any] = {
        "type": "Feature",
        "geometry": {"type": "Polygon", "coordinates": [square(*centre, half_m)]},
        "properties": {"kind": "exclusion_zone", "subject_device_ids": [offender],
                       "authority": "Rechtbank Rotterdam", "reference": "C/10/123456",
                       "pre_alert_m": 0, **props},
    }
    if measure_id:
        feature["id"] = measure_id
    return feature


def ban_feature(offender: str, victim: str, radius_m: float = 500.0,
                measure_id: str | None = None, **props: Any) -> dict[str, Any]:
    feature: dict[str, Any] = {
        "type": "Feature", "geometry": None,
        "properties": {"kind": "contact_ban", "subject_device_ids": [offender],
                       "protected_device_ids": [victim], "radius_m": radius_m,
                       "pre_alert_m": 0, **props},
    }
    if measure_id:
        feature["id"] = measure_id
    return feature


def register_pair(stack, offender: str, victim: str) -> uuid.UUID:
    """A case with one offender and one victim device."""
    with stack.runtime.sessions.begin() as s:
        case = Case(reference=f"C-{uuid.uuid4().hex[:8]}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id=offender, case_id=case.id, role="offender"))
        s.add(Device(id=victim, case_id=case.id, role="victim"))
        return case.id
