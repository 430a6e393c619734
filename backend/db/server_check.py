"""PostgreSQL server settings this product relies on, checked at start-up.

The safety invariants assume that a committed alert survives a crash, and the pings
partitions, the alerts and the outbox are written all day: a server that does not flush its
commits, or never vacuums, breaks them quietly. `advice` (pure) says what is wrong with a
server's settings; `check` reads them and logs it. Nothing here refuses to start: a test or
demo server may run with such settings on purpose."""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import Engine, text

log = logging.getLogger(__name__)

# name -> (the value we need, why). Values as `pg_settings.setting` reports them.
EXPECTED: dict[str, tuple[str, str]] = {
    "fsync": ("on", "a crash of the database server can lose or corrupt committed alerts"),
    "synchronous_commit": (
        "on", "a crash of the database server can lose alerts already acknowledged to the "
              "broker and sent to the police (safety invariant 1)"),
    "full_page_writes": ("on", "a crash of the database server can corrupt tables"),
    "autovacuum": (
        "on", "the pings partitions, alerts and outbox are never vacuumed or analysed: they "
              "bloat and their query plans go stale"),
}


def advice(settings: Mapping[str, str]) -> list[str]:
    """One line per setting that differs from what this product needs (missing settings,
    e.g. on a server that does not report them, are not judged)."""
    lines = []
    for name, (wanted, why) in EXPECTED.items():
        value = settings.get(name)
        if value is not None and value != wanted:
            lines.append(f"PostgreSQL {name} is {value}, not {wanted}: {why}")
    return lines


def read_settings(engine: Engine) -> dict[str, str]:
    """The server's values of the settings in `EXPECTED` (empty off PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, setting FROM pg_settings WHERE name = ANY(:names)"),
            {"names": list(EXPECTED)},
        )
        return {name: setting for name, setting in rows}


def check(engine: Engine) -> list[str]:
    """Log a warning per setting that differs from what this product needs; return them. A
    failure to read them is logged, never raised: the caller starts anyway."""
    try:
        lines = advice(read_settings(engine))
    except Exception:  # noqa: BLE001 - advice only; the worker must start
        log.warning("could not read the database server's settings", exc_info=True)
        return []
    for line in lines:
        log.warning("%s", line)
    return lines
