"""Run the Alembic migrations programmatically (the CLI, the demo and the tests use this)."""

from __future__ import annotations

from importlib import resources
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine


def alembic_config(url: str) -> Config:
    ini = resources.files("backend.migrations") / "alembic.ini"
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(resources.files("backend.migrations")))
    cfg.attributes["url"] = url
    return cfg


def include_object(obj: Any, name: str | None, type_: str, reflected: bool,
                   compare_to: Any) -> bool:
    """What the migrations manage: not PostGIS's own table, nor the partitions of pings, which
    the migrations and the partition maintenance create by name."""
    if type_ == "table" and (name == "spatial_ref_sys" or (name or "").startswith("pings_")):
        return False
    return True


def schema_drift(url: str) -> list[Any]:
    """Where the database's schema differs from the models' (Alembic's autogenerate diff);
    empty when the migrations build exactly what the code expects."""
    from backend.db.models import Base

    engine = create_engine(url, hide_parameters=True)  # errors never carry values
    try:
        with engine.connect() as conn:
            context = MigrationContext.configure(conn, opts={"include_object": include_object})
            return list(compare_metadata(context, Base.metadata))
    finally:
        engine.dispose()


def upgrade(url: str, revision: str = "heads") -> None:
    """Upgrade to every head: feature branches of the migration tree may coexist."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
