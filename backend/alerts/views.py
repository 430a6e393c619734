from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any, Literal

import orjson
from fastapi import APIRouter, Depends, Query, Request, WebSocket, WebSocketDisconnect
from pydantic import BaseModel, ConfigDict
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from backend.alerts import service
from backend.alerts.document import alert_document, without_position
from backend.alerts.errors import AlertNotFound
from backend.alerts.flows import case_context
from backend.alerts.lifecycle import CLOSED_STATES, OPEN_STATES
from backend.alerts.models import Alert
from backend.api.deps import require, runtime, session
from backend.api.text import free_text
from backend.audit.guard import release_locations, screen_event, screen_event_alone
from backend.audit.log import LocationRead, record
from backend.auth import live
from backend.auth import sessions as web_sessions
from backend.auth.live import LiveCredential
from backend.auth.scoping import alert_filter, may_see_alert
from backend.auth.tokens import Principal
from backend.cases.models import Case
from backend.devices.models import Device
from backend.escalation.last_step import last_step
from backend.hub.bus import STREAM_DELAYED, STREAM_NOTICES
from backend.runtime import Runtime

router = APIRouter(prefix="/api/v1/alerts", tags=["alerts"])
stream_router = APIRouter(tags=["alerts"])
log = logging.getLogger(__name__)

READERS = ("dispatcher", "police", "case_director")
OPERATORS = ("dispatcher",)


class TransitionBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: free_text(2_000) | None = None


def documents(s: Session, alerts: list[Alert]) -> list[dict[str, Any]]:
    device_ids = {a.device_id for a in alerts if a.device_id}
    case_ids = {a.case_id for a in alerts if a.case_id}
    roles: dict[str, str] = {}
    cases: dict[uuid.UUID, Case] = {}
    if device_ids:  # an alert without a device or case (a storm) reads nothing for it
        roles = dict(s.execute(
            select(Device.id, Device.role).where(Device.id.in_(device_ids))).all())
    if case_ids:
        cases = {c.id: c for c in s.scalars(select(Case).where(Case.id.in_(case_ids)))}
    # Besides the document the feeds carry: where the alert's escalation stands (the last step
    # carried out after the first notification, or null), so that a console that lost an
    # `alert.escalated` event, or opened after it, still marks the alert.
    return [
        alert_document(
            a, device_role=roles.get(a.device_id),
            case=case_context(cases[a.case_id]) if a.case_id in cases else None,
        ) | {"escalation": last_step(a.escalation, a.escalation_step)}
        for a in alerts
    ]


def _channel(request: Request) -> str:
    return "console" if getattr(request.state, "via_console", False) else "api"


def _scoped(s: Session, p: Principal, alert: Alert | None, alert_id: uuid.UUID) -> Alert:
    """The alert if it exists and is in the principal's scope (else 404: no existence oracle)."""
    if alert is None or not may_see_alert(s, p, alert):
        raise AlertNotFound(f"alert {alert_id} not found")
    return alert


WITH_LOCATION = Query(True, description=(
    "false: without the position (`location` null), so nothing is read or audited: for views "
    "that show no position, such as the console's queue and its alert page's timeline"))


@router.get("")
def list_alerts(
    request: Request,
    state: Literal["open", "closed", "all"] = "open",
    priority: Literal["P1", "P2", "P3", "P4"] | None = None,
    limit: int = Query(100, ge=1, le=1_000),
    reason: free_text(500) | None = Query(None),
    with_location: bool = WITH_LOCATION,
    s: Session = Depends(session),
    p: Principal = Depends(require(*READERS)),
) -> list[dict[str, Any]]:
    states = {"open": sorted(OPEN_STATES), "closed": sorted(CLOSED_STATES), "all": None}[state]
    query = service.list_query(states=states, priority=priority, limit=limit)
    alerts = list(s.scalars(query.where(alert_filter(p))))
    docs = documents(s, alerts)
    if not with_location:
        return [without_position(doc) for doc in docs]
    released = release_locations(s, p, alerts, docs, reason=reason, channel=_channel(request))
    s.commit()
    return released


@router.get("/{alert_id}")
def get_alert(
    request: Request, alert_id: uuid.UUID,
    reason: free_text(500) | None = Query(None),
    with_location: bool = WITH_LOCATION,
    s: Session = Depends(session), p: Principal = Depends(require(*READERS)),
) -> dict[str, Any]:
    alert = _scoped(s, p, service.get(s, alert_id), alert_id)
    if with_location:
        document = release_locations(s, p, [alert], documents(s, [alert]), reason=reason,
                                     channel=_channel(request))[0]
        s.commit()
    else:
        document = without_position(documents(s, [alert])[0])
    document["timeline"] = [
        {"at": e.at.isoformat(), "actor": e.actor, "kind": e.kind, "from_state": e.from_state,
         "to_state": e.to_state, "detail": e.detail}
        for e in service.timeline(s, alert_id)
    ]
    return document


