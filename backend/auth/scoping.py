"""The scope decisions of `backend.auth.scope` as SQL filters (for lists) and as loaders."""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, and_, false, or_, select, true
from sqlalchemy.orm import Session

from backend.alerts.models import Alert
from backend.auth.scope import AlertFacts, scope_items, sees_alert, sees_case
from backend.auth.tokens import Principal
from backend.cases.models import Case


def _alert_vr():
    return Alert.region["vr_code"].as_string()


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
                   Alert.case_id.in_(home))
    if p.role == "police":
        units = sorted(scope_items(p, "units"))
        return Alert.police_unit.in_(units) if units else false()
    if p.role == "case_director":
        cases = sorted(scope_items(p, "cases"))
        if not cases:
            return false()
        return Alert.case_id.in_(select(Case.id).where(Case.reference.in_(cases)))
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
        return Case.reference.in_(cases) if cases else false()
    return false()


def alert_facts(s: Session, alert: Alert) -> AlertFacts:
    case = s.get(Case, alert.case_id) if alert.case_id else None
    return AlertFacts(
        vr_code=(alert.region or {}).get("vr_code"),
        police_unit=alert.police_unit,
        case_reference=case.reference if case else None,
        case_home_vr=case.home_vr_code if case else None,
    )


def may_see_alert(s: Session, p: Principal, alert: Alert) -> bool:
    return sees_alert(p, alert_facts(s, alert))


def may_see_case(s: Session, p: Principal, case: Case) -> bool:
    if p.role in ("admin", "case_director"):
        return sees_case(p, reference=case.reference, home_vr=case.home_vr_code)
    vr_codes = frozenset(
        code for code in s.scalars(
            select(_alert_vr()).where(Alert.case_id == case.id, Alert.region.is_not(None)))
        if code
    )
    return sees_case(p, reference=case.reference, home_vr=case.home_vr_code,
                     alert_vr_codes=vr_codes)


def has_open_alert(s: Session, case_id: uuid.UUID | None) -> bool:
    from backend.alerts.lifecycle import OPEN_STATES

    if case_id is None:
        return False
    return s.scalar(
        select(Alert.id).where(Alert.case_id == case_id, Alert.state.in_(sorted(OPEN_STATES)))
        .limit(1)
    ) is not None
