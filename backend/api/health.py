from __future__ import annotations

import secrets

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from sqlalchemy import text

from backend.api.backlog import BacklogCollector
from backend.api.deps import runtime
from backend.runtime import Runtime

router = APIRouter(tags=["health"])


@router.get("/health")
def health() -> dict[str, str]:
    """Liveness: the process answers."""
    return {"status": "ok"}


@router.get("/ready")
def ready(response: Response, rt: Runtime = Depends(runtime)) -> dict[str, object]:
    """Readiness: whether this process should take requests (`readiness`)."""
    checks: dict[str, bool] = {}
    try:
        with rt.engine.connect() as conn:
            conn.execute(text("select 1"))
        checks["database"] = True
    except Exception:  # noqa: BLE001 - reported, not raised
        checks["database"] = False
    if rt.redis is not None:
        try:
            checks["redis"] = bool(rt.redis.ping())
        except Exception:  # noqa: BLE001
            checks["redis"] = False
    checks["broker"] = rt.broker_connected()
    response.status_code, status = readiness(checks)
    return {"status": status, "checks": checks}


def readiness(checks: dict[str, bool]) -> tuple[int, str]:
    """(HTTP status, word) for the checks. Without the database the process can serve nothing:
    503, take it out. Without Redis or the broker it still serves the console and the API
    (live events and the police feed of a transition wait, the console reads again): 200,
    "degraded". Every process shares them, so a 503 then would take every one out of the
    load balancer and leave the desk with no console at all."""
    if not checks.get("database", False):
        return 503, "not ready"
    return (200, "ready") if all(checks.values()) else (200, "degraded")


@router.get("/metrics", include_in_schema=False)
def metrics(request: Request, rt: Runtime = Depends(runtime)) -> Response:
    """This process's counters, and what waits in the database (`backend.api.backlog`); with
    `api.metrics_token` set, only for a request that bears it."""
    token = rt.settings.api.metrics_token
    if token is not None:
        given = request.headers.get("authorization", "").removeprefix("Bearer ").encode()
        if not secrets.compare_digest(given, token.get_secret_value().encode()):
            return Response("metrics need the metrics token\n", status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
    backlog = CollectorRegistry(auto_describe=False)
    backlog.register(BacklogCollector(rt.sessions))
    return Response(generate_latest() + generate_latest(backlog), media_type=CONTENT_TYPE_LATEST)