def _transition(action: str):
    def endpoint(
        request: Request,
        alert_id: uuid.UUID,
        body: TransitionBody | None = None,
        rt: Runtime = Depends(runtime),
        s: Session = Depends(session),
        p: Principal = Depends(require(*OPERATORS)),
    ) -> dict[str, Any]:
        # The request's session (the one that authenticated it) and one transaction: the scope
        # check, the transition and the answer's document with its location read audited, so
        # an action is committed together with the read it answers with (a failure: neither).
        _scoped(s, p, service.get(s, alert_id), alert_id)
        alert, effects = rt.flow.transition(
            s, alert_id, action, actor=p.name, note=body.note if body else None
        )
        document = release_locations(s, p, [alert], documents(s, [alert]), reason=None,
                                     channel=_channel(request))[0]
        s.commit()
        effects.carry_out(rt.dispatcher, rt.bus)
        return document

    endpoint.__name__ = f"{action}_alert"
    return endpoint


for _action, _path in (
    ("acknowledge", "acknowledge"), ("dispatch", "dispatch"), ("resolve", "resolve"),
    ("false_alarm", "false-alarm"), ("cancel", "cancel"),
):
    router.add_api_route(f"/{{alert_id}}/{_path}", _transition(_action), methods=["POST"],
                         summary=f"{_action.replace('_', ' ').capitalize()} an alert")


def _same_origin(websocket: WebSocket) -> bool:
    """A cookie-authenticated WebSocket must come from a page of this server (no cross-site
    WebSocket hijacking; SameSite=Strict is the first line, this the second)."""
    origin = websocket.headers.get("origin")
    host = websocket.headers.get("host")
    return origin is None or (host is not None and origin.split("://", 1)[-1] == host)


def _screen(rt: Runtime, who: Principal, event: dict[str, Any]) -> str | None:
    with rt.sessions() as s:
        screened = screen_event(s, who, event)
        s.commit()
    return orjson.dumps(screened).decode() if screened is not None else None


def _audit(rt: Runtime, who: Principal, reads: list[LocationRead]) -> bool:
    """Write the audit entry of positions about to be streamed; False when it could not be
    written (then they are not sent: no entry, no position)."""
    try:
        with rt.sessions.begin() as s:
            record(s, who, reads, reason=None, channel="stream")
        return True
    except SQLAlchemyError as exc:  # the stream goes on, without these positions
        log.error("audit of positions to stream failed (%s): sent without them actor=%s "
                  "alerts=%s", type(exc).__name__, who.ref,
                  ",".join(r.resource_id for r in reads))
        return False


