"""`python -m loadtests.bench` (`make bench`): the alarm path side by side with its floor.

In one run, on this machine, against its own Mosquitto (`set_tcp_nodelay true`, a free port),
PostgreSQL+PostGIS (database `schildwacht_bench`) and Redis:

1. the floor: paho -> Mosquitto -> paho, one hop and two hops through an empty relay process,
   QoS 1, at 4 (the alarms' rate), 100 and 1,000 msg/s; the ceiling of one bare paho subscriber
   process; at each alarm level, under its background and at the alarms' rate, two hops
   through the empty relay and through a relay that commits each message to PostgreSQL first
   (the floor of storing before forwarding);
2. the alarm path (`.venv/bin/schildwacht ingest` and `... api` as subprocesses): panic ->
   police MQTT feed, device ack, console WebSocket frame and webhook (when the subscriptions
   feature is present), idle and under a background fleet of 1,000 and 3,000 fixes/s checked
   against the active measures (when the geofence step is present); zero alarms lost or
   duplicated, counted in the database;
3. ingest throughput: fixes/s ramped until the worker falls behind;
4. memory of one worker holding 100,000 devices and 100,000 measures.

Prints tables with ratios to the floor and a verdict per target; writes the generated section
of `docs/benchmarks.md`, `docs/benchmarks/alarm_latency.png` and `.csv`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import psycopg
from rich.console import Console

from backend.ingest import alarm_timing
from backend.process import group_niceness, set_group_niceness, set_niceness
from loadtests import floor, wal_stall
from loadtests.alarm_path import Arrivals, Probe, run_alarms
from loadtests.broker import OwnMosquitto
from loadtests.errors import ServiceUnavailable
from loadtests.fleet import Fleet
from loadtests.report import (
    AlarmLevel,
    Results,
    machine,
    markdown,
    plot,
    print_tables,
    steal_share,
    write_csv,
    write_markdown,
)
from loadtests.seeding import seed, webhooks_supported
from loadtests.stack import (
    BENCH_DB_URL,
    BENCH_REDIS_URL,
    NICE,
    REPO_ROOT,
    STATS_LAG_S,
    Stack,
    alert_counts,
    libpq_dsn,
    ping_count,
    pings_inserted,
    received_times,
)
from loadtests.throughput import ramp
from loadtests.webhook import WebhookReceiver

console = Console()


@dataclass
class Config:
    # 4 msg/s is the alarms' rate below: what an idle machine's slower wake-up costs even an
    # empty relay. The targets compare with 1,000 msg/s, as the issue defines the floor.
    floor_rates: tuple[int, ...] = (4, 100, 1_000)
    floor_seconds: float = 3.0
    floor_repeats: int = 2
    ceiling_messages: int = 60_000
    victims: int = 200
    measures: int = 10_000
    levels: tuple[int, ...] = (0, 1_000, 3_000)
    # Alarms are rare: a low rate measures the path, not the queueing of alarms behind alarms.
    alarms: int = 120
    alarm_rate: float = 4.0
    # Messages through the empty relay, then the committing relay, before each level's alarms,
    # at the alarms' rate (0: neither measured).
    store_floor_messages: int = 120
    # p99.9 is a percentile from 1,000 samples on (by nearest rank the second slowest of
    # 1,000); of 120 it is the slowest. The level of the p99.9 target gets that many alarms.
    p999_level: int = 1_000
    p999_alarms: int = 1_000
    # WAL segments written and recycled before each group of alarm levels (`wal_stall.warm`);
    # None: about the server's min_wal_size.
    wal_segments: int | None = None
    # Up to the highest step any machine here has sustained and beyond; the ramp stops at the
    # first step the worker cannot sustain.
    ramp_rates: tuple[int, ...] = (250, 500, 1_000, 2_000, 3_000, 4_000, 5_000, 6_500, 8_000,
                                   10_000, 12_500, 15_000)
    ramp_step_s: float = 5.0
    memory_devices: int = 100_000
    memory_measures: int = 100_000
    # Fix workers on one shared subscription (`Stack.fix_workers`); the targets are one's.
    fix_workers: int = 1
    db_url: str = BENCH_DB_URL
    redis_url: str = BENCH_REDIS_URL
    write_docs: bool = True
    # The listeners' and broker's niceness (`_listen_at`); None: what this process has.
    listeners_nice: int | None = None
    docs_dir: Path = field(default_factory=lambda: REPO_ROOT / "docs")
    command: str = "make bench   (= .venv/bin/python -m loadtests.bench)"


def _listen_at(results: Results, nice: int) -> None:
    """The listeners stand for the police's system, a console's browser and a webhook endpoint,
    machines of their own in service. Here they share two cores with the deployment, and below
    the alarm worker's priority they would wait for its work after the feed (the follow-up, the
    console event) and time that instead of the feed. `main` runs them, the broker (the feed
    leaves through it), the alarm sender and the floor's processes (all started from this
    process) at the alarm worker's niceness; the fleet sets its own (the fix worker's)."""
    if set_niceness(nice) != nice:
        results.notes.append(f"listeners and broker not at niceness {nice} (needs "
                             "CAP_SYS_NICE): their latency includes waiting for the workers")


@contextlib.contextmanager
def _session_group_at(nice: int | None) -> Iterator[None]:
    """The scheduling group of this process's session (its caller's: a shell, make) at `nice`
    for the run, and back afterwards: the deployment's processes each have a group of their
    own at their niceness (`backend.process`), and the listeners must not wait behind them."""
    before = group_niceness()
    if nice is None or before is None:
        yield
        return
    set_group_niceness(nice)
    try:
        yield
    finally:
        set_group_niceness(before)


def _floor(results: Results, cfg: Config, port: int) -> None:
    for hops, target in ((1, results.one_hop), (2, results.two_hop)):
        for rate in cfg.floor_rates:
            count = max(50, int(rate * cfg.floor_seconds))
            # The floor is what the machine can do: the better of `floor_repeats` runs (by p99),
            # so that one scheduling hiccup on a shared VM does not loosen every ratio.
            runs = [floor.measure(port, rate, count, hops) for _ in range(cfg.floor_repeats)]
            target[rate] = min(runs, key=lambda lat: lat.p99)
            console.log(f"floor {hops} hop(s) @ {rate}/s: p50 {target[rate].p50:.2f} ms, "
                        f"p99 {target[rate].p99:.2f} ms")
    if cfg.ceiling_messages:
        results.ceiling = floor.subscriber_ceiling(port, cfg.ceiling_messages)
        console.log(f"bare subscriber ceiling: {results.ceiling:,.0f} msg/s")


def _wait_for_measures(stack: Stack, expected: int, timeout_s: float = 90.0) -> bool:
    """True once every fix worker logged that it loaded the measures."""
    deadline = time.monotonic() + timeout_s
    pattern = re.compile(r"measures loaded count=(\d+)")
    while time.monotonic() < deadline:
        stack.check_alive()
        if all(max(map(int, pattern.findall(stack.log_tail(name, 400))), default=0) >= expected
               for name in stack.fix_worker_names):
            return True
        time.sleep(0.5)
    return False


# Each process of the deployment leads a session of its own, as under a service manager:
# the niceness of its session's scheduling group (`backend.process`, item 57).
GROUPS = "session scheduling groups (autogroup) at niceness"
WAL_KEPT = ("PostgreSQL min_wal_size (WAL segments kept to reuse; readied before each group of "
            "alarm levels)")


def _alarm_levels(results: Results, cfg: Config, stack: Stack, port: int, seeded,
                  ledger: FixLedger, levels: Sequence[int], probe: Probe) -> None:
    # As a server in service (min_wal_size, deploy/postgresql): WAL segments to reuse, so that
    # no commit waits while the server creates one (`loadtests.wal_stall`). Before the loaded
    # levels this also replaces the segments the ramp used up.
    dsn = libpq_dsn(cfg.db_url)
    try:
        segments = wal_stall.warm(dsn, cfg.wal_segments)
        console.log(f"database: {segments} WAL segments written and recycled to reuse")
        results.machine[WAL_KEPT] = f"{wal_stall.min_wal_size_mb(dsn)} MB"
    except psycopg.Error as exc:  # e.g. a role that may not CHECKPOINT: say so, run anyway
        results.notes.append(f"WAL segments not readied before the alarm levels "
                             f"({type(exc).__name__}): a commit may wait for a new one")
    # Warm-up: wake the VM, the worker's caches and connections; not measured.
    # Message ids of its own per call: a repeated id is a redelivery, which raises nothing.
    run_alarms(probe, port, stack.topic_root, seeded.victims, f"warm{levels[0]}-",
               cfg.alarm_rate, min(30, cfg.alarms))
    saturated_at = 0
    for level in levels:
        stack.check_alive()
        if saturated_at:
            results.notes.append(f"level {level:,} fixes/s not run: the worker fell behind "
                                 f"at {saturated_at:,} fixes/s")
            continue
        fleet = None
        stored_before = pings_inserted(stack.db)
        alarms = max(cfg.alarms, cfg.p999_alarms) if level == cfg.p999_level else cfg.alarms
        store_floor_s = (2 * (cfg.store_floor_messages * 1.2 / cfg.alarm_rate + 5)
                         if cfg.store_floor_messages else 0)
        if level:
            duration = alarms / cfg.alarm_rate + 25 + store_floor_s
            fleet = Fleet(port, stack.topic_root, seeded.fleet, level, duration).start()
            time.sleep(2.0)
        store_floor = relay_floor = None
        if cfg.store_floor_messages:
            relay_floor = floor.measure(port, cfg.alarm_rate, cfg.store_floor_messages, 2)
            store_floor = floor.measure(port, cfg.alarm_rate, cfg.store_floor_messages, 2,
                                        commit_dsn=libpq_dsn(cfg.db_url))
            console.log(f"floors @ {level} fixes/s: empty relay p50 {relay_floor.p50:.2f} ms, "
                        f"p99 {relay_floor.p99:.2f} ms; committing relay p50 "
                        f"{store_floor.p50:.2f} ms, p99 {store_floor.p99:.2f} ms")
        prefix = f"L{level}-"
        started = time.perf_counter()
        sent_before = fleet.sent if fleet else 0
        watchdog = _Watchdog(stack, fleet, stored_before, level) if fleet else None
        run = run_alarms(probe, port, stack.topic_root, seeded.victims, prefix,
                         cfg.alarm_rate, alarms)
        if watchdog is not None:
            watchdog.stop()
        offered = ((fleet.sent - sent_before) / (time.perf_counter() - started)) if fleet else 0
        if fleet is not None:
            fleet.stop()
            ledger.add(fleet.sent)
            if watchdog is not None and watchdog.tripped_backlog:
                saturated_at = level
                results.notes.append(
                    f"at {level:,} fixes/s the worker fell behind: the fleet was stopped "
                    f"with {watchdog.tripped_backlog:,} fixes queued "
                    f"{watchdog.tripped_after_s:.0f} s into the level; the rest of its "
                    f"alarms were sent without background load")
        rows, distinct = _settled_alerts(stack, prefix, run.sent, timeout_s=0.0)
        slowest = [m for m, _, _ in run.slowest]
        timings = alarm_timing.read(stack.log_text("ingest-alarm"))
        level_result = AlarmLevel(
            level, offered, run, rows, distinct, store_floor=store_floor,
            relay_floor=relay_floor,
            worker_received=received_times(stack.db, slowest),
            worker_times={m: timings[m] for m in slowest if m in timings})
        results.alarm.append(level_result)
        sent_at = {m: at for m, _, at in run.slowest}
        console.log(f"alarms @ {level} fixes/s: police p50 {run.police.p50:.1f} ms, "
                    f"p99 {run.police.p99:.1f} ms; not yet raised {level_result.late}, "
                    f"duplicated {level_result.duplicated}; slowest: " + ", ".join(
                        f"{s.message_id} {s.ms:.1f} ms ({_part(s.before)} until the worker had "
                        f"it, {_part(s.in_worker)} in it, {_part(s.database)} of that in the "
                        f"database) sent {_clock(sent_at[s.message_id])}"
                        for s in level_result.slowest_split()))
        if not _drain(stack, ledger):
            results.notes.append(f"the worker had not stored the fleet's fixes 90 s after "
                                 f"the {level:,} fixes/s level ended")


def _part(ms: float | None) -> str:
    return f"{ms:.1f} ms" if ms is not None else "?"


def _clock(wall: float) -> str:
    """A wall-clock time as the processes' logs write it (local time, milliseconds)."""
    return time.strftime("%H:%M:%S", time.localtime(wall)) + f",{int(wall % 1 * 1000):03d}"


