"""The scope decisions of `backend.auth.scope` as SQL filters (for lists) and as loaders.

Own cases: besides the references in her scope, a case director sees (and changes) every case
whose `case_director` column names her: the user name of a console account (`user:` removed from
the principal name), or the full principal name of a bearer token (`token:<name>`). A case
director who creates a case is recorded as its case director, so she sees what she creates.

Case log: whoever sees the case reads its log (a partner organisation's contact person the
log of the cases in her scope); the police also read the log of a case with an alert routed to
one of their units, once the police were told of it (`routed_unit`; the kinds they read are
limited by `backend.caselog.views`).

Case notices (a release from detention, pursuit mode; the console's queue page, live and
standing): whoever sees the case, and the police of the case's home unit, who cannot open the
case page (`opens_case_pages`).

Storm summaries: a desk's safety regions (`desk_regions`) are those of the municipalities it
serves in the packaged table, and the home regions of the cases at home at that desk. In SQL
the desk is found in the alert's flags as text (`"desk:<code>"`, quoted as JSON writes it):
exact on PostgreSQL; SQLite's LIKE (the embedded deployment) ignores the case of ASCII letters.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Mapping
from types import MappingProxyType

from sqlalchemy import (
    ColumnElement,
    String,
    and_,
    cast,
    false,
    func,
    literal,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.orm import Session

from backend.alerts.models import Alert
from backend.auth.scope import (
    DESK_FLAG,
    AlertFacts,
    desk_of,
    is_storm,
    routed_unit,
    scope_items,
    sees_alert,
    sees_case,
)
from backend.auth.tokens import Principal
from backend.cases.models import Case
from backend.supervision.grouping import STORM_TYPE


def person_id(p: Principal) -> str:
    """The name a case's `case_director` column holds for this principal."""
    return p.name.removeprefix("user:")


def directs(p: Principal, case_director: str | None) -> bool:
    """A case director directs the cases that name her as their case director."""
    return p.role == "case_director" and case_director is not None and (
        case_director == person_id(p))


def _alert_vr():
    return Alert.region["vr_code"].as_string()


@functools.cache
def _regions_by_desk() -> Mapping[str, frozenset[str]]:
    """Veilig Thuis desk code -> the safety regions of the municipalities it serves (the
    packaged tables the region index is built from; read once)."""
    from backend.regions import data_files
    from backend.regions.vt_table import read_vt_table

    desk_of_municipality = read_vt_table()
    found: dict[str, set[str]] = {}
    for row in data_files.municipality_region_rows():
        desk = desk_of_municipality.get(row.gemeente_code)
        if desk:
            found.setdefault(desk, set()).add(row.vr_code)
    return MappingProxyType({desk: frozenset(codes) for desk, codes in found.items()})


def desks_serving(regions: Collection[str]) -> frozenset[str]:
    """The desks that serve a municipality in one of these safety regions (packaged table)."""
    wanted = frozenset(regions)
    return frozenset(desk for desk, codes in _regions_by_desk().items() if codes & wanted)


def desk_regions(s: Session, desk: str) -> frozenset[str]:
    """The safety regions of a desk: where it serves municipalities, and the home regions of
    the cases at home at it."""
    homes = s.scalars(select(Case.home_vr_code).where(
        Case.home_vt_desk == desk, Case.home_vr_code.is_not(None)).distinct())
    return _regions_by_desk().get(desk, frozenset()) | frozenset(homes)


