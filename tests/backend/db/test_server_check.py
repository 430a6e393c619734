"""The start-up check of the database server's settings: what it advises (pure), and that it
reads the real server's values."""

from __future__ import annotations

import logging

from sqlalchemy import create_engine, text

from backend.db import server_check
from backend.db.engine import make_engine
from backend.settings import DatabaseSettings

GOOD = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on", "autovacuum": "on",
        "min_wal_size": "1024"}


def test_a_server_as_needed_gets_no_advice():
    assert server_check.advice(GOOD) == []


def test_each_setting_that_differs_is_named_with_its_consequence():
    lines = server_check.advice({**GOOD, "autovacuum": "off", "synchronous_commit": "local"})

    assert len(lines) == 2
    assert lines[0].startswith("PostgreSQL synchronous_commit is local, not on: ")
    assert "safety invariant 1" in lines[0]
    assert lines[1].startswith("PostgreSQL autovacuum is off, not on: ")


def test_too_few_wal_segments_kept_to_reuse_is_named_with_its_consequence():
    assert server_check.advice({**GOOD, "min_wal_size": "2048"}) == []

    (line,) = server_check.advice({**GOOD, "min_wal_size": "80"})

    assert line.startswith("PostgreSQL min_wal_size is 80 MB, less than 1024 MB: ")
    assert "every commit, alarms included" in line


def test_settings_the_server_does_not_report_are_not_judged():
    assert server_check.advice({"fsync": "on"}) == []


def test_it_reads_the_real_servers_values_and_logs_its_advice(pg_url, caplog):
    engine = make_engine(DatabaseSettings(url=pg_url))
    try:
        settings = server_check.read_settings(engine)
        with engine.connect() as conn:
            autovacuum = conn.execute(text("SHOW autovacuum")).scalar_one()
        with caplog.at_level(logging.WARNING, logger="backend.db.server_check"):
            lines = server_check.check(engine)
    finally:
        engine.dispose()

    assert set(settings) == {*server_check.EXPECTED, *server_check.AT_LEAST}
    assert settings["autovacuum"] == autovacuum
    assert lines == server_check.advice(settings)
    assert [r.getMessage() for r in caplog.records] == lines


def test_off_postgresql_there_is_nothing_to_read(tmp_path):
    engine = create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    assert server_check.read_settings(engine) == {}


def test_an_unreachable_server_is_logged_not_raised(caplog):
    engine = make_engine(DatabaseSettings(
        url="postgresql+psycopg://nobody@127.0.0.1:1/none", connect_timeout_s=1))
    try:
        with caplog.at_level(logging.WARNING, logger="backend.db.server_check"):
            assert server_check.check(engine) == []
    finally:
        engine.dispose()
    assert "could not read the database server's settings" in caplog.text
