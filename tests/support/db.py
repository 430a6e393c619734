"""Database helpers for tests: a fresh migrated SQLite database, a PostgreSQL database of a
test's own, and a statement counter."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
from sqlalchemy import Engine, event, func, make_url, select, text
from sqlalchemy.exc import OperationalError
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


def execute_retrying(engine: Engine, statements: Sequence[str], attempts: int = 5) -> None:
    """Run `statements` in one transaction, again after a lock conflict: a stack that still runs
    (its follow-ups, its sweeps) may hold the tables' locks in the other order (dropping a
    trigger locks its table), and the server ends one side as a deadlock."""
    for attempt in range(attempts):
        try:
            with engine.begin() as conn:
                for statement in statements:
                    conn.execute(text(statement))
            return
        except OperationalError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.2)