def _listeners(results: Results, stack: Stack, port: int) -> tuple[Probe, WebhookReceiver | None]:
    """The police feed, ack and console listeners, and a webhook receiver with its police
    subscription when the subscriptions feature exists."""
    probe = Probe(port, stack.topic_root, stack.api_url, stack.admin_token)
    if not webhooks_supported():
        results.notes.append("webhook: n/a (no backend.subscriptions)")
        return probe, None
    receiver = WebhookReceiver(probe.on_webhook)
    probe.webhook = Arrivals()
    try:
        receiver.subscribe(stack.api_url, stack.admin_token)
        results.webhooks = True
    except Exception as exc:  # noqa: BLE001 - reported, not fatal
        results.notes.append(f"webhook subscription could not be created: {exc}")
        probe.webhook = None
    return probe, receiver


class _Watchdog:
    """Stops the fleet as soon as the worker is more than `max_lag_s` of fixes behind, so that
    an overloaded level does not leave minutes of backlog for everything after it. It reads
    the database's statistics, not a count of the pings: counting them every second took about
    50 ms on both cores and held up the alarms that came meanwhile."""

    def __init__(self, stack: Stack, fleet: Fleet, stored_before: int, rate: float,
                 max_lag_s: float = 3.0) -> None:
        self.tripped_backlog = 0
        self.tripped_after_s = 0.0
        self._stop = threading.Event()
        self._started = time.monotonic()

        def watch() -> None:
            while not self._stop.wait(1.0):
                backlog = fleet.sent - (pings_inserted(stack.db) - stored_before)
                if backlog > (max_lag_s + STATS_LAG_S) * rate:
                    self.tripped_backlog = backlog
                    self.tripped_after_s = time.monotonic() - self._started
                    fleet.stop()
                    return

        self._thread = threading.Thread(target=watch, name="watchdog", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)


