"""Who may see what: pure decisions on a principal's role and scope.

Scopes (stored with a user or a bearer token):

- dispatcher: ``{"regions": ["VR17", ...]}`` - alerts whose fix lies in one of the safety regions,
  or whose case's home region is one of them; the storm summaries raised for a Veilig Thuis
  desk of those regions (below); cases of those home regions. An alert placed in no region at
  all (no position in a region, no case with a home region, no desk with regions: a panic
  without a fix of a case registered without its home) is every dispatcher's: rather every
  desk than none (`placed_nowhere`);
- police: ``{"units": ["RE07", ...]}`` - alerts routed to one of the units, and the alerts of
  the cases at home in one of them (the home unit is told of an alert outside its region).
  An alert is routed to the police unit of its place (`Alert.police_unit`) only once the
  police were told of it (`Alert.told_police`): a police unit among its recipients at the
  raise (a panic, a zone breach), or an escalation step that called the police carried out.
  One the routing gave the desk alone (an approach, a test press, a silent device or a low
  battery) is not that unit's to read, nor are its victim's and offender's positions; an
  exercise alert counts as told once its exercise endpoint, standing in for the live unit,
  was. Never a storm summary: it has no place and no case to be routed by, so no unit is
  routed to; the unit it carries is only the deployment's fallback;
- case_director: ``{"cases": ["<case reference>", ...]}`` - own cases and their alerts;
- partner: ``{"cases": [...]}`` - the cases of which she is a partner organisation's contact
  person, to read their log (no alert, no position);
- admin: everything.

An empty scope admits nothing: a forgotten scope fails closed.

Storm summaries (`device_silent_storm`: "many devices silent", no case, no device, no position)
are raised for the Veilig Thuis desk named in their `desk:` flag, and are for the dispatchers of
that desk's safety regions: those of the municipalities it serves (the packaged table
`backend/regions/data/gemeente_vt_2025.csv`) and the home regions of the cases at home at that
desk (`Case.home_vt_desk`, which names the desks of its cases' storms). One without a desk, or
for a desk of no known region, is placed nowhere: every dispatcher's. `backend.auth.scoping`
reads a desk's regions (`AlertFacts.desk_regions`).

Region figures (the console's regions page: counts and medians per safety region,
`visible_regions`): an admin every region's; a dispatcher those of her regions; the police those
of the safety regions that lie in their units; a case director or a partner none (their scope
is cases, and a region's figures are made of other cases' alerts).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from backend.auth.errors import InvalidScope
from backend.auth.tokens import Principal
from backend.supervision.grouping import STORM_TYPE

SCOPE_KEYS = {"dispatcher": "regions", "police": "units", "case_director": "cases",
              "partner": "cases"}
# The flag naming the desk a health alert or storm summary is raised for (as
# `backend.supervision.loop.DESK_FLAG` writes it).
DESK_FLAG = "desk:"
_PATTERNS = {
    "regions": re.compile(r"^VR\d{2}$"),
    "units": re.compile(r"^RE\d{2}$"),
    "cases": re.compile(r"^[A-Za-z0-9_-]{3,32}$"),
}


def parse_scope(role: str, text: str | None) -> dict[str, Any]:
    """Turn a comma-separated scope (CLI) into the stored scope of this role."""
    return _scope_of(role, [part.strip() for part in (text or "").split(",") if part.strip()])


def check_scope(role: str, scope: dict[str, Any]) -> dict[str, Any]:
    """The stored scope of this role from one given as JSON (the API): `{}` for an admin, else
    `{key: [items]}` with the role's key only, as `parse_scope` makes it."""
    key = SCOPE_KEYS.get(role)
    if role == "admin" or key is None:
        if scope:
            raise InvalidScope(f"a {role} takes no scope")
        return _scope_of(role, [])
    items = scope.get(key)
    if set(scope) != {key} or not isinstance(items, list) or not all(
            isinstance(i, str) for i in items):
        raise InvalidScope(f"a {role}'s scope is {{\"{key}\": [...]}}")
    return _scope_of(role, items)


def _scope_of(role: str, items: list[str]) -> dict[str, Any]:
    if role == "admin":
        return {}
    key = SCOPE_KEYS.get(role)
    if key is None:
        raise InvalidScope(f"unknown role {role!r}")
    items = sorted(set(items))
    if not items:
        raise InvalidScope(f"a {role} needs a scope: a comma-separated list of {key}")
    bad = [i for i in items if not _PATTERNS[key].match(i)]
    if bad:
        raise InvalidScope(f"not valid {key}: {', '.join(map(ascii, bad))}")
    return {key: items}


def scope_items(p: Principal, key: str) -> frozenset[str]:
    return frozenset(str(v) for v in (p.scope or {}).get(key) or [])


