"""Database helpers for tests: a fresh migrated SQLite database, a PostgreSQL database of a
test's own, and a statement counter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import create_engine, event, make_url, text
from sqlalchemy.orm import Session, sessionmaker

from backend.db.engine import make_engine, make_session_factory
from backend.db.migrate import upgrade
from backend.settings import DatabaseSettings


def sqlite_sessions(directory: Path) -> Iterator[sessionmaker[Session]]:
    """A session factory on a migrated SQLite database in `directory` (a fixture body)."""
    url = f"sqlite:///{directory}/test.db"
    upgrade(url)
    engine = make_engine(DatabaseSettings(url=url))
    yield make_session_factory(engine)
    engine.dispose()


@contextmanager
def own_postgresql(url: str, name: str) -> Iterator[str]:
    """A migrated PostgreSQL database `name` on the server of `url`, dropped afterwards: for a
    test that changes what other tests share (the partitions of pings)."""
    u = make_url(url)
    admin = {"host": u.host or "127.0.0.1", "port": u.port or 5432, "dbname": "postgres",
             "user": u.username or "postgres", "password": u.password, "autocommit": True,
             "connect_timeout": 5}
    with psycopg.connect(**admin) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    own = u.set(database=name).render_as_string(hide_password=False)
    try:
        engine = create_engine(own)
        with engine.begin() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        engine.dispose()
        upgrade(own)
        yield own
    finally:
        with psycopg.connect(**admin) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def statements(sessions: sessionmaker[Session]) -> list[str]:
    """Every SQL statement sent through `sessions` from now on, appended as it goes."""
    seen: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute",
                 lambda conn, cursor, statement, *a: seen.append(statement))
    return seen