def _settled_alerts(stack: Stack, prefix: str, sent: int, timeout_s: float = 30.0
                    ) -> tuple[int, int]:
    """Alert rows and distinct ids for the prefix, once every alarm is in (or the timeout)."""
    deadline = time.monotonic() + timeout_s
    while True:
        rows, distinct = alert_counts(stack.db, prefix)
        if distinct >= sent or time.monotonic() >= deadline:
            return rows, distinct
        time.sleep(0.5)


class FixLedger:
    """Fixes published by every fleet of one run: what the worker must have stored."""

    def __init__(self) -> None:
        self.total = 0

    def add(self, count: int) -> None:
        self.total += count


def _drain(stack: Stack, ledger: FixLedger, quiet_s: float = 30.0,
           timeout_s: float = 90.0) -> bool:
    """Wait until the worker has stored every fix the fleets published (or the ping count has
    not moved for `quiet_s`, or the timeout); True when all are stored."""
    deadline = time.monotonic() + timeout_s
    last, still_since = -1, time.monotonic()
    while time.monotonic() < deadline:
        count = ping_count(stack.db)
        if count >= ledger.total:
            return True
        if count != last:
            last, still_since = count, time.monotonic()
        elif time.monotonic() - still_since >= quiet_s:
            return False
        time.sleep(0.5)
    return False


