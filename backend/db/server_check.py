"""PostgreSQL server settings this product relies on, checked at start-up.

The safety invariants assume that a committed alert survives a crash, and the pings
partitions, the alerts and the outbox are written all day: a server that does not flush its
commits, or never vacuums, breaks them quietly; one that keeps too few WAL segments to reuse
makes every alarm's commit wait now and then while it creates one. `advice` (pure) says what
is wrong with a server's settings; `check` reads them and logs it. Nothing here refuses to
start: a test or demo server may run with such settings on purpose. The settings we ship are
in `deploy/postgresql/schildwacht.conf`."""

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

# name -> (the least value we need, in the unit `pg_settings.setting` reports, that unit, why).
AT_LEAST: dict[str, tuple[int, str, str]] = {
    # A WAL segment the server has no recycled file for is created when the WAL reaches it:
    # zero-filled and flushed (16 MB) while every commit of the server waits. Checkpoints keep
    # min_wal_size of old segments (at least) to reuse; measured with `loadtests.wal_stall`
    # (docs/benchmarks.md): commits of 20-165 ms at each segment created; reused, none waits.
    "min_wal_size": (
        1024, "MB", "when the WAL grows past the segments the server kept (a fresh start, a "
                    "busier hour), each new 16 MB segment holds up every commit, alarms "
                    "included, for tens of milliseconds"),
}


def advice(settings: Mapping[str, str]) -> list[str]:
    """One line per setting that differs from what this product needs (missing settings,
    e.g. on a server that does not report them, are not judged)."""
    lines = []
    for name, (wanted, why) in EXPECTED.items():
        value = settings.get(name)
        if value is not None and value != wanted:
            lines.append(f"PostgreSQL {name} is {value}, not {wanted}: {why}")
    for name, (least, unit, why) in AT_LEAST.items():
        value = settings.get(name)
        if value is not None and value.isdigit() and int(value) < least:
            lines.append(f"PostgreSQL {name} is {value} {unit}, less than {least} {unit}: {why}")
    return lines


def read_settings(engine: Engine) -> dict[str, str]:
    """The server's values of the settings in `EXPECTED` and `AT_LEAST` (empty off
    PostgreSQL)."""
    if engine.dialect.name != "postgresql":
        return {}
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT name, setting FROM pg_settings WHERE name = ANY(:names)"),
            {"names": [*EXPECTED, *AT_LEAST]},
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
