"""Readiness: a process without its database is taken out; one without Redis or the broker
still serves, degraded (every process shares them: taking all out leaves no console)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis
from fastapi import Response
from sqlalchemy import create_engine

from backend.api.health import readiness, ready


def test_the_database_decides_whether_a_process_is_taken_out():
    assert readiness({"database": True, "redis": True, "broker": True}) == (200, "ready")
    assert readiness({"database": True, "redis": False, "broker": True}) == (200, "degraded")
    assert readiness({"database": True, "broker": False}) == (200, "degraded")
    assert readiness({"database": False, "redis": True, "broker": True}) == (503, "not ready")
    assert readiness({}) == (503, "not ready")


@dataclass
class FakeRuntime:
    """What `/ready` reads of a runtime."""

    engine: Any
    redis: Any
    connected: bool

    def broker_connected(self) -> bool:
        return self.connected


def test_redis_and_the_broker_away_leave_the_process_ready_but_degraded():
    engine = create_engine("sqlite://")
    away = redis.Redis(host="127.0.0.1", port=1, socket_connect_timeout=0.5)  # nothing there
    response = Response()
    body = ready(response, FakeRuntime(engine, away, connected=False))
    assert response.status_code == 200
    assert body == {"status": "degraded",
                    "checks": {"database": True, "redis": False, "broker": False}}


def test_a_process_without_its_database_is_not_ready():
    engine = create_engine("postgresql+psycopg://nobody@127.0.0.1:1/none",
                           connect_args={"connect_timeout": 1})
    response = Response()
    body = ready(response, FakeRuntime(engine, None, connected=True))
    assert response.status_code == 503
    assert body == {"status": "not ready", "checks": {"database": False, "broker": True}}