def _throughput(results: Results, cfg: Config, stack: Stack, port: int, seeded,
                ledger: FixLedger) -> None:
    if not _drain(stack, ledger, timeout_s=120.0):
        results.notes.append("the ramp started while the worker still had a backlog from the "
                             "alarm levels: its first steps understate the worker")
    workers = [psutil.Process(stack.pid(name)) for name in stack.fix_worker_names]

    def worker_cpu_s() -> float:
        # every thread of every fix worker, user + system
        return sum(t.user + t.system for t in (w.cpu_times() for w in workers))

    results.ramp = ramp(
        port, stack.topic_root, seeded.fleet, lambda: ping_count(stack.db), cfg.ramp_rates,
        step_s=cfg.ramp_step_s, on_sent=ledger.add, worker_cpu_s=worker_cpu_s,
        on_step=lambda s: console.log(f"ramp {s.target:,.0f}/s: {s.describe()}"),
    )


def _reconcile(results: Results, stack: Stack, ledger: FixLedger) -> None:
    """Count each level's alerts again once the worker has drained: lost means not raised by
    the end of the run."""
    drained = _drain(stack, ledger, timeout_s=120.0)
    for level in results.alarm:
        level.drained = drained
        level.final_alerts, level.final_distinct = _settled_alerts(
            stack, f"L{level.background}-", level.run.sent, timeout_s=30.0)


