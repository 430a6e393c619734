"""Engine and session factory built from settings. No connection is made at import time.

SQLite (the embedded default) keeps the sqlite3 driver's own transaction control: it begins a
transaction at the first write, so reading takes no lock and a write waits for the database's
one write lock (`busy_timeout`) instead of failing. A transaction that reads what it is about to
write from (the last entry of a case log, a case being changed) must hold that lock before it
reads: `hold_write_lock` begins it with `BEGIN IMMEDIATE`, as `FOR UPDATE` does on PostgreSQL.
SQLAlchemy's recipe of emitting `BEGIN` for every transaction is not used: a transaction that read
before writing would then fail at its first write whenever another one committed meanwhile
(SQLite answers "database is locked" at once there, without waiting).
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

from backend.settings import DatabaseSettings


def make_engine(settings: DatabaseSettings) -> Engine:
    if settings.url.startswith("sqlite"):
        engine = create_engine(
            settings.url,
            connect_args={"check_same_thread": False, "timeout": settings.connect_timeout_s},
            hide_parameters=True,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record) -> None:  # pragma: no cover - trivial
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute(f"PRAGMA busy_timeout={int(settings.connect_timeout_s * 1000)}")
            cur.close()

        return engine
    engine = create_engine(
        settings.url,
        # A database error names the statement, never its values: they can be positions,
        # names or secrets, and errors end up in logs.
        hide_parameters=True,
        pool_size=settings.pool_size,
        max_overflow=settings.pool_size,
        pool_pre_ping=settings.pre_ping,
        pool_timeout=settings.connect_timeout_s,
        pool_recycle=settings.pool_recycle_s,
        # The connection used last is the next one out: the hot path keeps one warm connection
        # (its prepared statements, the server process's caches) instead of rotating the pool.
        pool_use_lifo=True,
        connect_args={
            "prepare_threshold": settings.prepare_threshold,
            "connect_timeout": max(1, int(settings.connect_timeout_s)),
            "options": f"-c statement_timeout={settings.statement_timeout_ms}",
            "application_name": settings.application_name or "schildwacht",
            # A connection whose server went away is noticed by the kernel, not by a hang.
            "keepalives": 1, "keepalives_idle": 30, "keepalives_interval": 10,
            "keepalives_count": 3,
            # ... and one that stops answering while a statement is on its way errors within
            # this bound instead of hanging for the kernel's retransmissions (an alarm raised
            # on the MQTT network thread waits on it: `backend.ingest.worker`).
            "tcp_user_timeout": settings.tcp_user_timeout_ms,
        },
    )
    dialect: Any = engine.dialect
    dialect.do_rollback = _rollback_keeping_prepared_statements
    return engine


def _rollback_keeping_prepared_statements(dbapi_connection: Any) -> None:
    """Roll back without forgetting the connection's prepared statements.

    psycopg deallocates every prepared statement on a rollback, in case the transaction changed
    the schema. Ours never do (migrations run on an engine of their own), and every session that
    only read ends in a rollback: the hot statements would be parsed again after each one, and
    each such rollback would cost a DEALLOCATE ALL. Prepared statements are not transactional on
    the server, so a plain ROLLBACK keeps them valid; psycopg reads the transaction state from
    the connection itself."""
    pgconn = dbapi_connection.pgconn
    if pgconn.transaction_status == pq.TransactionStatus.IDLE:
        return
    result = pgconn.exec_(b"ROLLBACK")
    if result.status != pq.ExecStatus.COMMAND_OK:
        message = (pgconn.error_message or b"").decode(errors="replace").strip()
        raise psycopg.OperationalError(f"rollback failed: {message}")


def hold_write_lock(session: Session) -> None:
    """Make the session's transaction hold SQLite's write lock from now on, waiting for it up to
    the busy timeout (`OperationalError` "database is locked" after that): what it reads next
    stays as read until it commits. On PostgreSQL nothing: callers lock the rows they change.
    A transaction that wrote already holds the lock; one that only read so far holds none yet
    (the driver began no transaction), so it begins one with `BEGIN IMMEDIATE`."""
    connection = session.connection()
    if connection.dialect.name != "sqlite":
        return
    if not connection.connection.dbapi_connection.in_transaction:  # type: ignore[union-attr]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def make_session_factory(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
