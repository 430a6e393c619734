"""The migrations build exactly the schema the models describe, on PostgreSQL and on SQLite
(the embedded default): a column, index or constraint that one has and the other lacks is a
difference here, before it is a surprise in service."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

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


@contextmanager
def scratch_database(pg_url: str) -> Iterator[tuple[str, Engine]]:
    """A PostGIS database of its own (the shared one stays at the head): its URL and an
    autocommit engine; dropped afterwards."""
    name = f"schildwacht_mig_{uuid.uuid4().hex[:8]}"
    admin = create_engine(pg_url, isolation_level="AUTOCOMMIT")
    url = make_url(pg_url).set(database=name).render_as_string(hide_password=False)
    with admin.connect() as c:
        c.execute(text(f'CREATE DATABASE "{name}"'))
    engine = create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as c:
            c.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
        yield url, engine
    finally:
        engine.dispose()
        with admin.connect() as c:
            c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def test_the_alerts_index_migration_runs_again_after_a_failed_concurrent_build(pg_url):
    """A concurrent index build that failed leaves the index behind (invalid); the migration,
    run again, replaces it instead of failing with "already exists"."""
    with scratch_database(pg_url) as (url, engine):
        upgrade(url, "0011_webhook_prior_attempts")
        with engine.connect() as c:  # what the failed build left
            c.execute(text("CREATE INDEX ix_alerts_case_type_raised ON alerts (case_id)"))
        upgrade(url)
        with engine.connect() as c:
            columns = c.execute(text(
                "SELECT pg_get_indexdef('ix_alerts_case_type_raised'::regclass)")).scalar_one()
        assert "(case_id, type, raised_at)" in columns


def test_the_delivery_key_migration_runs_again_after_a_failed_concurrent_build(pg_url):
    """The escalation step's column is added before the new key's index is built concurrently;
    a build that failed leaves both behind. The migration, run again, goes through and ends
    with the new key in place of the old one."""
    with scratch_database(pg_url) as (url, engine):
        upgrade(url, "0012_alerts_case_type_raised")
        with engine.connect() as c:  # what the failed run left
            c.execute(text("ALTER TABLE webhook_deliveries ADD COLUMN escalation_step integer "
                           "NOT NULL DEFAULT 0"))
            c.execute(text("CREATE INDEX uq_webhook_deliveries_message "
                           "ON webhook_deliveries (alert_id)"))
        upgrade(url)
        with engine.connect() as c:
            keys = dict(c.execute(text(
                "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                "WHERE conrelid = 'webhook_deliveries'::regclass AND contype = 'u'")).all())
        assert keys == {"uq_webhook_deliveries_message":
                        "UNIQUE (subscription_id, alert_id, sequence, escalation_step)"}
        assert schema_drift(url) == []


def _tokens_expire_from_the_migration(url: str, engine: Engine) -> None:
    """Tokens stored before migration 0014 (a revoked one too) all get an expiry, 90 days
    after the migration; the column is then required."""
    upgrade(url, "0013_webhook_escalation_step")
    with engine.begin() as c:
        for name, revoked in (("police-rdam", None), ("old", "2026-01-01 00:00:00+00:00")):
            c.execute(text(
                "INSERT INTO api_tokens (id, name, role, token_sha256, scope, created_at, "
                "revoked_at) VALUES (:id, :name, 'police', :digest, '{}', "
                "'2025-01-01 00:00:00+00:00', :revoked)"),
                {"id": uuid.uuid4().hex, "name": name, "digest": uuid.uuid4().hex * 2,
                 "revoked": revoked})
    before = datetime.now(UTC)
    upgrade(url)
    with engine.connect() as c:
        stored = c.execute(text("SELECT expires_at FROM api_tokens")).scalars().all()
    assert len(stored) == 2
    for value in stored:
        expires = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        expires = expires.replace(tzinfo=expires.tzinfo or UTC)
        assert before + timedelta(days=90) <= expires <= datetime.now(UTC) + timedelta(days=90)
    assert schema_drift(url) == []


def test_existing_tokens_get_an_expiry_on_sqlite(tmp_path: Path):
    url = f"sqlite:///{tmp_path}/tokens.db"
    engine = create_engine(url)
    try:
        _tokens_expire_from_the_migration(url, engine)
    finally:
        engine.dispose()


def test_existing_tokens_get_an_expiry_on_postgresql(pg_url):
    with scratch_database(pg_url) as (url, engine):
        _tokens_expire_from_the_migration(url, engine)


def _police(code: str = "RE07", stands_in_for: str | None = None) -> dict:
    return {"kind": "police_unit", "code": code, "reason": "police unit of the location",
            "exercise": stands_in_for is not None, "stands_in_for": stands_in_for}


DESK = {"kind": "vt_desk", "code": "VT4607", "reason": "Veilig Thuis desk of the location",
        "exercise": False, "stands_in_for": None}
# Alerts stored before migration 0020: (recipients, `escalated` timeline entries' details,
# escalation step, told the police).
TOLD_BEFORE = {
    "panic": ([_police(), DESK], [], 0, True),
    "drill": ([_police("exercise-police", "RE07")], [], 0, True),
    "approach": ([DESK], [{"target": "primary", "recipients": [DESK]}], 1, False),
    "approach-called": ([DESK], [{"target": "police_unit", "recipients": [_police()]}], 3,
                        True),
    # Acknowledged before its step to the police, re-alerted later: past the step, not told.
    "approach-past": ([DESK], [{"target": "primary", "recipients": [DESK]}], 4, False),
    # A step to the police that had no unit to call told nobody.
    "approach-no-unit": ([DESK], [{"target": "police_unit", "recipients": []}], 3, False),
    "battery_low": (None, [], None, False),
}


def _alerts_are_told_from_what_happened(url: str, engine: Engine) -> None:
    """Migration 0020 marks an alert told the police when a police unit is among its
    recipients, or when its timeline holds a step to the police unit that had one to call."""
    import sqlalchemy as sa

    from backend.db.types import UTCDateTime

    upgrade(url, "0019_alerts_confirmed_by")
    alerts = sa.table("alerts", *(sa.column(n, t) for n, t in (
        ("id", sa.Uuid()), ("type", sa.String()), ("priority", sa.String()),
        ("state", sa.String()), ("sequence", sa.Integer()), ("raised_at", UTCDateTime()),
        ("updated_at", UTCDateTime()), ("flags", sa.JSON()), ("exercise", sa.Boolean()),
        ("police_unit", sa.String()), ("recipients", sa.JSON()),
        ("escalation_step", sa.Integer()))))
    events = sa.table("alert_events", *(sa.column(n, t) for n, t in (
        ("alert_id", sa.Uuid()), ("at", UTCDateTime()), ("actor", sa.String()),
        ("kind", sa.String()), ("detail", sa.JSON()))))
    now = datetime.now(UTC)
    ids = {name: uuid.uuid4() for name in TOLD_BEFORE}
    with engine.begin() as c:
        for name, (recipients, steps, step, _) in TOLD_BEFORE.items():
            c.execute(alerts.insert().values(
                id=ids[name], type=name.split("-")[0], priority="P1", state="new", sequence=1,
                raised_at=now, updated_at=now, flags=[], exercise=name == "drill",
                police_unit="RE07", recipients=recipients, escalation_step=step))
            for index, detail in enumerate(steps, start=1):
                c.execute(events.insert().values(
                    alert_id=ids[name], at=now, actor="system:escalation", kind="escalated",
                    detail={"step": index, "action": "escalate", **detail}))
    upgrade(url)
    with engine.connect() as c:
        told = dict(c.execute(sa.select(alerts.c.id, sa.column("told_police", sa.Boolean()))
                              .select_from(alerts)).all())
    assert {name: told[i] for name, i in ids.items()} == {
        name: expected for name, (_, _, _, expected) in TOLD_BEFORE.items()}
    assert schema_drift(url) == []


def test_existing_alerts_are_told_the_police_from_their_recipients_and_timeline_on_sqlite(
        tmp_path: Path):
    url = f"sqlite:///{tmp_path}/told.db"
    engine = create_engine(url)
    try:
        _alerts_are_told_from_what_happened(url, engine)
    finally:
        engine.dispose()


def test_existing_alerts_are_told_the_police_from_their_recipients_and_timeline_on_postgresql(
        pg_url):
    with scratch_database(pg_url) as (url, engine):
        _alerts_are_told_from_what_happened(url, engine)
