"""Which subscriptions an alert document goes to. Pure.

A subscription matches when every filter it sets matches (an empty list matches everything):
- place: one of the police units told of the alert is in `police_units` (the unit it is
  routed to once the police were told of it, every police unit among its recipients, such as
  the case's home unit of an alert outside the home region, and every unit an escalation step
  called so far; an alert the desk has alone concerns no police unit yet, as a police token of
  its place cannot read it: `backend.auth.scope.routed_unit`), or its VR code is in `vr_codes`
  (that of its location; without one, the case's home region's); when both lists are set,
  either one suffices;
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


def police_units(document: Mapping[str, Any], unit: str | None = None,
                 called: Sequence[str] = ()) -> list[str]:
    """The police units told of an alert: `unit` (its routed unit, None while the desk has it
    alone), those among its recipients, an exercise endpoint by the live unit it stands in
    for, and those its escalation `called` (`backend.alerts.flows.police_told`: their feeds
    hear of every later change, and so do their webhooks)."""
    found = [unit] + [
        r.get("stands_in_for") or r.get("code")
        for r in document.get("recipients") or [] if r.get("kind") == "police_unit"]
    return [u for u in dict.fromkeys([*found, *called]) if u]


def vr_code(document: Mapping[str, Any]) -> str | None:
    """The VR code of the alert's location; without one, of its case's home region."""
    case = document.get("case") or {}
    return (document.get("region") or {}).get("vr_code") or case.get("home_vr_code")


def _place(f: Filter, units: list[str], vr: str | None) -> bool:
    if not f.police_units and not f.vr_codes:
        return True
    return any(u in f.police_units for u in units) or (vr is not None and vr in f.vr_codes)


def matches(f: Filter, document: Mapping[str, Any], unit: str | None = None,
            called: Sequence[str] = ()) -> bool:
    """Whether `document` goes to a subscription with filter `f`. `unit` is the alert's routed
    unit once the police were told of it (it may be a fallback), `called` the units its
    escalation called (see `police_units`)."""
    if not f.active:
        return False
    if bool(document.get("exercise")) != f.drill:
        return False
    if f.alert_types and document.get("type") not in f.alert_types:
        return False
    if f.priorities and document.get("priority") not in f.priorities:
        return False
    return _place(f, police_units(document, unit, called), vr_code(document))
