"""Whether a case's home region names places that exist (pure).

The home region routes every alert of the case that has no position, and adds the home unit
and desk to those elsewhere: a code that matches its pattern but names no unit, safety region
or desk (`RE99`, a desk mistyped) would route such an alert to nobody. Each code given must be
one the region data knows.
"""

from __future__ import annotations

from collections.abc import Mapping

from backend.regions import RegionIndex

FIELDS = ("home_police_unit", "home_vr_code", "home_vt_desk")


def unknown_home_codes(given: Mapping[str, object], regions: RegionIndex) -> list[str]:
    """`field: code` for each home code given (not None) that the region data does not know."""
    known = {
        "home_police_unit": {u.code for u in regions.police_units()},
        "home_vr_code": {m.vr_code for m in regions.municipalities()},
        "home_vt_desk": {d.code for d in regions.vt_desks()},
    }
    return [f"{name}: {given[name]}" for name in FIELDS
            if given.get(name) is not None and given[name] not in known[name]]
