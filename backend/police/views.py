"""Police acknowledge back: a police system reports that it took the alert on, or that it sent a
unit. Thin HTTP; the change goes through the alert flow like an operator's (timeline, console,
police feed, webhooks, and the victim's device ack)."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from backend.alerts import service as alerts_service
from backend.alerts.errors import AlertNotFound
from backend.api.deps import require, runtime
from backend.auth.errors import Forbidden
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
    note: str | None = Field(None, max_length=2_000)


def police_actor(p: Principal) -> str:
    name = p.name.removeprefix("token:")
    return f"police:{name}"


def check_scope(p: Principal, alert_unit: str | None, body_unit: str) -> None:
    """A police token acts only for the units in its scope `{"units": [...]}`, and only on
    alerts routed to one of them."""
    if p.role == "admin":
        return
    units = set(p.scope.get("units") or [])
    if body_unit not in units:
        raise Forbidden(f"unit {body_unit} is outside this token's scope")
    if alert_unit not in units:
        raise Forbidden("the alert belongs to another police unit")


@router.post("/{alert_id}/police-ack")
def police_ack(
    alert_id: uuid.UUID, body: PoliceAck, rt: Runtime = Depends(runtime),
    p: Principal = Depends(require("police")),
) -> dict[str, Any]:
    from backend.alerts.views import documents

    with rt.sessions() as s:
        alert = alerts_service.get(s, alert_id)
        if alert is None:
            raise AlertNotFound(f"alert {alert_id} not found")
        check_scope(p, alert.police_unit, body.unit)
    note = f"police unit {body.unit}" + (f": {body.note}" if body.note else "")
    with rt.sessions.begin() as s:
        _, effects = rt.flow.transition(s, alert_id, ACTIONS[body.action],
                                        actor=police_actor(p), note=note)
    rt.dispatcher.send(effects.outbox)
    for event in effects.events:
        rt.bus.publish(event)
    with rt.sessions() as s:
        alert = alerts_service.get(s, alert_id)
        return documents(s, [alert])[0]  # type: ignore[list-item]
