"""Which subscriptions an alert document goes to. Pure.

A subscription matches when every filter it sets matches (an empty list matches everything):
- place: the alert's police unit is in `police_units` or its VR code is in `vr_codes` (when
  both lists are set, either one suffices);
- `alert_types` and `priorities`.
Drill isolation: an exercise alert goes only to `drill` subscriptions, a live alert only to
live ones. Inactive subscriptions get nothing.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, slots=True)
class Filter:
    police_units: Sequence[str] = ()
    vr_codes: Sequence[str] = ()
    alert_types: Sequence[str] = ()
    priorities: Sequence[str] = ()
    active: bool = True
    drill: bool = False


def police_unit(document: Mapping[str, Any]) -> str | None:
    region = document.get("region") or {}
    return document.get("police_unit") or region.get("police_unit")


def vr_code(document: Mapping[str, Any]) -> str | None:
    return (document.get("region") or {}).get("vr_code")


def _place(f: Filter, unit: str | None, vr: str | None) -> bool:
    if not f.police_units and not f.vr_codes:
        return True
    return (unit is not None and unit in f.police_units) or (vr is not None and vr in f.vr_codes)


def matches(f: Filter, document: Mapping[str, Any], unit: str | None = None) -> bool:
    """Whether `document` goes to a subscription with filter `f`. `unit` overrides the police
    unit read from the document (the alert's routed unit, which may be a fallback)."""
    if not f.active:
        return False
    if bool(document.get("exercise")) != f.drill:
        return False
    if f.alert_types and document.get("type") not in f.alert_types:
        return False
    if f.priorities and document.get("priority") not in f.priorities:
        return False
    return _place(f, unit or police_unit(document), vr_code(document))
