"""The one place where domain errors become HTTP responses."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from backend.alerts.errors import AlertNotFound, InvalidTransition
from backend.auth.errors import (
    BadCredentials,
    CsrfRejected,
    Forbidden,
    InvalidLifetime,
    InvalidScope,
    NotAuthenticated,
    NotRevocable,
    ReasonRequired,
    TokenNotFound,
    UserConflict,
)
from backend.caselog.errors import ChainConflict
from backend.cases.errors import CaseConflict, CaseInUse, CaseNotFound, UnknownHomeRegion
from backend.devices.errors import DeviceConflict, DeviceNameReserved, DeviceNotFound
from backend.measures.errors import (
    HomeRejected,
    MeasureConflict,
    MeasureNotFound,
    MeasureRejected,
)
from backend.subscriptions.errors import (
    DeliveryNotFound,
    InsecureWebhookUrl,
    NothingToReplay,
    SubscriptionNotFound,
)

STATUS = {
    NotAuthenticated: 401,
    Forbidden: 403,
    BadCredentials: 401,
    CsrfRejected: 403,
    ReasonRequired: 403,
    InvalidScope: 422,
    InvalidLifetime: 422,
    UserConflict: 409,
    TokenNotFound: 404,
    NotRevocable: 409,
    AlertNotFound: 404,
    CaseNotFound: 404,
    CaseInUse: 409,
    ChainConflict: 409,
    DeviceNotFound: 404,
    MeasureNotFound: 404,
    MeasureConflict: 409,
    MeasureRejected: 422,
    HomeRejected: 422,
    SubscriptionNotFound: 404,
    DeliveryNotFound: 404,
    NothingToReplay: 409,
    InsecureWebhookUrl: 422,
    UnknownHomeRegion: 422,
    InvalidTransition: 409,
    CaseConflict: 409,
    DeviceConflict: 409,
    DeviceNameReserved: 422,
}


def install(app: FastAPI) -> None:
    for error, status in STATUS.items():
        app.add_exception_handler(error, _handler(status))
    app.add_exception_handler(RequestValidationError, _invalid_request)


async def _invalid_request(request: Request, exc: Exception) -> JSONResponse:
    """422 with where and why each value was refused, never the value itself: FastAPI's own
    answer echoes the input, which may be a case's text, and fails on what JSON cannot carry
    (NaN) or UTF-8 cannot encode (a lone surrogate), turning a refusal into a 500."""
    errors = exc.errors() if isinstance(exc, RequestValidationError) else []
    return JSONResponse({"detail": [_problem(e) for e in errors]}, status_code=422)


def _problem(error: Any) -> dict[str, Any]:
    return {
        "type": str(error.get("type", "invalid")),
        "loc": [p if isinstance(p, int) else _encodable(str(p)) for p in error.get("loc", ())],
        "msg": _encodable(str(error.get("msg", ""))),
    }


def _encodable(text: str) -> str:
    """The text as UTF-8 can carry it (a lone surrogate, e.g. in a refused key, replaced)."""
    return text.encode("utf-8", "replace").decode("utf-8")


def _handler(status: int):
    async def handle(request: Request, exc: Exception) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
        detail = str(exc) or type(exc).__name__
        body: dict = {"detail": detail}
        problems = getattr(exc, "problems", None)
        if problems is not None:  # e.g. MeasureRejected: every reason, machine-readable
            body["problems"] = [p.as_dict() for p in problems]
        return JSONResponse(body, status_code=status, headers=headers)

    return handle
