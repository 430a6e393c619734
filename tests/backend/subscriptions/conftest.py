"""Fixtures for webhook delivery tests (tests/support/webhooks.py), and `sessions`: a migrated
SQLite database for tests of the worker with a scripted sender and a fake clock."""

from pathlib import Path

import pytest

from tests.support.db import sqlite_sessions
from tests.support.webhooks import receivers, webhooks  # noqa: F401 - fixtures


@pytest.fixture
def sessions(tmp_path: Path):
    yield from sqlite_sessions(tmp_path)
