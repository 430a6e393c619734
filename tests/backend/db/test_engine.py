"""The PostgreSQL engine: a statement is prepared on the server from its second run and stays
prepared through rollbacks (a session that only read ends in one); the pool hands out the
connection used last, so the hot path finds its statements prepared."""

from __future__ import annotations

import socket

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.db.engine import make_engine
from backend.settings import DatabaseSettings


def _prepared(conn) -> list[str]:
    return list(conn.execute(text(
        "SELECT statement FROM pg_prepared_statements WHERE statement LIKE 'SELECT 1 AS sw_probe%'"
    )).scalars())


def test_second_run_is_prepared_on_the_connection_used_last(pg_url):
    engine = make_engine(DatabaseSettings(url=pg_url))
    probe = text("SELECT 1 AS sw_probe WHERE 1 = :one")
    try:
        with engine.connect() as conn:
            first_pid = conn.execute(text("SELECT pg_backend_pid()")).scalar_one()
            conn.execute(probe, {"one": 1})
            assert _prepared(conn) == []
            conn.execute(probe, {"one": 1})
            assert len(_prepared(conn)) == 1
            with engine.connect() as other:  # a second connection while the first is out
                other.execute(text("SELECT 1"))
        with engine.connect() as conn:
            assert conn.execute(text("SELECT pg_backend_pid()")).scalar_one() == first_pid
            assert len(_prepared(conn)) == 1
    finally:
        engine.dispose()


def test_a_failed_transaction_rolls_back_and_the_connection_goes_on(pg_url):
    engine = make_engine(DatabaseSettings(url=pg_url))
    probe = text("SELECT 1 AS sw_probe WHERE 1 = :one")
    try:
        with engine.connect() as conn:
            conn.execute(probe, {"one": 1})
            conn.execute(probe, {"one": 1})
            with pytest.raises(DBAPIError):
                conn.execute(text("SELECT 1 / 0"))
            conn.rollback()
            assert conn.execute(probe, {"one": 1}).scalar_one() == 1
            assert len(_prepared(conn)) == 1
    finally:
        engine.dispose()


@pytest.mark.parametrize(("name", "shown"), [("schildwacht ingest alarm",) * 2,
                                             (None, "schildwacht")])
def test_the_server_shows_whose_connection_it_is(pg_url, name, shown):
    engine = make_engine(DatabaseSettings(url=pg_url, application_name=name))
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT application_name FROM pg_stat_activity "
                                     "WHERE pid = pg_backend_pid()")).scalar_one() == shown
    finally:
        engine.dispose()


def test_a_connection_that_stops_answering_is_given_up_by_the_kernel(pg_url):
    """A connection gone half-open errors once what it sent stays unacknowledged for
    `tcp_user_timeout_ms`, instead of hanging a statement for the kernel's retransmissions
    (statement_timeout is the server's, and never fires there)."""
    engine = make_engine(DatabaseSettings(url=pg_url, tcp_user_timeout_ms=7_000))
    try:
        with engine.connect() as conn:
            fd = conn.connection.dbapi_connection.pgconn.socket
            with socket.fromfd(fd, socket.AF_INET, socket.SOCK_STREAM) as sock:  # a copy
                assert sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_USER_TIMEOUT) == 7_000
    finally:
        engine.dispose()


@pytest.mark.parametrize("dialect", ["postgresql", "sqlite"])
def test_a_database_error_does_not_carry_the_statements_values(dialect, pg_url, tmp_path):
    """Errors end up in logs; the values of a statement can be a victim's position."""
    url = pg_url if dialect == "postgresql" else f"sqlite:///{tmp_path}/e.db"
    engine = make_engine(DatabaseSettings(url=url))
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as info:
            conn.execute(text("SELECT CAST(:where AS integer) / 0 FROM no_such_table"),
                         {"where": "51.9244,4.4690"})
        assert "51.9244" not in str(info.value) and "no_such_table" in str(info.value)
    finally:
        engine.dispose()


def test_a_write_lock_held_on_sqlite_keeps_other_writers_out_until_commit(tmp_path):
    """What an append reads after `hold_write_lock` cannot change under it: another writer is
    kept out (here with a busy timeout too short to wait it out) until the holder commits."""
    from sqlalchemy.exc import OperationalError

    from backend.db.engine import hold_write_lock, make_session_factory

    url = f"sqlite:///{tmp_path}/lock.db"
    engine = make_engine(DatabaseSettings(url=url))
    other = make_engine(DatabaseSettings(url=url, connect_timeout_s=0.05))
    try:
        with engine.begin() as conn:
            conn.execute(text("CREATE TABLE t (n integer)"))
        sessions = make_session_factory(engine)
        with sessions() as holder:
            holder.execute(text("SELECT count(*) FROM t"))  # reads take no lock
            hold_write_lock(holder)
            hold_write_lock(holder)  # a second call within the transaction changes nothing
            with pytest.raises(OperationalError, match="locked"), other.begin() as conn:
                conn.execute(text("INSERT INTO t VALUES (2)"))
            holder.execute(text("INSERT INTO t VALUES (1)"))
            holder.commit()
        with other.begin() as conn:
            conn.execute(text("INSERT INTO t VALUES (2)"))
            assert conn.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    finally:
        engine.dispose()
        other.dispose()


def test_a_write_lock_on_postgresql_sends_nothing(pg_url):
    """PostgreSQL callers lock the rows they change; the production path is left as it was."""
    from backend.db.engine import hold_write_lock, make_session_factory
    from tests.support.db import statements

    engine = make_engine(DatabaseSettings(url=pg_url))
    try:
        sessions = make_session_factory(engine)
        with sessions() as s:
            s.execute(text("SELECT 1"))
            seen = statements(sessions)
            hold_write_lock(s)
            assert seen == []
    finally:
        engine.dispose()
