"""The console pages. Thin: each page checks the session, loads what it shows in scope, renders.

Authentication is the session cookie (HttpOnly, SameSite=Strict, Secure unless switched off);
the page embeds the session's CSRF token, which the scripts send as `X-CSRF-Token` on every
state change (the API refuses cookie requests without it)."""

from __future__ import annotations

import logging
import math
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.alerts import service as alerts_service
from backend.alerts.models import Alert
from backend.api.deps import runtime, session
from backend.api.text import free_text
from backend.auth import sessions as web_sessions
from backend.auth.errors import BadCredentials
from backend.auth.scope import visible_regions
from backend.auth.scoping import (
    alert_filter,
    case_filter,
    case_notice_filter,
    may_see_alert,
    may_see_case,
    opens_case_pages,
    reads_alerts,
    reads_devices,
)
from backend.auth.tokens import Principal
from backend.auth.users import check_password
from backend.caselog import service as caselog
from backend.caselog.readers import WRITERS as NOTE_WRITERS
from backend.caselog.readers import kinds_read
from backend.caselog.summary import summary
from backend.cases.models import Case
from backend.console import clock, i18n, sop
from backend.console.charts import bar_chart
from backend.console.headers import security_headers
from backend.console.notices import alert_notices
from backend.console.stats import AlertRow, DeviceRow, RegionFigures, region_figures
from backend.devices.models import Device
from backend.runtime import Runtime

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
static = StaticFiles(directory=str(HERE / "static"))

router = APIRouter(prefix="/console", include_in_schema=False)
LOGIN_CSRF_COOKIE = "sw_login_csrf"
CASE_LOG_LINES = 500  # the newest entries of a case log on its page


class Viewer:
    """Who is looking, in which language, with which CSRF token."""

    def __init__(self, principal: Principal | None, csrf: str, lang: str) -> None:
        self.principal = principal
        self.csrf = csrf
        self.lang = lang
        self.t = i18n.Translator(lang)


def _viewer(request: Request, s: Session, rt: Runtime) -> Viewer:
    lang = i18n.choose(request.query_params.get("lang"), request.cookies.get(i18n.COOKIE),
                       rt.settings.console.default_language)
    cookie = request.cookies.get(web_sessions.COOKIE)
    found = web_sessions.resolve(s, cookie) if cookie else None
    if found is None:
        return Viewer(None, "", lang)
    return Viewer(found[0], found[1], lang)


def _render(request: Request, rt: Runtime, viewer: Viewer, name: str, **context: Any) -> Response:
    tz = clock.zone(rt.settings.console.timezone)
    regions = (visible_regions(viewer.principal, rt.regions.safety_regions_by_police_unit())
               if viewer.principal else frozenset())
    response = templates.TemplateResponse(request, name, {
        "t": viewer.t, "lang": viewer.lang, "csrf": viewer.csrf, "who": viewer.principal,
        "messages": viewer.t.messages, "console": rt.settings.console,
        "local": partial(clock.local_time, tz=tz),
        "regions_link": regions is None or bool(regions),
        "devices_link": viewer.principal is not None and reads_devices(viewer.principal),
        "alerts_link": viewer.principal is not None and reads_alerts(viewer.principal),
        **context,
    })
    response.headers.update(security_headers(rt.settings.console.tile_url))
    if request.query_params.get("lang") in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, viewer.lang, max_age=365 * 86_400, samesite="strict",
                            secure=rt.settings.console.secure_cookies, httponly=True)
    return response


def _to_login() -> RedirectResponse:
    return RedirectResponse("/console/login", status_code=303)


# -- sign in and out ------------------------------------------------------------------------
def _fresh_login_form(request: Request, rt: Runtime, viewer: Viewer, **context: Any) -> Response:
    """The sign-in page with a new login token, in the form and in its cookie (each page
    loaded replaces the cookie: an older tab's form then holds a token no longer valid)."""
    token = secrets.token_urlsafe(24)
    response = _render(request, rt, viewer, "login.html", login_csrf=token, failed=False,
                       **context)
    response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="strict",
                        secure=rt.settings.console.secure_cookies, path="/console/login")
    return response


@router.get("/login")
def login_page(request: Request, rt: Runtime = Depends(runtime), s: Session = Depends(session)):
    return _fresh_login_form(request, rt, _viewer(request, s, rt))


