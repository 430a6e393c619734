"""The migrations build exactly the schema the models describe, on PostgreSQL and on SQLite
(the embedded default): a column, index or constraint that one has and the other lacks is a
difference here, before it is a surprise in service."""

from __future__ import annotations

from pathlib import Path

from backend.db.migrate import schema_drift, upgrade


def test_postgresql_schema_is_the_models(pg_url):
    assert schema_drift(pg_url) == []


def test_sqlite_schema_is_the_models(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/schema.db"
    upgrade(url)
    assert schema_drift(url) == []


def test_a_difference_is_reported(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/schema.db"
    upgrade(url, "0008_custody_tightening")  # before offender_homes.location became required
    [change] = [d for d in schema_drift(url) if d[0][0] == "modify_nullable"]
    assert change[0][2:4] == ("offender_homes", "location")