def _like_literal(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _like_column(column: ColumnElement[str]) -> ColumnElement[str]:
    return func.replace(func.replace(func.replace(column, "\\", "\\\\"), "%", "\\%"),
                        "_", "\\_")


def _storm_filter(regions: list[str], *, any_home_region: bool = False) -> ColumnElement[bool]:
    """The storm summaries raised for a desk of these safety regions (`desk_regions`); with
    `any_home_region`, also those of a desk at which a case of any home region is at home."""
    flags = cast(Alert.flags, String)
    served = [flags.like(f'%"{DESK_FLAG}{_like_literal(desk)}"%', escape="\\")
              for desk in sorted(desks_serving(regions))]
    at_home = select(Case.id).where(
        Case.home_vr_code.is_not(None) if any_home_region else Case.home_vr_code.in_(regions),
        Case.home_vt_desk.is_not(None),
        flags.like(literal(f'%"{DESK_FLAG}') + _like_column(Case.home_vt_desk) + literal('"%'),
                   escape="\\"),
    ).correlate(Alert).exists()
    return and_(Alert.type == STORM_TYPE, or_(*served, at_home))


def _placed_nowhere() -> ColumnElement[bool]:
    """The alerts `placed_nowhere` admits: no region of their own, no case with a home region,
    and for a storm summary no desk of a known region (`desk_regions`)."""
    at_home = select(Case.id).where(Case.home_vr_code.is_not(None))
    any_desk = _storm_filter(sorted(frozenset().union(*_regions_by_desk().values())),
                             any_home_region=True)
    return and_(or_(Alert.region.is_(None), _alert_vr().is_(None)),
                or_(Alert.case_id.is_(None), Alert.case_id.not_in(at_home)),
                not_(any_desk))


def alert_filter(p: Principal) -> ColumnElement[bool]:
    """A WHERE clause that admits exactly the alerts `sees_alert` admits."""
    if p.role == "admin":
        return true()
    if p.role == "dispatcher":
        regions = sorted(scope_items(p, "regions"))
        if not regions:
            return false()
        home = select(Case.id).where(Case.home_vr_code.in_(regions))
        return or_(and_(Alert.region.is_not(None), _alert_vr().in_(regions)),
                   Alert.case_id.in_(home), _storm_filter(regions), _placed_nowhere())
    if p.role == "police":
        units = sorted(scope_items(p, "units"))
        if not units:
            return false()
        home = select(Case.id).where(Case.home_police_unit.in_(units))
        routed = and_(Alert.police_unit.in_(units), Alert.told_police, Alert.type != STORM_TYPE)
        return or_(routed, Alert.case_id.in_(home))
    if p.role == "case_director":
        return Alert.case_id.in_(select(Case.id).where(case_filter(p)))
    return false()


def case_filter(p: Principal) -> ColumnElement[bool]:
    """A WHERE clause on Case that admits exactly the cases `sees_case` admits."""
    if p.role == "admin":
        return true()
    if p.role == "dispatcher":
        regions = sorted(scope_items(p, "regions"))
        if not regions:
            return false()
        alerted = select(Alert.case_id).where(
            Alert.region.is_not(None), _alert_vr().in_(regions), Alert.case_id.is_not(None))
        return or_(Case.home_vr_code.in_(regions), Case.id.in_(alerted))
    if p.role == "case_director":
        cases = sorted(scope_items(p, "cases"))
        own = Case.case_director == person_id(p)
        return or_(Case.reference.in_(cases), own) if cases else own
    if p.role == "partner":
        cases = sorted(scope_items(p, "cases"))
        return Case.reference.in_(cases) if cases else false()
    return false()


def case_notice_filter(p: Principal) -> ColumnElement[bool]:
    """A WHERE clause on Case that admits exactly the cases `receives_case_notices` admits."""
    if p.role == "police":
        units = sorted(scope_items(p, "units"))
        return Case.home_police_unit.in_(units) if units else false()
    return case_filter(p)


def receives_case_notices(s: Session, p: Principal, case: Case) -> bool:
    if p.role == "police":
        return case.home_police_unit is not None and (
            case.home_police_unit in scope_items(p, "units"))
    return may_see_case(s, p, case)


def opens_case_pages(p: Principal) -> bool:
    """Whether the console's case pages can show this principal any case at all."""
    return p.role in ("admin", "dispatcher", "case_director", "partner")


def reads_devices(p: Principal) -> bool:
    """Whether the devices of the cases in scope are this principal's to see (the device
    board, as the devices API: not the police, not a partner)."""
    return p.role in ("admin", "dispatcher", "case_director")


def reads_alerts(p: Principal) -> bool:
    """Whether any alert is this principal's to read (a partner reads case logs only)."""
    return p.role in ("admin", "dispatcher", "police", "case_director")


def alert_facts(s: Session, alert: Alert) -> AlertFacts:
    case = s.get(Case, alert.case_id) if alert.case_id else None
    desk = desk_of(alert.flags) if is_storm(alert.type) else None
    return AlertFacts(
        vr_code=(alert.region or {}).get("vr_code"),
        police_unit=routed_unit(alert.type, alert.police_unit, alert.told_police),
        case_reference=case.reference if case else None,
        case_home_vr=case.home_vr_code if case else None,
        case_home_unit=case.home_police_unit if case else None,
        desk_regions=desk_regions(s, desk) if desk else frozenset(),
    )


def may_see_alert(s: Session, p: Principal, alert: Alert) -> bool:
    if sees_alert(p, alert_facts(s, alert)):
        return True
    if p.role != "case_director" or alert.case_id is None:
        return False
    case = s.get(Case, alert.case_id)
    return case is not None and directs(p, case.case_director)


def may_see_case(s: Session, p: Principal, case: Case) -> bool:
    if directs(p, case.case_director):
        return True
    if p.role in ("admin", "case_director", "partner"):
        return sees_case(p, reference=case.reference, home_vr=case.home_vr_code)
    vr_codes = frozenset(
        code for code in s.scalars(
            select(_alert_vr()).where(Alert.case_id == case.id, Alert.region.is_not(None)))
        if code
    )
    return sees_case(p, reference=case.reference, home_vr=case.home_vr_code,
                     alert_vr_codes=vr_codes)


def may_read_case_log(s: Session, p: Principal, case: Case) -> bool:
    """Whoever sees the case; the police for a case with an alert routed to one of their units
    (`routed_unit`: the police were told of it)."""
    if p.role != "police":
        return may_see_case(s, p, case)
    units = sorted(scope_items(p, "units"))
    return bool(units) and s.scalar(
        select(Alert.id).where(Alert.case_id == case.id, Alert.police_unit.in_(units),
                               Alert.told_police).limit(1)
    ) is not None