@router.post("/login")
def login(
    request: Request, username: Annotated[free_text(64), Form()],
    password: str = Form(max_length=256),
    csrf: str = Form(max_length=64), rt: Runtime = Depends(runtime),
    s: Session = Depends(session),
):
    viewer = _viewer(request, s, rt)
    if not web_sessions.csrf_ok(request.cookies.get(LOGIN_CSRF_COOKIE) or "", csrf):
        # A form from a sign-in page loaded before another (a second tab), or whose cookie
        # expired: no password was checked. A fresh form, and she is told so, not that her
        # password was wrong.
        log.info("console sign-in with an out-of-date login token")
        response = _fresh_login_form(request, rt, viewer, stale=True)
        response.status_code = 400
        return response
    # The address the request came from (behind a proxy, the one uvicorn trusts to tell it).
    address = request.client.host if request.client else "unknown"
    throttle = rt.login_throttle
    wait = throttle.begin(address, username)  # counted as a failure until it succeeds
    if wait > 0:  # the password is not even checked
        log.warning("console sign-in throttled retry_after_s=%d", math.ceil(wait))
        response = _render(request, rt, viewer, "login.html", login_csrf=csrf, failed=False,
                           wait_s=math.ceil(wait))
        response.status_code = 429
        response.headers["Retry-After"] = str(math.ceil(wait))
        return response
    try:
        user = check_password(s, username, password)
    except BadCredentials:
        log.info("console sign-in failed")  # no name: it may be anyone's, or a password
        response = _render(request, rt, viewer, "login.html", login_csrf=csrf, failed=True)
        response.status_code = 401
        return response
    throttle.succeeded(address, username)
    token, _ = web_sessions.start(s, user, rt.settings.console.session_lifetime_s)
    s.commit()
    log.info("console sign-in user=%s role=%s", user.id, user.role)
    response = RedirectResponse("/console/", status_code=303)
    response.set_cookie(web_sessions.COOKIE, token, httponly=True, samesite="strict",
                        secure=rt.settings.console.secure_cookies,
                        max_age=rt.settings.console.session_lifetime_s, path="/")
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/console/login")
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form(max_length=64), rt: Runtime = Depends(runtime),
           s: Session = Depends(session)):
    viewer = _viewer(request, s, rt)
    cookie = request.cookies.get(web_sessions.COOKIE)
    if cookie and viewer.principal and web_sessions.csrf_ok(viewer.csrf, csrf):
        web_sessions.end(s, cookie)
        s.commit()
    response = _to_login()
    response.delete_cookie(web_sessions.COOKIE, path="/")
    return response


# -- pages ----------------------------------------------------------------------------------
@router.get("/", response_class=HTMLResponse)
def queue_page(request: Request, rt: Runtime = Depends(runtime), s: Session = Depends(session)):
    viewer = _viewer(request, s, rt)
    if viewer.principal is None:
        return _to_login()
    if not reads_alerts(viewer.principal):
        # A partner's console reads no alert: its first page lists the cases in her scope,
        # each a link to its case page (the case log).
        cases = list(s.scalars(select(Case).where(case_filter(viewer.principal))
                               .order_by(Case.reference).limit(1_000)))
        return _render(request, rt, viewer, "cases.html", cases=cases, now=datetime.now(UTC))
    return _render(request, rt, viewer, "queue.html", tightened=_tightened(s, viewer.principal),
                   case_links=opens_case_pages(viewer.principal))


def _tightened(s: Session, principal: Principal) -> list[Case]:
    """Cases whose notices this principal receives and whose offender's release still
    tightens them: the queue's standing notices (the stream adds what happens while the page
    is open)."""
    return list(s.scalars(
        select(Case).where(case_notice_filter(principal),
                           Case.custody_tightened_until > datetime.now(UTC))
        .order_by(Case.custody_tightened_until).limit(100)))


@router.get("/notices")
def standing_notices(request: Request, rt: Runtime = Depends(runtime),
                     s: Session = Depends(session)) -> Response:
    """The queue's standing notices as JSON, which the queue reads again whenever the stream
    may have lost events (a notice's event among them)."""
    viewer = _viewer(request, s, rt)
    if viewer.principal is None:
        return JSONResponse({"detail": "signed out"}, status_code=401)
    return JSONResponse([
        {"case_id": str(c.id), "reference": c.reference,
         "released": c.custody_tightened_release and c.custody_tightened_release.isoformat(),
         "until": c.custody_tightened_until and c.custody_tightened_until.isoformat()}
        for c in _tightened(s, viewer.principal)])


@router.get("/alerts/{alert_id}", response_class=HTMLResponse)
def alert_page(alert_id: uuid.UUID, request: Request, rt: Runtime = Depends(runtime),
               s: Session = Depends(session)):
    viewer = _viewer(request, s, rt)
    if viewer.principal is None:
        return _to_login()
    alert = alerts_service.get(s, alert_id)
    if alert is None or not may_see_alert(s, viewer.principal, alert):
        return _not_found(request, rt, viewer)
    case = s.get(Case, alert.case_id) if alert.case_id else None
    from backend.alerts.flows import case_context

    return _render(
        request, rt, viewer, "alert.html", alert=alert,
        case=case, context=case_context(case) if case else None,
        checklist=sop.checklist(alert.type, viewer.lang),
        notes=alert_notices(alert.flags, alert.escalation),
        timeline=alerts_service.timeline(s, alert_id),
        # The safety plan and the link to the case page only for who may read cases (the
        # police may not: the API refuses them the case, and the alert document leaves it out).
        case_pages=opens_case_pages(viewer.principal),
        may_operate=viewer.principal.role in ("admin", "dispatcher"),
        now=datetime.now(UTC),
    )