def _memory(results: Results, cfg: Config) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "loadtests.memory_probe", "--devices", str(cfg.memory_devices),
         "--measures", str(cfg.memory_measures)],
        capture_output=True, text=True, timeout=300, cwd=REPO_ROOT, check=True,
    )
    results.memory = json.loads(out.stdout.strip().splitlines()[-1])
    results.memory_devices = cfg.memory_devices
    results.memory_measures = cfg.memory_measures
    console.log(f"memory: {results.memory['total_mib']:.0f} MiB")


def run(cfg: Config) -> Results:
    started = time.perf_counter()
    ledger = FixLedger()
    results = Results(command=cfg.command, machine=machine(), planned_levels=cfg.levels)
    results.fix_workers = cfg.fix_workers
    if cfg.listeners_nice is not None:
        _listen_at(results, cfg.listeners_nice)
    cpu_at_start = psutil.cpu_times()
    with _session_group_at(cfg.listeners_nice), OwnMosquitto(nice=cfg.listeners_nice) as broker:
        console.log(f"own Mosquitto on port {broker.port} (set_tcp_nodelay true)")
        if cfg.floor_rates:
            _floor(results, cfg, broker.port)
        with Stack(broker.port, db_url=cfg.db_url, redis_url=cfg.redis_url,
                   fix_workers=cfg.fix_workers) as stack:
            seeded = seed(stack.db, victims=cfg.victims, measures=cfg.measures)
            # As in service: devices and measures were registered before the workers started.
            stack.restart_ingest()
            results.machine[GROUPS] = ", ".join(
                f"{name} {nice}" for name, nice in stack.group_niceness().items()
                if nice is not None) or "none (no autogroups in this kernel)"
            results.measures = seeded.measures
            if seeded.measures:
                # A few fixes make the worker's zone step load the measures.
                warm = Fleet(broker.port, stack.topic_root, seeded.fleet[:10], 20, 1.0).start()
                warm.join()
                ledger.add(warm.sent)
                if not _wait_for_measures(stack, seeded.measures):
                    results.notes.append("the worker did not report loading the measures")
                    results.measures = 0
            else:
                results.notes.append("geofence step: n/a (no backend.measures / zone step)")
            # Idle alarms first, then the ramp (it stops at its first step the worker cannot
            # sustain, so it leaves little backlog), then the alarm levels under load.
            probe, receiver = _listeners(results, stack, broker.port)
            try:
                idle = tuple(level for level in cfg.levels if level == 0)
                if idle:
                    _alarm_levels(results, cfg, stack, broker.port, seeded, ledger, idle, probe)
                if cfg.ramp_rates:
                    _throughput(results, cfg, stack, broker.port, seeded, ledger)
                loaded = tuple(level for level in cfg.levels if level)
                if loaded:
                    _alarm_levels(results, cfg, stack, broker.port, seeded, ledger, loaded,
                                  probe)
            finally:
                probe.close()
                if probe.desk is not None:
                    results.acknowledged = probe.desk.acknowledged
                    results.acknowledge_failures = probe.desk.failed
                if receiver is not None:
                    receiver.close()
            stack.check_alive()
            _reconcile(results, stack, ledger)
    results.machine["cpu time taken by the hypervisor during the run (steal)"] = (
        f"{steal_share(cpu_at_start, psutil.cpu_times()):.1%}")
    if cfg.memory_devices:
        _memory(results, cfg)
    results.seconds = time.perf_counter() - started
    return results


