"""What the desk must know about an alert beyond its type and place (pure): the alert's flags
that change how to read it (no position, an old position, a wrong device clock, raised without
the case's routing) and the routing's warnings (a recipient it could not name), as catalogue
keys in the order the alert page lists them. Flags and warnings without a notice (grouping
marks such as `supervision` or a desk code) are left out."""

from __future__ import annotations

from collections.abc import Iterable

# Flags of the alert (backend.pipeline.steps, backend.alerts.flows, backend.ingest.worker).
FLAG_NOTICES = (
    "no_fix", "last_known_position", "unstorable", "unreadable", "routing_fallback",
    "police_fallback", "late", "clock_skew", "no_device_time", "test",
)
# Warnings of the routing (backend.routing.route, and where the alert was placed:
# backend.alerts.flows.place_warnings), kept with the escalation plan.
WARNING_NOTICES = (
    "no_police_unit", "no_vt_desk", "no_region", "no_victim_device", "no_three_ro_contact",
    "no_case_director", "place_outside_regions", "place_nearest_municipality",
)
KEYS = tuple(f"alert_note_{name}" for name in (*FLAG_NOTICES, *WARNING_NOTICES))


def alert_notices(flags: Iterable[str] | None, escalation: dict | None) -> list[str]:
    """The catalogue keys of the notices for an alert with these flags and escalation plan."""
    present = set(flags or ())
    warnings = (escalation or {}).get("warnings") or ()
    if isinstance(warnings, list | tuple):
        present.update(w for w in warnings if isinstance(w, str))
    return [f"alert_note_{name}" for name in (*FLAG_NOTICES, *WARNING_NOTICES) if name in present]
