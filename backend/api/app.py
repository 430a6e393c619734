"""The FastAPI application factory. Long-lived clients come from the `Runtime` passed in."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from backend.alerts.views import router as alerts_router
from backend.alerts.views import stream_router
from backend.api import errors
from backend.api.health import router as health_router
from backend.audit.views import router as audit_router
from backend.auth.views import router as tokens_router
from backend.caselog.views import router as caselog_router
from backend.cases.views import router as cases_router
from backend.console import i18n
from backend.console.positions import router as positions_router
from backend.console.views import router as console_router
from backend.console.views import static as console_static
from backend.devices.views import router as devices_router
from backend.measures.views import router as measures_router
from backend.police.views import router as police_router
from backend.runtime import Runtime
from backend.subscriptions.views import deliveries_router
from backend.subscriptions.views import router as subscriptions_router


def create_app(runtime: Runtime) -> FastAPI:
    i18n.check_complete()  # a message missing from a catalogue stops the start, not a page
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.runtime = runtime
        yield

    app = FastAPI(
        title="Schildwacht",
        version="0.1.0",
        summary="Alarm devices for victims of stalking: alerts, cases, devices.",
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    errors.install(app)
    for router in (health_router, tokens_router, cases_router, devices_router, alerts_router,
                   stream_router):
        app.include_router(router)
    app.include_router(measures_router)
    for router in (positions_router, audit_router, console_router):
        app.include_router(router)
    app.mount("/console/static", console_static, name="console-static")
    app.include_router(caselog_router)
    for router in (subscriptions_router, deliveries_router, police_router):
        app.include_router(router)
    return app
