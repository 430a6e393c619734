"""Run the Alembic migrations programmatically (the CLI, the demo and the tests use this)."""

from __future__ import annotations

from importlib import resources

from alembic import command
from alembic.config import Config


def alembic_config(url: str) -> Config:
    ini = resources.files("backend.migrations") / "alembic.ini"
    cfg = Config(str(ini))
    cfg.set_main_option("script_location", str(resources.files("backend.migrations")))
    cfg.attributes["url"] = url
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Upgrade to every head: feature branches of the migration tree may coexist."""
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str) -> None:
    command.downgrade(alembic_config(url), revision)