@stream_router.websocket("/api/v1/stream")
async def stream(websocket: WebSocket) -> None:
    """Console events as JSON text frames, only those in the principal's scope; with
    `?alert=<id>` (the alert page's stream) that alert's events in full, other alerts' in brief
    (`BRIEF`: enough to sound a new P1, no position, so none is read or audited for them) and
    those about the stream itself, no others; with `?with_location=false` no position at all
    (the console's pages, which read positions where they show them). Authenticate
    with the subprotocols `["bearer", "<token>"]` (browsers cannot set headers on a WebSocket)
    or with the console's session cookie. The session or token is checked again while the
    stream lasts (`backend.auth.live`): once it no longer admits, the stream closes with 4401
    (1011 when the check itself failed) and sends nothing more."""
    rt: Runtime = websocket.app.state.runtime
    protocols = websocket.scope.get("subprotocols") or []
    token = protocols[1] if len(protocols) == 2 and protocols[0] == "bearer" else None
    credential = _credential(websocket, rt, token)
    principal = await credential.principal() if credential else None
    # Accepted first, then closed: a close before the handshake is answered is an HTTP 403,
    # which a browser reports as 1006, not the 4401 that sends the console to sign in.
    await websocket.accept(subprotocol="bearer" if token else None)
    if not _admitted(principal):
        await websocket.close(code=1011 if credential and credential.failed else 4401)
        return
    assert credential is not None
    with_location = websocket.query_params.get("with_location", "true")
    if with_location not in ("true", "false"):
        await websocket.close(code=4400, reason="with_location: true or false")
        return
    queue = rt.bus.subscribe()
    if not rt.bus.live:  # events of other processes may not arrive now: the console says so
        await websocket.send_text(orjson.dumps(STREAM_DELAYED).decode())
    # The stream ends when the console goes away, even while no event is due: a handler that
    # noticed only on its next send would keep a subscription per closed console (and hold up
    # the server's shutdown) for as long as nothing in its scope happens. It also ends when
    # its credential does, whether or not an event is due.
    shape = partial(_carried, alert_id=websocket.query_params.get("alert"),
                    with_location=with_location == "true")
    forwarding = asyncio.create_task(_forward(websocket, rt, credential, queue, shape))
    closing = asyncio.create_task(_until_closed(websocket))
    guarding = asyncio.create_task(credential.until_ended())
    try:
        done, _ = await asyncio.wait((forwarding, closing, guarding),
                                     return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (forwarding, closing, guarding):
            task.cancel()
        rt.bus.unsubscribe(queue)
    for task in done:
        error = task.exception()
        if error is not None and not isinstance(error, WebSocketDisconnect):
            raise error
    if credential.ended and closing not in done:
        await _close_ended(websocket, credential)


def _credential(websocket: WebSocket, rt: Runtime, token: str | None) -> LiveCredential | None:
    """The credential the stream was opened with: a bearer token, else the console's session
    cookie (same-origin only); None without either."""
    every_s = rt.settings.api.stream_recheck_s
    if token:
        admin = rt.settings.api.admin_token
        check = live.bearer(token, admin.get_secret_value() if admin else None)
        return LiveCredential(rt.sessions, check, every_s)
    cookie = websocket.cookies.get(web_sessions.COOKIE)
    if cookie and _same_origin(websocket):
        return LiveCredential(rt.sessions, live.console_session(cookie), every_s)
    return None


def _admitted(principal: Principal | None) -> bool:
    return principal is not None and (principal.role == "admin" or principal.role in READERS)


async def _close_ended(websocket: WebSocket, credential: LiveCredential) -> None:
    """Close a stream whose credential ended: 4401 (signed out, expired, disabled, revoked),
    or 1011 when it could not be checked (the console connects again)."""
    code, reason = (1011, "try again") if credential.failed else (4401, "not authenticated")
    with contextlib.suppress(WebSocketDisconnect, RuntimeError, OSError):
        await websocket.close(code=code, reason=reason)


# What the alert page's stream carries of the other alerts: enough to tell a new P1 from the
# rest (and to screen it), never a position.
BRIEF = ("alert_id", "sequence", "type", "priority", "state", "raised_at", "region")


def _carried(event: dict[str, Any], *, alert_id: str | None,
             with_location: bool) -> dict[str, Any] | None:
    """A console event as a stream asked for with these parameters carries it (see `stream`),
    before screening; None where it carries nothing of it."""
    document = event.get("alert")
    if alert_id is not None and event.get("event") not in STREAM_NOTICES:
        if not isinstance(document, dict):
            return None
        if document.get("alert_id") != alert_id:
            return {**event, "alert": without_position({k: document.get(k) for k in BRIEF})}
    if not with_location and isinstance(document, dict):
        return {**event, "alert": without_position(document)}
    return event


async def _until_closed(websocket: WebSocket) -> None:
    """Read the console's frames (it sends nothing this server acts on) until it disconnects."""
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


# The most events a stream takes from its queue for one round of frames (`_forward`).
ROUND_MAX = 100


async def _forward(websocket: WebSocket, rt: Runtime, credential: LiveCredential,
                   queue: asyncio.Queue[bytes],
                   shape: Callable[[dict[str, Any]], dict[str, Any] | None]) -> None:
    """Send the events the stream carries until its credential ends (then return). The events
    queued when a round starts go together (`_frames`): a burst costs one audit write, not
    one per frame."""
    while True:
        raw = [await queue.get()]
        while len(raw) < ROUND_MAX and not queue.empty():
            raw.append(queue.get_nowait())
        events = [event for r in raw if (event := shape(orjson.loads(r))) is not None]
        if not events:
            continue
        principal = await credential.principal()  # checked again before every round
        if not _admitted(principal):
            return
        assert principal is not None
        for text in await _frames(rt, principal, events):
            await websocket.send_text(text)


async def _frames(rt: Runtime, principal: Principal, events: list[dict[str, Any]]) -> list[str]:
    """The frames of these events for this principal, in their order, every position in them
    audited before any is sent: those the database screens in its own transaction
    (`_screen`), the others in one write here; if that write fails, their frames go without
    the position, withheld as one not released (`without_position`: no municipality either;
    `location_withheld`), and the alert still reaches the console."""
    decided = [screen_event_alone(principal, event) for event in events]
    reads = [read for d in decided if d is not None for read in d[1]]
    audited = not reads or await asyncio.to_thread(_audit, rt, principal, reads)
    frames: list[str] = []
    for event, d in zip(events, decided, strict=True):
        if d is None:  # the database decides (and audits in the same transaction)
            text = await asyncio.to_thread(_screen, rt, principal, event)
        else:
            screened, its_reads = d
            if screened is not None and its_reads and not audited:  # withheld, as unreleased
                screened = {**screened, "alert": {**without_position(screened["alert"]),
                                                  "location_withheld": True}}
            text = orjson.dumps(screened).decode() if screened is not None else None
        if text is not None:
            frames.append(text)
    return frames