def is_storm(alert_type: object) -> bool:
    """A storm summary: for a desk (`desk_of`), about no case, device or place."""
    return alert_type == STORM_TYPE


def desk_of(flags: object) -> str | None:
    """The desk an alert is raised for (its `desk:` flag), or None."""
    if not isinstance(flags, list):
        return None
    return next((f[len(DESK_FLAG):] for f in flags
                 if isinstance(f, str) and f.startswith(DESK_FLAG) and len(f) > len(DESK_FLAG)),
                None)


def routed_unit(alert_type: object, police_unit: str | None, told_police: bool) -> str | None:
    """The police unit an alert is routed to: the unit of its place (`police_unit`) once the
    police were told of it (`told_police`), none before (the desk has it alone); none for a
    storm summary, whose `police_unit` is the fallback (it has no place and no case to route
    by)."""
    return None if is_storm(alert_type) or not told_police else police_unit


@dataclass(frozen=True, slots=True)
class AlertFacts:
    """What visibility of an alert depends on. `police_unit` is the unit it is routed to
    (`routed_unit`); `desk_regions` the safety regions of the desk a storm summary is for.
    `about_alert` is False for the scope of a case event (no alert): `placed_nowhere` is for
    alerts only."""

    vr_code: str | None
    police_unit: str | None
    case_reference: str | None
    case_home_vr: str | None
    case_home_unit: str | None = None
    desk_regions: frozenset[str] = frozenset()
    about_alert: bool = True


def placed_nowhere(facts: AlertFacts) -> bool:
    """An alert that no region places (no position in one, no case home region, no desk with
    regions), which would otherwise reach no dispatcher at all."""
    return (facts.about_alert and facts.vr_code is None and facts.case_home_vr is None
            and not facts.desk_regions)


def sees_alert(p: Principal, facts: AlertFacts) -> bool:
    if p.role == "admin":
        return True
    if p.role == "dispatcher":
        regions = scope_items(p, "regions")
        if placed_nowhere(facts):
            return bool(regions)  # rather every desk than none
        return bool({facts.vr_code, facts.case_home_vr} & regions - {None}) or bool(
            facts.desk_regions & regions)
    if p.role == "police":
        units = scope_items(p, "units")
        return bool({facts.police_unit, facts.case_home_unit} & units - {None})
    if p.role == "case_director":
        return facts.case_reference is not None and facts.case_reference in scope_items(p, "cases")
    return False


def sees_case(p: Principal, *, reference: str, home_vr: str | None,
              alert_vr_codes: frozenset[str] = frozenset()) -> bool:
    """A dispatcher sees the cases of her home regions and those with an alert in her regions."""
    if p.role == "admin":
        return True
    if p.role == "dispatcher":
        regions = scope_items(p, "regions")
        return (home_vr in regions) or bool(alert_vr_codes & regions)
    if p.role in ("case_director", "partner"):
        return reference in scope_items(p, "cases")
    return False


def visible_regions(
    p: Principal, safety_regions_by_unit: Mapping[str, frozenset[str]]
) -> frozenset[str] | None:
    """The safety regions whose figures this principal may see (None: every region), given
    the safety regions of each police unit (`RegionIndex.safety_regions_by_police_unit`)."""
    if p.role == "admin":
        return None
    if p.role == "dispatcher":
        return scope_items(p, "regions")
    if p.role == "police":
        return frozenset().union(*(safety_regions_by_unit.get(unit, frozenset())
                                   for unit in scope_items(p, "units")))
    return frozenset()


# The priorities of an open alert that releases its case's positions without a reason. A health
# alert (a low battery, a silent device: P3) stays open until the desk closes it, often days:
# it does not make the victim's movements readable for as long.
RELEASING_PRIORITIES = frozenset({"P1", "P2"})


def releases_positions(state_open: bool, priority: str | None) -> bool:
    """Whether an alert releases its case's positions (`location_allowed`): open and urgent."""
    return state_open and priority in RELEASING_PRIORITIES


def reason_given(reason: str | None) -> bool:
    """Whether a reader stated a reason for reading positions (blank is none)."""
    return bool(reason and reason.strip())


def location_allowed(*, alert_open: bool, reason: str | None) -> bool:
    """Data minimisation: positions are shown while an urgent alert of the case that the
    reader may see is open (`releases_positions`); otherwise only with a stated reason (which
    the audit log keeps)."""
    return alert_open or reason_given(reason)


def on_behalf_of(p: Principal) -> str:
    """The organisation on whose behalf a principal reads (for the audit log)."""
    if p.role == "admin":
        return "admin"
    key = SCOPE_KEYS.get(p.role, "")
    items = sorted(scope_items(p, key))
    return f"{p.role}:{','.join(items)}" if items else p.role
