"""Supervision benchmark: what one pass of device supervision costs the `loops` process with
5,000 / 50,000 / 150,000 active devices, on PostgreSQL and Redis.

    python -m loadtests.bench_supervision           # prints a table
    python -m loadtests.bench_supervision --docs    # and writes its section of docs/benchmarks.md
    python -m loadtests.bench_supervision --closed-per-device=1   # with a closed-alert history

A pass (`SupervisionLoop.run_once`) reads every active device and its hot state and decides
its health signals; it runs every `supervision.supervision_interval_s` (5 s), so its CPU time
over that interval is the share of one core that device supervision takes. Each device has a
case and reported 10 s ago (its last fix 15 s ago), except one in a thousand, silent for two
minutes: the first pass raises their grouped desk alerts, the passes measured after it find
them open and change nothing, the steady state. CPU time is this process's (the loop's own
work); wall time includes the waits for PostgreSQL and Redis.

With `--closed-per-device=K` each device also has K silent-device alerts the desk resolved,
raised over the last 180 days (closed alerts are kept: no retention), and device 0 has been
silent for those 180 days, so a pass's read of the closed alerts reaches back that far.

The database (`SCHILDWACHT_BENCH_SUPERVISION_DATABASE_URL`) is the benchmark's own: it is
emptied at the start of each size. Redis is the benchmark's (`SCHILDWACHT_BENCH_REDIS_URL`),
under a key prefix of its own, removed afterwards.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import insert
from sqlalchemy.engine import Engine

from backend.alerts.models import Alert
from backend.runtime import Runtime
from backend.settings import Settings
from backend.state.store import LastFix
from backend.supervision.loop import SupervisionLoop
from loadtests.report import cpu_probe_ms
from loadtests.sections import DOCS, write_section
from loadtests.stack import BENCH_REDIS_URL, ensure_database, register, truncate

SIZES = (5_000, 50_000, 150_000)
PASSES = 5
SILENT_EVERY = 1_000  # one device in a thousand has been silent for two minutes
HISTORY_DAYS = 180  # the closed alerts of `--closed-per-device`, and device 0's silence
DB_URL = os.environ.get(
    "SCHILDWACHT_BENCH_SUPERVISION_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/schildwacht_bench_supervision",
)

BEGIN, END = "<!-- supervision:begin -->", "<!-- supervision:end -->"


def _fill_state(runtime: Runtime, device_ids: list[str], now: float,
                long_silent: bool = False) -> int:
    """Every device heard 10 s ago with a fix of 15 s ago, one in a thousand silent for 120 s
    (device 0 for `HISTORY_DAYS` when `long_silent`). Returns how many are silent."""
    silent = 0
    for start in range(0, len(device_ids), 10_000):
        seen, fixes = {}, {}
        for i, device_id in enumerate(device_ids[start:start + 10_000], start):
            quiet = i % SILENT_EVERY == 0
            silent += quiet
            heard = now - (120.0 if quiet else 10.0)
            if long_silent and i == 0:
                heard = now - HISTORY_DAYS * 86_400.0
            seen[device_id] = heard
            fixes[device_id] = LastFix(tst=heard - 5.0, lat=51.92, lon=4.48, acc=8.0)
        runtime.state.write(fixes, seen)
    return silent


def _closed_history(engine: Engine, case_of: dict[str, uuid.UUID], per_device: int,
                    now: float) -> int:
    """`per_device` resolved silent-device alerts of every device (each of its own case),
    raised over the last `HISTORY_DAYS` days, at least an hour ago. Returns how many."""
    hours = HISTORY_DAYS * 24 - 1
    rows = []
    for n, (device_id, case_id) in enumerate(case_of.items()):
        for k in range(per_device):
            raised = datetime.fromtimestamp(now - 3_600.0 * (1 + (n * 7 + k * 13) % hours), UTC)
            rows.append({"id": uuid.uuid4(), "case_id": case_id, "device_id": device_id,
                         "type": "device_silent", "priority": "P3", "state": "resolved",
                         "sequence": 2, "raised_at": raised, "updated_at": raised,
                         "closed_at": raised, "flags": ["grouped"],
                         "health_devices": [device_id]})
    with engine.begin() as conn:
        for i in range(0, len(rows), 5_000):
            conn.execute(insert(Alert), rows[i:i + 5_000])
        conn.exec_driver_sql("ANALYZE alerts")
    return len(rows)


def measure(size: int, *, db_url: str = DB_URL, redis_url: str = BENCH_REDIS_URL,
            passes: int = PASSES, closed_per_device: int = 0) -> dict:
    """One size: an emptied database with `size` active devices (and `closed_per_device`
    closed alerts of each), one pass to raise what the silent ones need, then `passes`
    measured passes."""
    ensure_database(db_url)
    prefix = f"swbench{uuid.uuid4().hex[:8]}"
    runtime = Runtime.build(Settings(
        database={"url": db_url}, broker={"embedded": False},
        redis={"url": redis_url, "key_prefix": prefix},
    ))
    try:
        truncate(runtime.engine)
        device_ids = [f"sv-{i:06d}" for i in range(size)]
        case_of = register(runtime.engine, device_ids, "victim")
        closed = _closed_history(runtime.engine, case_of, closed_per_device, time.time())
        silent = _fill_state(runtime, device_ids, time.time(), long_silent=closed > 0)
        loop = SupervisionLoop(runtime)
        first = loop.run_once()
        cpu_ms, wall_ms, results = [], [], []
        for _ in range(passes):
            cpu, wall = time.process_time(), time.perf_counter()
            results.append(loop.run_once())
            cpu_ms.append((time.process_time() - cpu) * 1e3)
            wall_ms.append((time.perf_counter() - wall) * 1e3)
        interval = runtime.settings.supervision.supervision_interval_s
        return {
            "devices": results[-1].devices, "silent": silent, "first_new": first.new,
            "closed": closed,
            "signals": results[-1].signals, "later_new": sum(r.new for r in results),
            "later_updates": sum(r.updates for r in results),
            "cpu_ms": round(statistics.median(cpu_ms), 1),
            "wall_ms": round(statistics.median(wall_ms), 1),
            "core_share": round(statistics.median(cpu_ms) / (interval * 1e3), 3),
            "interval_s": interval,
        }
    finally:
        if runtime.redis is not None:
            for key in runtime.redis.scan_iter(f"{prefix}:*"):
                runtime.redis.delete(key)
        runtime.close()


def run(sizes: Sequence[int] = SIZES, **kwargs) -> list[dict]:
    return [measure(size, **kwargs) for size in sizes]


def markdown(rows: list[dict], command: str, probe_ms: float) -> str:
    closed = max((r.get("closed", 0) for r in rows), default=0)
    history = (f" Closed alerts kept: {closed // max(rows[-1]['devices'], 1)} per device, "
               f"raised over the last {HISTORY_DAYS} days; one device silent for all of them."
               if closed else "")
    lines = [
        BEGIN, "",
        f"Generated by `{command}` on {platform.node() or 'this machine'} "
        f"({os.cpu_count()} cores, Python {platform.python_version()}, CPU probe "
        f"{probe_ms:.0f} ms). Median of {PASSES} passes after the first.{history}", "",
        "| active devices | silent devices | signals per pass | CPU ms per pass | wall ms per "
        "pass | share of one core (pass every 5 s) |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r['devices']:,} | {r['silent']:,} | {r['signals']:,} | {r['cpu_ms']} | "
            f"{r['wall_ms']} | {r['core_share']:.1%} |"
        )
    lines += ["", END]
    return "\n".join(lines)


def write_docs(rows: list[dict], command: str, probe_ms: float, path: Path = DOCS) -> None:
    """Replace the generated supervision section of docs/benchmarks.md (append it if missing)."""
    write_section(path, markdown(rows, command, probe_ms), BEGIN, END,
                   "## Device supervision per pass")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(argv if argv is not None else sys.argv[1:])
    docs = "--docs" in args
    option = "--closed-per-device="
    closed = [int(a[len(option):]) for a in args if a.startswith(option)]
    sizes = tuple(int(a) for a in args if a != "--docs" and not a.startswith(option)) or SIZES
    probe = cpu_probe_ms()
    rows = run(sizes, closed_per_device=closed[-1] if closed else 0)
    if docs:
        command = " ".join(["python -m loadtests.bench_supervision", *args])
        write_docs(rows, command, probe)
    print(f"cpu probe {probe:.0f} ms")
    headers = ("devices", "silent", "signals", "cpu_ms", "wall_ms", "core_share")
    print(" | ".join(f"{h:>10}" for h in headers))
    for r in rows:
        print(" | ".join(f"{r[h]:>10}" for h in headers))
    return 0


if __name__ == "__main__":
    sys.exit(main())
