"""The outbox's tests run on both back ends."""

from __future__ import annotations

import pytest

from tests.support.db import sqlite_sessions


@pytest.fixture(params=["sqlite", "postgresql"])
def sessions(request, tmp_path):
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_sessions")
    else:
        yield from sqlite_sessions(tmp_path)
