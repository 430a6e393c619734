"""`python -m loadtests.wal_stall`: do small commits wait while the server starts a WAL segment?

PostgreSQL writes its WAL in 16 MB segment files. A segment the server has no recycled file for
is created when the WAL reaches it, by whichever process writes then: it fills the new file
with zeros and flushes it (`wal_init_zero`) holding the lock every commit's flush needs. Every
commit of the whole server waits meanwhile. Recycled segments (old files renamed ahead by a
checkpoint, as many as `min_wal_size` allows, or the WAL the last checkpoints saw) cost
nothing at that point.

This probe, against the benchmark database (`SCHILDWACHT_BENCH_DATABASE_URL`), commits one small
row every `--interval-ms` (like an alarm's raise) while a second connection writes WAL at about
`--wal-mb-s` (like the fix worker's pings at a few thousand fixes/s), and watches the server's
WAL directory (`pg_ls_waldir()`). It prints the commits' p50 / p99 / max, the segments that
appeared while WAL was written (created then, not recycled ahead), and how many slow commits
(over `--slow-ms`) came within 150 ms of one appearing. `--warm` first writes about
`min_wal_size` of WAL and checkpoints twice, so that the server has segments to recycle, as a
server does after its first checkpoints under load. Needs a role that may run CHECKPOINT (for
`--warm`) and read `pg_ls_waldir()`.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import psycopg

from loadtests.stack import BENCH_DB_URL, ensure_database, libpq_dsn
from loadtests.stats import percentile

SEGMENT_BYTES = 16 * 1024 * 1024
CONNECT_TIMEOUT_S = 10
_ROW = b"\x5a" * 1024  # incompressible enough: wal_compression only touches page images


@dataclass
class Outcome:
    commits_ms: list[float] = field(default_factory=list)
    commit_at: list[float] = field(default_factory=list)  # monotonic, at each commit's start
    appeared_at: list[float] = field(default_factory=list)  # monotonic, new segment seen
    wal_bytes: int = 0
    started_at: float = 0.0
    seconds: float = 0.0

    def slow(self, slow_ms: float) -> list[tuple[float, float]]:
        return [(at, ms) for at, ms in zip(self.commit_at, self.commits_ms, strict=True)
                if ms > slow_ms]

    def slow_near_new_segment(self, slow_ms: float, window_s: float = 0.15) -> int:
        return sum(1 for at, _ in self.slow(slow_ms)
                   if any(abs(at - seen) <= window_s for seen in self.appeared_at))


def _connect(dsn: str) -> psycopg.Connection:
    return psycopg.connect(dsn, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S)


def min_wal_size_mb(dsn: str) -> int:
    with _connect(dsn) as conn:
        return int(conn.execute("SELECT setting FROM pg_settings WHERE name = 'min_wal_size'"
                                ).fetchone()[0])


def warm(dsn: str, segments: int | None = None) -> int:
    """Write `segments` (by default about `min_wal_size`) of WAL, a segment switch each, then
    checkpoint twice: the old segments are recycled as the next ones, as far as `min_wal_size`
    lets the server keep them. Returns how many segments were written."""
    count = segments or max(1, min_wal_size_mb(dsn) * 1024 * 1024 // SEGMENT_BYTES)
    with _connect(dsn) as conn:
        for _ in range(count):
            conn.execute("SELECT pg_logical_emit_message(false, 'schildwacht', 'warm')")
            conn.execute("SELECT pg_switch_wal()")
        conn.execute("CHECKPOINT")
        conn.execute("CHECKPOINT")
    return count


def _segments(conn: psycopg.Connection) -> tuple[set[str], str]:
    """The segment files, and the name of the one after the WAL's insert position: a file new
    up to that one was created on demand (a checkpoint renames recycled files further ahead)."""
    names = {name for (name,) in conn.execute(
        "SELECT name FROM pg_ls_waldir() WHERE name ~ '^[0-9A-F]{24}$'")}
    (bound,) = conn.execute("SELECT pg_walfile_name(pg_current_wal_insert_lsn() + %s::bigint)",
                            (SEGMENT_BYTES,)).fetchone()
    return names, bound


def run(dsn: str, seconds: float, interval_ms: float, wal_mb_s: float) -> Outcome:
    outcome = Outcome()
    stop = threading.Event()
    with _connect(dsn) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS wal_stall_commit (at double precision)")
        conn.execute("CREATE TABLE IF NOT EXISTS wal_stall_bulk (payload bytea)")
        conn.execute("TRUNCATE wal_stall_commit, wal_stall_bulk")
        start_lsn = conn.execute("SELECT pg_current_wal_lsn()").fetchone()[0]

    def bulk() -> None:  # about wal_mb_s of WAL a second, in 20 writes a second
        rows_per_write = max(1, int(wal_mb_s * 1024 * 1024 / len(_ROW) / 20))
        with _connect(dsn) as c, c.cursor() as cur:
            next_at = time.monotonic()
            while not stop.is_set():
                cur.executemany("INSERT INTO wal_stall_bulk VALUES (%s)",
                                [(_ROW,)] * rows_per_write)
                next_at += 0.05
                stop.wait(max(0.0, next_at - time.monotonic()))

    def watch() -> None:  # every 20 ms
        with _connect(dsn) as c:
            known, _ = _segments(c)
            while not stop.is_set():
                now, bound = _segments(c)
                if any(name <= bound for name in now - known):
                    outcome.appeared_at.append(time.monotonic())
                known = now
                stop.wait(0.02)

    threads = [threading.Thread(target=bulk, daemon=True),
               threading.Thread(target=watch, daemon=True)]
    for t in threads:
        t.start()
    started = outcome.started_at = time.monotonic()
    with _connect(dsn) as conn:
        conn.execute("INSERT INTO wal_stall_commit VALUES (0)")  # prepared, warm
        while time.monotonic() - started < seconds:
            at = time.monotonic()
            conn.execute("INSERT INTO wal_stall_commit VALUES (%s)", (at,))
            outcome.commits_ms.append((time.monotonic() - at) * 1000)
            outcome.commit_at.append(at)
            time.sleep(max(0.0, interval_ms / 1000 - (time.monotonic() - at)))
        stop.set()
        for t in threads:
            t.join(timeout=5)
        outcome.seconds = time.monotonic() - started
        outcome.wal_bytes = int(conn.execute(
            "SELECT pg_current_wal_lsn() - %s::pg_lsn", (str(start_lsn),)).fetchone()[0])
        conn.execute("DROP TABLE wal_stall_commit, wal_stall_bulk")
    return outcome


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--interval-ms", type=float, default=10.0)
    parser.add_argument("--wal-mb-s", type=float, default=2.0)
    parser.add_argument("--slow-ms", type=float, default=15.0)
    parser.add_argument("--warm", action="store_true",
                        help="first give the server about min_wal_size of segments to recycle")
    args = parser.parse_args(argv)
    ensure_database(BENCH_DB_URL)
    dsn = libpq_dsn(BENCH_DB_URL)
    if args.warm:
        print(f"warmed: {warm(dsn)} segments written and recycled")
    o = run(dsn, args.seconds, args.interval_ms, args.wal_mb_s)
    ms = sorted(o.commits_ms)
    slow = o.slow(args.slow_ms)
    print(f"{len(ms)} commits in {o.seconds:.0f} s, WAL {o.wal_bytes / 2**20:.0f} MB "
          f"({o.wal_bytes / 2**20 / o.seconds:.1f} MB/s): commit p50 {percentile(ms, 50):.2f} "
          f"ms, p99 {percentile(ms, 99):.2f}, max {ms[-1]:.1f}")
    print(f"segments that appeared while WAL was written: {len(o.appeared_at)}; commits over "
          f"{args.slow_ms:g} ms: {len(slow)}, of them within 150 ms of one appearing: "
          f"{o.slow_near_new_segment(args.slow_ms)}")
    slowest = sorted(zip(o.commits_ms, o.commit_at, strict=True), reverse=True)[:5]
    print("slowest commits: " + ", ".join(
        f"{m:.1f} ms at {at - o.started_at:.1f} s" for m, at in slowest))
    return 0


if __name__ == "__main__":
    sys.exit(main())
