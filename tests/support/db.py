"""Database helpers for tests: a fresh migrated SQLite database, and a statement counter."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import event
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


def statements(sessions: sessionmaker[Session]) -> list[str]:
    """Every SQL statement sent through `sessions` from now on, appended as it goes."""
    seen: list[str] = []
    event.listen(sessions.kw["bind"], "before_cursor_execute",
                 lambda conn, cursor, statement, *a: seen.append(statement))
    return seen
