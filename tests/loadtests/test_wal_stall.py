"""The WAL-stall probe on the real database: it commits, writes WAL at the asked rate and
leaves no table behind, and its warm-up writes a segment a time; which slow commits it puts
next to a new segment (pure). No timing assertions. That the warm-up's segments are reused,
not created, during the alarm levels is read from `pg_wal` in docs/benchmarks.md: on a server
that already keeps segments ahead no test here could tell."""

from __future__ import annotations

import psycopg
import pytest

from loadtests.stack import libpq_dsn
from loadtests.wal_stall import SEGMENT_BYTES, Outcome, run, warm


def test_slow_commits_are_matched_to_segments_that_appeared_near_them():
    o = Outcome(commits_ms=[1.0, 40.0, 30.0, 2.0], commit_at=[0.0, 1.0, 5.0, 9.0],
                appeared_at=[1.1, 9.0])

    assert o.slow(15.0) == [(1.0, 40.0), (5.0, 30.0)]
    assert o.slow_near_new_segment(15.0) == 1  # the one at 5.0 s had none within 150 ms


@pytest.mark.services
def test_it_commits_while_writing_wal_and_drops_its_tables(loadtest_db_url):
    dsn = libpq_dsn(loadtest_db_url)

    o = run(dsn, seconds=1.5, interval_ms=10, wal_mb_s=2)

    assert len(o.commits_ms) >= 50
    assert all(ms > 0 for ms in o.commits_ms)
    assert o.wal_bytes >= 1024 * 1024  # about 3 MB were asked for
    with psycopg.connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_tables WHERE tablename LIKE 'wal_stall_%'"
                            ).fetchone()[0]
    assert left == 0


@pytest.mark.services
def test_warming_writes_a_segment_each(loadtest_db_url):
    dsn = libpq_dsn(loadtest_db_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        before = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]

    assert warm(dsn, segments=3) == 3

    with psycopg.connect(dsn, autocommit=True) as conn:
        moved = conn.execute("SELECT pg_current_wal_lsn() - %s::pg_lsn", (str(before),)
                             ).fetchone()[0]
    assert moved >= 2 * SEGMENT_BYTES  # three switches: at least two whole segments on
