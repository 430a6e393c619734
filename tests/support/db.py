"""Database helpers for tests: a fresh migrated SQLite database, a PostgreSQL database of a
test's own, and a statement counter."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import event, func, make_url, select
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
    from loadtests.stack import ensure_database, libpq_dsn

    def drop() -> None:
        with psycopg.connect(libpq_dsn(url, "postgres"), autocommit=True,
                             connect_timeout=5) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    own = make_url(url).set(database=name).render_as_string(hide_password=False)
    drop()  # what a run that was killed left
    try:
        ensure_database(own)
        yield own
    finally:
        drop()


def rows(sessions: sessionmaker[Session], model, **where) -> int:
    """How many rows of `model` match `where` (column name -> value)."""
    with sessions() as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return s.scalar(query)


def statements(sessions: sessionmaker[Session]) -> list[str]:
    """Every SQL statement sent through `sessions` from now on, appended as it goes."""
    seen: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute",
                 lambda conn, cursor, statement, *a: seen.append(statement))
    return seen
