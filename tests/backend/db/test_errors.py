"""A database error is logged by type and SQLSTATE (or SQLite's error name), never by its
message, which can repeat a refused row."""

from __future__ import annotations

import sqlite3

import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError, IntegrityError

from backend.db.errors import loggable


def test_a_postgresql_error_is_its_type_and_sqlstate(pg_url):
    engine = create_engine(pg_url)
    try:
        with engine.connect() as conn, pytest.raises(DBAPIError) as info:
            conn.execute(text("SELECT 1 / 0"))
        assert isinstance(info.value.orig, psycopg.Error)
        assert loggable(info.value) == "DataError sqlstate=22012"
    finally:
        engine.dispose()


def test_a_sqlite_error_is_its_type_and_error_name():
    orig = sqlite3.connect(":memory:")
    orig.execute("CREATE TABLE t (n integer CHECK (n > 0))")
    with pytest.raises(sqlite3.IntegrityError) as info:
        orig.execute("INSERT INTO t VALUES (-1)")
    error = IntegrityError("INSERT INTO t", {}, info.value)
    assert loggable(error) == "IntegrityError sqlstate=SQLITE_CONSTRAINT_CHECK"


def test_an_error_without_a_code_is_its_type():
    assert loggable(RuntimeError("Failing row contains (51.9, 4.4)")) == "RuntimeError"
