"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from backend.alerts.errors import AlertNotFound, InvalidTransition
from backend.auth.errors import Forbidden, NotAuthenticated
from backend.cases.errors import CaseConflict, CaseNotFound
from backend.devices.errors import DeviceConflict, DeviceNotFound

STATUS = {
    NotAuthenticated: 401,
    Forbidden: 403,
    AlertNotFound: 404,
    CaseNotFound: 404,
    DeviceNotFound: 404,
    InvalidTransition: 409,
    CaseConflict: 409,
    DeviceConflict: 409,
}


def install(app: FastAPI) -> None:
    for error, status in STATUS.items():
        app.add_exception_handler(error, _handler(status))


def _handler(status: int):
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        detail = str(exc) or type(exc).__name__
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    return handle
