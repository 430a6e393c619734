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
    """Readiness: the database, Redis (when configured) and the broker connection answer."""
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
    ok = all(checks.values())
    response.status_code = 200 if ok else 503
    return {"status": "ready" if ok else "not ready", "checks": checks}


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
