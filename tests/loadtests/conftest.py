"""Load-test smoke runs on the real services: their own Mosquitto (a free port), their own
database next to the test database (`<test database>_loadtests`, created with PostGIS when
missing, so that truncations by other suites cannot interfere) and Redis."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import make_url

from loadtests.broker import OwnMosquitto
from loadtests.stack import ensure_database
from tests.conftest import PG_URL, REDIS_URL


@pytest.fixture(scope="session")
def loadtest_db_url() -> str:
    url = make_url(PG_URL)
    url = url.set(database=f"{url.database}_loadtests")
    rendered = url.render_as_string(hide_password=False)
    ensure_database(rendered)
    return rendered


@pytest.fixture(scope="session")
def redis_url() -> str:
    return REDIS_URL


@pytest.fixture
def broker() -> Iterator[OwnMosquitto]:
    with OwnMosquitto() as b:
        yield b
