"""Data minimisation at the edge: alert documents leave the server with a position only while an
alert of the case that the reader may see is open, or with a stated reason; every position that
leaves is audited.

An open alert the reader may not see (another region's, or one routed to another unit) releases
nothing to her: it is not hers to know of, and would otherwise show her the case's positions
for as long as it stays open."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from backend.alerts.lifecycle import OPEN_STATES
from backend.alerts.document import without_position
from backend.alerts.models import Alert
from backend.audit.log import LocationRead, record
from backend.auth.scope import (
    RELEASING_PRIORITIES,
    AlertFacts,
    is_storm,
    location_allowed,
    releases_positions,
    routed_unit,
    scope_items,
    sees_alert,
)
from backend.auth.tokens import Principal
from backend.cases.models import Case
from backend.hub.bus import STREAM_NOTICES


def _releasing(who: Principal, case_ids: set[uuid.UUID]) -> list[ColumnElement[bool]]:
    """WHERE clauses for the alerts of these cases that release their positions to this
    principal: open, urgent (`releases_positions`) and seen by her (`alert_filter`)."""
    from backend.auth.scoping import alert_filter

    return [Alert.case_id.in_(case_ids), Alert.state.in_(sorted(OPEN_STATES)),
            Alert.priority.in_(sorted(RELEASING_PRIORITIES)), alert_filter(who)]


def cases_with_open_alerts(
    s: Session, who: Principal, case_ids: set[uuid.UUID]
) -> set[uuid.UUID]:
    """Of these cases, those with an open urgent alert this principal may see (`alert_filter`,
    `releases_positions`)."""
    if not case_ids:
        return set()
    return set(s.scalars(select(Alert.case_id).where(*_releasing(who, case_ids)).distinct()))


def releasing_since(s: Session, who: Principal, case_id: uuid.UUID | None) -> datetime | None:
    """When the earliest open urgent alert of this case that the principal may see was raised
    (None: none is open, as `cases_with_open_alerts` decides). Such an alert releases the
    case's positions from then on, not before: how far back a trail read without a reason
    through another of the case's alerts may reach (`backend.console.positions`)."""
    if case_id is None:
        return None
    return s.scalar(select(func.min(Alert.raised_at)).where(*_releasing(who, {case_id})))


def release_locations(
    s: Session, who: Principal, alerts: list[Alert], documents: list[dict[str, Any]], *,
    reason: str | None, channel: str,
) -> list[dict[str, Any]]:
    """Withhold or release the `location` of each document (in place) and audit the releases.
    The caller commits the session."""
    open_cases = cases_with_open_alerts(s, who, {a.case_id for a in alerts if a.case_id})
    reads: list[LocationRead] = []
    for alert, document in zip(alerts, documents, strict=True):
        if document.get("location") is None:
            continue
        is_open = (releases_positions(alert.state in OPEN_STATES, alert.priority)
                   or alert.case_id in open_cases)
        if not location_allowed(alert_open=is_open, reason=reason):
            document.update(without_position(document), location_withheld=True)
            continue
        reads.append(LocationRead("alert", str(alert.id), alert.case_id, alert.device_id))
    record(s, who, reads, reason=reason, channel=channel)
    return documents


def screen_event_alone(
    who: Principal, event: dict[str, Any]
) -> tuple[dict[str, Any] | None, list[LocationRead]] | None:
    """Screen a console event from what it carries (its `scope`, see
    `backend.alerts.flows.event_scope`), without the database: the event as this principal may
    receive it (None: out of scope) and the location reads to audit once it is sent. None when
    the event alone cannot decide (no scope carried, a position on a closed alert, whose
    release depends on the case's other alerts, or a case event for a dispatcher of another
    region, who sees the case if it had an alert in her regions; a storm summary for a
    dispatcher, whose desk's regions are read): use `screen_event`. An event
    about a case (`case.*`, carrying `backend.alerts.flows.case_scope`) reaches whoever
    receives the case's notices (`backend.auth.scoping.receives_case_notices`); one about the
    stream itself (`backend.hub.bus.STREAM_NOTICES`) to everyone; any other event about no
    alert (geofence notes) goes to administrators only, as in `screen_event`."""
    from backend.auth.scoping import directs

    document, scope = event.get("alert"), event.get("scope")
    if event.get("event") in STREAM_NOTICES:
        return event, []  # about the stream itself: it carries nothing and reaches everyone
    about_case = _about_case(event)
    if not isinstance(document, dict):
        if about_case:
            document = {}  # its positionless scope decides, as for an alert at home
        else:
            return (event if who.role == "admin" else None), []
    if not isinstance(scope, dict):
        return None
    if is_storm(document.get("type")) and who.role == "dispatcher":
        return None  # the regions of the desk it is for decide, read from the database
    facts = AlertFacts(
        vr_code=(document.get("region") or {}).get("vr_code"),
        police_unit=routed_unit(document.get("type"), scope.get("police_unit"),
                                scope.get("told_police") is True),
        case_reference=scope.get("case_reference"),
        case_home_vr=scope.get("case_home_vr"),
        case_home_unit=scope.get("case_home_unit"),
        about_alert=isinstance(event.get("alert"), dict),
    )
    if not (sees_alert(who, facts) or directs(who, scope.get("case_director"))):
        if about_case and who.role == "dispatcher" and scope_items(who, "regions"):
            return None  # the case's alerts in her regions decide
        return None, []
    reads: list[LocationRead] = []
    if document.get("location") is not None:
        if not releases_positions(document.get("state") in OPEN_STATES,
                                  document.get("priority")):
            return None
        case_id = scope.get("case_id")
        reads.append(LocationRead(
            "alert", str(document.get("alert_id")), uuid.UUID(case_id) if case_id else None,
            (document.get("device") or {}).get("id"),
        ))
    return _without_scope(event), reads


def _about_case(event: dict[str, Any]) -> bool:
    """A `case.*` event carrying its case's scope."""
    return (isinstance(event.get("scope"), dict) and not isinstance(event.get("alert"), dict)
            and str(event.get("event", "")).startswith("case."))


def _without_scope(event: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in event.items() if k != "scope"}


def screen_event(s: Session, who: Principal, event: dict[str, Any]) -> dict[str, Any] | None:
    """A console event as this principal may receive it: None when the alert is out of scope;
    the position withheld or released (and audited) as for the API; a case event for whoever
    receives the case's notices. Events about the stream itself are decided by
    `screen_event_alone` and never come here. The caller commits."""
    from backend.auth.scoping import may_see_alert, receives_case_notices

    document = event.get("alert")
    if _about_case(event):
        try:
            case = s.get(Case, uuid.UUID(str(event["scope"].get("case_id"))))
        except ValueError:
            return None
        if case is None or not receives_case_notices(s, who, case):
            return None
        return _without_scope(event)
    if not isinstance(document, dict):
        return event if who.role == "admin" else None
    try:
        alert = s.get(Alert, uuid.UUID(str(document.get("alert_id"))))
    except ValueError:
        return None
    if alert is None or not may_see_alert(s, who, alert):
        return None
    screened = dict(document)
    release_locations(s, who, [alert], [screened], reason=None, channel="stream")
    return {**_without_scope(event), "alert": screened}