@router.get("/devices", response_class=HTMLResponse)
def devices_page(request: Request, rt: Runtime = Depends(runtime), s: Session = Depends(session)):
    viewer = _viewer(request, s, rt)
    if viewer.principal is None:
        return _to_login()
    devices: list[Device] = []
    if reads_devices(viewer.principal):
        in_scope = select(Case.id).where(case_filter(viewer.principal))
        devices = list(s.scalars(select(Device).where(Device.case_id.in_(in_scope))
                                 .order_by(Device.online.is_(True), Device.id).limit(2_000)))
    return _render(request, rt, viewer, "devices.html", devices=devices,
                   now=datetime.now(UTC))


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_log_page(case_id: uuid.UUID, request: Request, rt: Runtime = Depends(runtime),
                  s: Session = Depends(session)):
    viewer = _viewer(request, s, rt)
    if viewer.principal is None:
        return _to_login()
    case = s.get(Case, case_id)
    if case is None or not may_see_case(s, viewer.principal, case):
        return _not_found(request, rt, viewer)
    entries: list[dict[str, Any]] | None = None  # the alerts' timelines, for who reads alerts
    if reads_alerts(viewer.principal):
        # Only the alerts she may see (the alerts API's rule): a dispatcher may see a case for
        # one alert in her region, not its other alerts elsewhere, nor their notes.
        alerts = list(s.scalars(select(Alert).where(Alert.case_id == case_id,
                                                    alert_filter(viewer.principal))
                                .order_by(Alert.raised_at.desc()).limit(200)))
        entries = []
        for alert in alerts:
            for e in alerts_service.timeline(s, alert.id):
                entries.append({"at": e.at, "alert": alert, "actor": e.actor, "kind": e.kind,
                                "to_state": e.to_state, "note": (e.detail or {}).get("note")})
        entries.sort(key=lambda e: e["at"], reverse=True)
    # The case log (notes, measures, custody, contacts, alerts without positions), the kinds
    # this role reads, newest first.
    lines = [{"at": e.at, "kind": e.kind, "actor": e.actor, "text": summary(e.kind, e.data)}
             for e in caselog.entries(s, case_id, kinds_read(viewer.principal.role),
                                      newest=CASE_LOG_LINES)]
    role = viewer.principal.role
    return _render(request, rt, viewer, "case.html", case=case, entries=entries,
                   case_log=lines, may_note=role == "admin" or role in NOTE_WRITERS)


@router.get("/regions", response_class=HTMLResponse)
def regions_page(request: Request, rt: Runtime = Depends(runtime), s: Session = Depends(session)):
    viewer = _viewer(request, s, rt)
    if viewer.principal is None:
        return _to_login()
    # Only the regions this principal may see (`backend.auth.scope.visible_regions`); the
    # figures carry no position and no person, so reading them is not audited.
    regions = visible_regions(viewer.principal, rt.regions.safety_regions_by_police_unit())
    days = rt.settings.console.region_figures_days
    since = datetime.now(UTC) - timedelta(days=days)
    figures = _region_figures(s, regions, since) if regions is None or regions else []
    t = viewer.t
    charts = [
        bar_chart(t("time_to_ack"), [(f.vr_code, f.median_ack_s) for f in figures]),
        bar_chart(t("time_to_dispatch"), [(f.vr_code, f.median_dispatch_s) for f in figures]),
        bar_chart(t("false_alarm_rate"), [(f.vr_code, f.false_alarm_pct) for f in figures], 100),
        bar_chart(t("device_uptime"), [(f.vr_code, f.uptime_pct) for f in figures], 100),
    ]
    return _render(request, rt, viewer, "regions.html", figures=figures, charts=charts,
                   none_in_scope=regions is not None and not regions, days=days)


def _region_figures(s: Session, regions: frozenset[str] | None,
                    since: datetime) -> list[RegionFigures]:
    """The figures of these safety regions (None: of every region): their alerts raised since
    `since`, by where the fix lies, and the active devices of the cases at home in them."""
    vr_code = Alert.region["vr_code"].as_string()
    alerts = (select(vr_code, Alert.raised_at, Alert.acknowledged_at, Alert.dispatched_at,
                     Alert.state, Alert.exercise)
              .where(Alert.raised_at >= since, vr_code.is_not(None)))
    devices = (select(Case.home_vr_code, Device.online).join(Case, Case.id == Device.case_id)
               .where(Case.home_vr_code.is_not(None), Device.active.is_(True)))
    if regions is not None:
        alerts = alerts.where(vr_code.in_(sorted(regions)))
        devices = devices.where(Case.home_vr_code.in_(sorted(regions)))
    return region_figures([AlertRow(*row) for row in s.execute(alerts)],
                          [DeviceRow(code, online) for code, online in s.execute(devices)])


def _not_found(request: Request, rt: Runtime, viewer: Viewer) -> Response:
    response = _render(request, rt, viewer, "not_found.html")
    response.status_code = 404
    return response

