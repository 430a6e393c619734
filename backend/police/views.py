"""Police acknowledge back: a police system reports that it took the alert on, or that it sent a
unit. Thin HTTP; the change goes through the alert flow like an operator's (timeline, console,
police feed, webhooks, and the victim's device ack).

A report the alert has already gone through answers 200 and changes nothing: a police system
delivers at least once, and may repeat an acknowledgement after its dispatch report went
through (`backend.alerts.lifecycle.already_reported`). The console's own actions stay strict.

Scope: a police token reports only on an alert routed to one of its units (the alert's
`police_unit` once the police were told of it, and the police units among its recipients: the
case's home unit too when the policy routes an alert away from home there), and only for one of
them (the body's `unit`). An alert the token may not see at all answers 404, as every
out-of-scope read (no existence oracle); one it sees without its being routed to its units (an
alert of a case at home in its unit that routing did not send there, such as an approach the
desk has alone) answers 403, and so does a body naming a unit outside them. A refused report
changes nothing: the alert's state and escalation stay as they were. The answer's position is
released and audited as any alert document's (`backend.audit.guard`)."""

from __future__ import annotations

import uuid
from collections.abc import Collection
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.alerts.errors import AlertNotFound, InvalidTransition
from backend.alerts.flows import Effects, police_told
from backend.alerts.models import Alert
from backend.alerts.lifecycle import already_reported
from backend.api.deps import require, runtime
from backend.api.text import free_text
from backend.audit.guard import release_locations
from backend.auth.errors import Forbidden
from backend.auth.scope import routed_unit
from backend.auth.scoping import may_see_alert
from backend.auth.tokens import Principal
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/alerts", tags=["police"])

# police-ack action -> alert lifecycle action
ACTIONS = {"acknowledge": "acknowledge", "dispatched": "dispatch"}


class PoliceAck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Literal["acknowledge", "dispatched"]
    # The police unit that answers (its code, e.g. RE07); must be within the token's scope.
    unit: str = Field(min_length=1, max_length=32)
    # Free text, e.g. the call sign of the car sent.
    note: free_text(2_000) | None = None


def police_actor(p: Principal) -> str:
    name = p.name.removeprefix("token:")
    return f"police:{name}"


def refusal(p: Principal, alert_units: Collection[str], body_unit: str) -> str | None:
    """Why a police report on an alert the principal sees is refused (403), or None. A police
    token answers only for an alert routed to one of its units `{"units": [...]}` (`alert_units`:
    the unit of the alert's place once the police were told of it, and every police unit
    among its recipients, such as the case's home unit when the alert is elsewhere:
    `routed_units`), and only in the name of one of them. A unit
    that only sees the alert (the case's home unit that routing did not name) does not act on
    it. An administrator reports for any unit."""
    if p.role == "admin":
        return None
    units = {str(u) for u in p.scope.get("units") or []}
    if body_unit not in units:
        return f"unit {body_unit} is outside this token's scope"
    if not units & set(alert_units):
        return "the alert is routed to a police unit outside this token's scope"
    return None


def routed_units(alert: Alert) -> set[str]:
    """The police units an alert is routed to: its recipients' police units and those its
    escalation called, and the unit of its place once the police were told of it (as the
    scope routes it, `backend.auth.scope.routed_unit`: the live unit an exercise endpoint
    stands in for too). An alert the desk has alone is routed to no unit yet."""
    unit = routed_unit(alert.type, alert.police_unit, alert.told_police)
    return set(police_told(alert)) | ({unit} if unit else set())


def _report(s: Session, rt: Runtime, alert_id: uuid.UUID, action: str, actor: str,
            note: str) -> Effects:
    """Move the alert by the police report `action`; nothing when the alert has already gone
    through it (read in the transaction that the refusal came from)."""
    try:
        _, effects = rt.flow.transition(s, alert_id, action, actor=actor, note=note)
    except InvalidTransition:
        alert = alerts_service.get(s, alert_id)
        if alert is None or not already_reported(action, alert.acknowledged_at is not None,
                                                 alert.dispatched_at is not None):
            raise
        return Effects()
    return effects


@router.post("/{alert_id}/police-ack")
def police_ack(
    request: Request, alert_id: uuid.UUID, body: PoliceAck, rt: Runtime = Depends(runtime),
    p: Principal = Depends(require("police")),
) -> dict[str, Any]:
    from backend.alerts.views import documents

    with rt.sessions() as s:
        alert = alerts_service.get(s, alert_id)
        if alert is None or not may_see_alert(s, p, alert):
            raise AlertNotFound(f"alert {alert_id} not found")
        if (why := refusal(p, routed_units(alert), body.unit)) is not None:
            raise Forbidden(why)
    note = f"police unit {body.unit}" + (f": {body.note}" if body.note else "")
    with rt.sessions.begin() as s:
        effects = _report(s, rt, alert_id, ACTIONS[body.action], police_actor(p), note)
    effects.carry_out(rt.dispatcher, rt.bus)
    with rt.sessions() as s:
        alert = alerts_service.get(s, alert_id)
        assert alert is not None
        channel = "console" if getattr(request.state, "via_console", False) else "api"
        document = release_locations(s, p, [alert], documents(s, [alert]), reason=None,
                                     channel=channel)[0]
        s.commit()
        return document