def publish(results: Results, cfg: Config) -> None:
    print_tables(results)
    if not cfg.write_docs:
        return
    out = cfg.docs_dir / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    plot_name = None
    if results.alarm:
        plot_name = "alarm_latency.png"
        plot(out / plot_name, results)
        write_csv(out / "alarm_latency.csv", results)
    write_markdown(cfg.docs_dir / "benchmarks.md", markdown(results, plot_name))
    console.log(f"wrote {cfg.docs_dir / 'benchmarks.md'}")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=Config.alarms,
                        help="alarms per background level")
    parser.add_argument("--alarm-rate", type=float, default=Config.alarm_rate)
    parser.add_argument("--p999-alarms", type=int, default=Config.p999_alarms,
                        help=f"alarms at {Config.p999_level:,} fixes/s, the p99.9 target's "
                             "level (at least --alarms)")
    parser.add_argument("--measures", type=int, default=Config.measures)
    parser.add_argument("--no-docs", action="store_true", help="print only; write no files")
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-ramp", action="store_true")
    parser.add_argument("--skip-alarms", action="store_true",
                        help="no floor and no alarm levels (with --no-docs)")
    parser.add_argument("--fix-workers", type=int, default=1,
                        help="fix workers on one shared subscription (with --no-docs)")
    args = parser.parse_args(argv)
    if (args.skip_alarms or args.fix_workers != 1) and not args.no_docs:
        parser.error("--skip-alarms and --fix-workers measure beside the documented run: "
                     "add --no-docs")
    if args.fix_workers < 1:
        parser.error("--fix-workers must be at least 1")
    # The listeners (floor subscriber, police feed, console WebSocket, webhook receiver) are
    # threads of this interpreter: none may wait Python's default 5 ms for it before stamping
    # an arrival.
    sys.setswitchinterval(0.0005)
    cfg = Config(alarms=args.alarms, alarm_rate=args.alarm_rate, measures=args.measures,
                 p999_alarms=args.p999_alarms, write_docs=not args.no_docs,
                 listeners_nice=NICE["ingest-alarm"])
    if args.skip_memory:
        cfg.memory_devices = 0
    if args.skip_ramp:
        cfg.ramp_rates = ()
    if args.skip_alarms:
        cfg.levels, cfg.floor_rates = (), ()
    cfg.fix_workers = args.fix_workers
    # Stopped from outside: unwind, so that the stack's processes and broker are stopped too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        results = run(cfg)
    except ServiceUnavailable as exc:
        console.print(f"[bold red]service unavailable:[/bold red] {exc}")
        return 2
    publish(results, cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
