"""`python -m loadtests.directory_reload`: what a full reload of the device directory, or of
the case snapshots (`--what cases`), does to an alarm raised in the same process meanwhile; and
how long a fix worker's lane waits for its measures to reload after one changed (`--what
measures`).

Every ingest worker reloads its whole directory every `ingest.directory_refresh_s` (300 s) and
within a second of any change to devices or cases; the alarm worker reloads every case snapshot
within a second of any change to a case. Here `--devices` devices, one case each (registered
in the benchmark database, `SCHILDWACHT_BENCH_DATABASE_URL`, when it holds fewer), are loaded
as the alarm worker holds them (heap frozen, automatic collection off, a switch interval of 0.5
ms), while another thread, standing for an alarm, sleeps 1 ms and does a little Python, over
and over. Printed: how late each such tick was (p50 / p99 / max, ms) with nothing else running
and while the directory (or the snapshots) reload `--reloads` times, and how long each took.
With `--one-case` each reload reads only one case again, as after a change that named it.

Each fix worker's zone step reloads its measures in the fix lane, before its next batch, once
any measure changed. With `--what measures` the database holds `--devices` active measures (the
benchmark's, seeded afresh when it holds fewer), one of them changes before each reload, and
the time given is the worker's `LiveMeasures.refresh()`: what the lane's fixes wait.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, sessionmaker

from backend.cases.snapshots import CaseSnapshots
from backend.db.engine import make_engine, make_session_factory
from backend.devices.directory import DeviceDirectory
from backend.devices.models import Device
from backend.measures import service as measure_service
from backend.measures.live import LiveMeasures
from backend.measures.models import MeasureRow
from backend.settings import DatabaseSettings
from geofences import GeofenceConfig
from loadtests.seeding import seed
from loadtests.stack import BENCH_DB_URL, ensure_database, register, truncate
from loadtests.stats import percentile

SWITCH_INTERVAL_S = 0.0005  # `process.switch_interval_s`, as the alarm worker runs


@dataclass(frozen=True)
class Lateness:
    p50_ms: float
    p99_ms: float
    max_ms: float


@dataclass(frozen=True)
class Result:
    devices: int
    reload_ms: list[float]
    idle: Lateness
    reloading: Lateness


class Ticker:
    """A thread that sleeps 1 ms and sums 2,000 numbers, again and again, noting how much
    later than 1 ms each round ended."""

    def __init__(self) -> None:
        self.late_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ticker", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.perf_counter()
            time.sleep(0.001)
            sum(range(2_000))
            self.late_ms.append((time.perf_counter() - started) * 1e3 - 1.0)

    def start(self) -> Ticker:
        self._thread.start()
        return self

    def take(self, timeout_s: float = 2.0) -> Lateness:
        """The rounds noted since the last take. Reloads shorter than a round (one case read
        again, on a busy machine) may end before any round does: the round under way then
        holds what they held, so wait for it to end."""
        deadline = time.monotonic() + timeout_s
        while not self.late_ms and time.monotonic() < deadline:
            time.sleep(0.001)
        late, self.late_ms = self.late_ms, []
        if not late:
            raise RuntimeError(f"the ticker noted no round in {timeout_s} s")
        return Lateness(percentile(late, 50), percentile(late, 99), max(late))

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass(frozen=True)
class Reload:
    """What one kind of reload holds (`held` entries), one reload (`run`) and what happens
    before each, untimed (`prepare`: a change to reload after)."""

    held: int
    run: Callable[[], object]
    prepare: Callable[[], None] = lambda: None


def _registered(engine: Engine, devices: int) -> None:
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(Device))
    if have < devices:
        register(engine, [f"dirload-{have + i:07d}" for i in range(devices - have)], "victim")


def _one_case(engine: Engine) -> list[uuid.UUID]:
    """A case, as a change through the API names it (`backend.cases.changes.Moves.cases`)."""
    with engine.connect() as conn:
        return [conn.scalar(select(Device.case_id).order_by(Device.id).limit(1))]


def _directory(engine: Engine, sessions: sessionmaker[Session], devices: int,
               one_case: bool) -> Reload:
    _registered(engine, devices)
    directory = DeviceDirectory(sessions)
    held = directory.load_all()
    if one_case:
        named = _one_case(engine)
        return Reload(held, lambda: directory.load_cases(named))
    return Reload(held, directory.load_all)


def _cases(engine: Engine, sessions: sessionmaker[Session], devices: int,
           one_case: bool) -> Reload:
    _registered(engine, devices)
    snapshots = CaseSnapshots(ttl_s=3_600.0)
    with sessions() as session:
        held = snapshots.load_all(session)
    named = _one_case(engine) if one_case else None

    def run() -> int:
        with sessions() as session:
            if named is not None:
                return snapshots.load_cases(session, named)
            snapshots.forget()  # as after a change (`CaseSnapshots.watch`)
            return snapshots.load_all(session)

    return Reload(held, run)


def _measures(engine: Engine, sessions: sessionmaker[Session], measures: int,
              one_case: bool) -> Reload:
    """A fix worker's live measures over `measures` stored ones, one of them changed before
    each reload (its pre-alert ring, 0 or 100 m in turn: it must be compiled again)."""
    if one_case:
        raise ValueError("one case: with the directory or the case snapshots")
    with engine.connect() as conn:
        have = conn.scalar(select(func.count()).select_from(MeasureRow)
                           .where(MeasureRow.active.is_(True)))
    if have < measures:
        truncate(engine)
        seed(engine, victims=0, measures=measures)
    live = LiveMeasures(sessions, GeofenceConfig(), poll_s=0.0)
    live.refresh()

    def change_one() -> None:
        with sessions.begin() as session:
            row = session.scalars(select(MeasureRow).where(MeasureRow.active.is_(True))
                                  .order_by(MeasureRow.id).limit(1)).one()
            ring = 0.0 if row.pre_alert_m == 100.0 else 100.0
            measure_service.update(session, row, {"pre_alert_m": ring})

    return Reload(len(live.engine.index), live.refresh, change_one)


RELOADS = {"directory": _directory, "cases": _cases, "measures": _measures}


def measure(db_url: str, devices: int = 150_000, reloads: int = 3,
            what: str = "directory", one_case: bool = False) -> Result:
    ensure_database(db_url)
    engine = make_engine(DatabaseSettings(url=db_url))
    reload = RELOADS[what](engine, make_session_factory(engine), devices, one_case)
    switch = sys.getswitchinterval()
    sys.setswitchinterval(SWITCH_INTERVAL_S)
    gc.collect()
    gc.freeze()
    gc.disable()
    ticker = Ticker().start()
    try:
        time.sleep(1.0)
        idle = ticker.take()
        took = []
        for _ in range(reloads):
            reload.prepare()
            started = time.perf_counter()
            reload.run()
            took.append((time.perf_counter() - started) * 1e3)
        reloading = ticker.take()
    finally:
        ticker.stop()
        gc.enable()
        gc.unfreeze()
        sys.setswitchinterval(switch)
        engine.dispose()
    return Result(reload.held, took, idle, reloading)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.directory_reload",
                                     description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--devices", type=int, default=None,
                        help="devices, cases or measures held (150,000; 10,000 measures)")
    parser.add_argument("--reloads", type=int, default=3)
    parser.add_argument("--what", choices=tuple(RELOADS), default="directory")
    parser.add_argument("--one-case", action="store_true",
                        help="read one case's devices (or snapshot) again, as after a change "
                             "that names its case, instead of all")
    args = parser.parse_args(argv)
    if args.one_case and args.what == "measures":
        parser.error("--one-case reads a case: with --what directory or cases")
    held = args.devices or (10_000 if args.what == "measures" else 150_000)
    r = measure(BENCH_DB_URL, held, args.reloads, args.what, args.one_case)
    held = {"directory": "devices", "cases": "case snapshots", "measures": "measures"}[args.what]
    print(f"{args.what}: {r.devices:,} {held}; reloads took "
          + ", ".join(f"{ms:.0f}" for ms in r.reload_ms) + " ms")
    print("ticks late (ms)  |   p50 |   p99 |    max")
    for name, late in (("nothing else", r.idle), ("while reloading", r.reloading)):
        print(f"{name:<16} | {late.p50_ms:5.2f} | {late.p99_ms:5.2f} | {late.max_ms:6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
