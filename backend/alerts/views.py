from __future__ import annotations

import asyncio
import uuid
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.alerts import service
from backend.alerts.document import alert_document
from backend.alerts.errors import AlertNotFound
from backend.alerts.flows import case_context
from backend.alerts.lifecycle import CLOSED_STATES, OPEN_STATES
from backend.alerts.models import Alert
from backend.api.deps import require, runtime, session
from backend.auth.tokens import Principal, authenticate
from backend.cases.models import Case
from backend.devices.models import Device
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
stream_router = APIRouter(tags=["alerts"])

READERS = ("dispatcher", "police", "case_director")
OPERATORS = ("dispatcher",)


class TransitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=2_000)


def documents(s: Session, alerts: list[Alert]) -> list[dict[str, Any]]:
    device_ids = {a.device_id for a in alerts if a.device_id}
    case_ids = {a.case_id for a in alerts if a.case_id}
    roles = dict(s.execute(select(Device.id, Device.role).where(Device.id.in_(device_ids))).all())
    cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(case_ids)))}
    return [
        alert_document(
            a, device_role=roles.get(a.device_id),
            case=case_context(cases[a.case_id]) if a.case_id in cases else None,
        )
        for a in alerts
    ]


@router.get("")
def list_alerts(
    state: Literal["open", "closed", "all"] = "open",
    priority: Literal["P1", "P2", "P3", "P4"] | None = None,
    limit: int = Query(100, ge=1, le=1_000),
    s: Session = Depends(session),
    _: Principal = Depends(require(*READERS)),
) -> list[dict[str, Any]]:
    states = {"open": sorted(OPEN_STATES), "closed": sorted(CLOSED_STATES), "all": None}[state]
    alerts = list(s.scalars(service.list_query(states=states, priority=priority, limit=limit)))
    return documents(s, alerts)


@router.get("/{alert_id}")
def get_alert(
    alert_id: uuid.UUID, s: Session = Depends(session), _: Principal = Depends(require(*READERS))
) -> dict[str, Any]:
    alert = service.get(s, alert_id)
    if alert is None:
        raise AlertNotFound(f"alert {alert_id} not found")
    document = documents(s, [alert])[0]
    document["timeline"] = [
        {"at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "from_state": e.from_state,
         "to_state": e.to_state, "detail": e.detail}
        for e in service.timeline(s, alert_id)
    ]
    return document


def _transition(action: str):
    def endpoint(
        alert_id: uuid.UUID,
        body: TransitionBody | None = None,
        rt: Runtime = Depends(runtime),
        p: Principal = Depends(require(*OPERATORS)),
    ) -> dict[str, Any]:
        with rt.sessions.begin() as s:
            _, effects = rt.flow.transition(
                s, alert_id, action, actor=p.name, note=body.note if body else None
            )
        rt.dispatcher.send(effects.outbox)
        for event in effects.events:
            rt.bus.publish(event)
        with rt.sessions() as s:
            alert = service.get(s, alert_id)
            return documents(s, [alert])[0]  # type: ignore[list-item]

    endpoint.__name__ = f"{action}_alert"
    return endpoint


for _action, _path in (
    ("acknowledge", "acknowledge"), ("dispatch", "dispatch"), ("resolve", "resolve"),
    ("false_alarm", "false-alarm"), ("cancel", "cancel"),
):
    router.add_api_route(f"/{{alert_id}}/{_path}", _transition(_action), methods=["POST"],
                         summary=f"{_action.replace('_', ' ').capitalize()} an alert")


@stream_router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Console events as JSON text frames. Authenticate with the subprotocols
    `["bearer", "<token>"]` (browsers cannot set headers on a WebSocket)."""
    rt: Runtime = websocket.app.state.runtime
    protocols = websocket.scope.get("subprotocols") or []
    token = protocols[1] if len(protocols) == 2 and protocols[0] == "bearer" else None
    principal = None
    if token:
        admin = rt.settings.api.admin_token
        with rt.sessions() as s:
            principal = await asyncio.to_thread(
                authenticate, s, token, admin.get_secret_value() if admin else None
            )
    if principal is None or (principal.role != "admin" and principal.role not in READERS):
        await websocket.close(code=4401)
        return
    await websocket.accept(subprotocol="bearer")
    queue = rt.bus.subscribe()
    try:
        while True:
            data = await queue.get()
            await websocket.send_text(data.decode())
    except WebSocketDisconnect:
        pass
    finally:
        rt.bus.unsubscribe(queue)
