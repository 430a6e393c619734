"""Events of the geofence engine: what the pipeline turns into alerts (or clears)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

EventKind = Literal[
    "zone_breach",
    "approach",
    "proximity",
    "zone_breach_cleared",
    "approach_cleared",
    "proximity_cleared",
    "partner_position_unknown",
]
EVENT_KINDS: tuple[str, ...] = (
    "zone_breach",
    "approach",
    "proximity",
    "zone_breach_cleared",
    "approach_cleared",
    "proximity_cleared",
    "partner_position_unknown",
)
Confidence = Literal["possible", "confirmed"]

# Why an event was raised:
#   fix        the fix itself (and its accuracy circle) is where the event says
#   segment    the straight segment between two sparse fixes crosses the zone
#   repeated   confirmed fixes in the zone again and again within a window, not in a row
#   exception  the offender is in an allowed exception (corridor, court date)
#   inactive   the measure went out of its validity period or weekly time window
#   partner    the partner's position is missing or older than allowed (contact ban)
Basis = Literal["fix", "segment", "repeated", "exception", "inactive", "partner"]


@dataclass(frozen=True, slots=True)
class GeofenceEvent:
    """One transition of a (device, measure) pair.

    `device_id` is always the offender's device; `other_device_id` the victim's device for
    contact bans. `at` is the fix time (Unix seconds). `distance_m` is the distance to the zone
    (0 when inside) or, for contact bans, the distance to the victim; `inside_m` how deep inside
    the zone (or within the ban radius) the fix is. Both are None when unknown.
    """

    kind: EventKind
    measure_id: str
    case_id: str
    device_id: str
    at: float
    confidence: Confidence
    distance_m: float | None
    inside_m: float | None
    other_device_id: str | None = None
    basis: Basis = "fix"

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
