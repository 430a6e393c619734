"""The alert document: the JSON every police channel carries (MQTT feed, webhook data) and the
console shows. Schema `schildwacht.alert/1`; see docs/protocol.md."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from backend.alerts.models import Alert

SCHEMA = "schildwacht.alert/1"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def alert_document(
    alert: Alert,
    *,
    device_role: str | None,
    case: dict[str, Any] | None = None,
) -> dict[str, Any]:
    location = None
    if alert.lat is not None and alert.lon is not None:
        location = {
            "lat": alert.lat,
            "lon": alert.lon,
            "acc_m": alert.acc,
            "fix_time": _iso(alert.fix_time),
            "source": alert.location_source,
        }
    return {
        "schema": SCHEMA,
        "alert_id": str(alert.id),
        "sequence": alert.sequence,
        "type": alert.type,
        "priority": alert.priority,
        "state": alert.state,
        "raised_at": _iso(alert.raised_at),
        "updated_at": _iso(alert.updated_at),
        "message_id": alert.message_id,
        "device": {"id": alert.device_id, "role": device_role} if alert.device_id else None,
        "flags": list(alert.flags or []),
        "location": location,
        "region": alert.region,
        "exercise": alert.exercise,
        # Who the routing policy sends the alert to (backend.routing.Recipient as JSON).
        "recipients": list(alert.recipients or []),
        # pending | delivered | unreachable ("police not reached: phone the control room") |
        # failed | None; the console shows it, webhook bodies leave it out.
        "police_delivery": alert.police_delivery,
        "case": case,
    }


# Parts of the alert document that are for the console only.
CONSOLE_ONLY = frozenset({"police_delivery"})
# What of the alert's region a reader keeps when its position is withheld or not asked for: who
# the alert is routed to, not the municipality it came from (in a small one, close to a place).
REGION_WITHOUT_POSITION = ("police_unit", "police_unit_name", "vr_code", "vt_desk_code")


def without_position(document: dict[str, Any]) -> dict[str, Any]:
    """The document without its position: `location` null and the region reduced to
    `REGION_WITHOUT_POSITION`. A new dict; the given one is left as it was. Pure."""
    region = document.get("region")
    if isinstance(region, dict):
        region = {key: region[key] for key in REGION_WITHOUT_POSITION if key in region}
    return {**document, "location": None, "region": region}


def police_document(document: dict[str, Any]) -> dict[str, Any]:
    """The alert document as the police receive it (their MQTT feed and webhooks)."""
    return {k: v for k, v in document.items() if k not in CONSOLE_ONLY}
