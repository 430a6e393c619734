"""Shared test configuration: where the real services are (set by scripts/test.sh)."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

# SCHILDWACHT_TEST_DB_NAME picks another database on the same server (as scripts/test.sh does;
# `SCHILDWACHT_TEST_DB_NAME=... bash scripts/services.sh` creates it), so that a run by hand does
# not drop tables under another run. It exists once scripts/services.sh ran (tests that only
# ask PostGIS a question use it as it is).
BASE_PG_URL = os.environ.get(
    "SCHILDWACHT_TEST_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/"
    + os.environ.get("SCHILDWACHT_TEST_DB_NAME", "schildwacht_test"),
)
_REDIS_URL = os.environ.get("SCHILDWACHT_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MQTT_PORT = int(os.environ.get("SCHILDWACHT_TEST_MQTT_PORT", "1883"))

# Under pytest-xdist ("gw0", "gw1", ...) each worker process empties its own database and Redis
# database; the broker is shared, each test publishing under a topic root of its own.
WORKER = os.environ.get("PYTEST_XDIST_WORKER", "")


def worker_database(url: str, worker: str) -> str:
    """`url` with the worker's own database: `<name>_<worker>` (the name itself outside xdist)."""
    if not worker:
        return url
    u = make_url(url)
    return u.set(database=f"{u.database}_{worker}").render_as_string(hide_password=False)


def worker_redis(url: str, worker: str) -> str:
    """`url` with the worker's own Redis database: counting down from the one named (15: gw0 on
    15, gw1 on 14, ...); Redis has 16 by default."""
    if not worker:
        return url
    base, _, number = url.rpartition("/")
    own = int(number or 0) - int(worker.removeprefix("gw"))
    if own < 0:
        raise RuntimeError(f"no Redis database left for xdist worker {worker} below {url}")
    return f"{base}/{own}"


PG_URL = worker_database(BASE_PG_URL, WORKER)
REDIS_URL = worker_redis(_REDIS_URL, WORKER)



@pytest.fixture(autouse=True)
def _root_logger_restored() -> Iterator[None]:
    """A test that runs the command line sets logging up for a process (`logging_setup`): its
    handler writes to the test's captured stderr, closed after it, and its level stays. Each
    test ends with the root logger as it found it."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
