"""The system under test, on the real services: a benchmark database (migrated), a Redis key
prefix and a topic root of its own, the ingest worker and the API as subprocesses of the
installed `schildwacht` command, configured through the environment only."""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import httpx
import psycopg
import redis
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, insert, select, text
from sqlalchemy.engine import Engine, make_url

from backend.alerts.models import Alert
from backend.cases.models import Case
from backend.db.migrate import upgrade
from backend.db.models import Base
from backend.devices.models import Device, Ping
from backend.process import group_niceness
from loadtests.broker import free_port
from loadtests.errors import ServiceUnavailable

BENCH_DB_URL = os.environ.get(
    "SCHILDWACHT_BENCH_DATABASE_URL",
    "postgresql+psycopg://postgres@127.0.0.1:5432/schildwacht_bench",
)
REPO_ROOT = Path(__file__).resolve().parents[1]
BENCH_REDIS_URL = os.environ.get("SCHILDWACHT_BENCH_REDIS_URL", "redis://127.0.0.1:6379/14")
# CPU niceness of each process of the deployment (README, "Running it for real"): the alarm
# path ahead of bulk work on a shared machine. Below 0 needs CAP_SYS_NICE; without it a
# process runs at what it inherited (`backend.process.set_niceness`).
NICE = {"ingest-alarm": -10, "api": -5, "loops": 0, "ingest": 5}
# What an ingest worker logs once it has subscribed (`backend.cli.cmd_ingest`).
INGEST_READY = "ingest worker running as"


def schildwacht_command() -> list[str]:
    """The installed console script next to this interpreter (`.venv/bin/schildwacht`)."""
    script = Path(sys.executable).with_name("schildwacht")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "backend.cli"]


def libpq_dsn(url: str, database: str | None = None) -> str:
    """The SQLAlchemy URL as a libpq connection string (for psycopg directly), optionally for
    another database of the same server."""
    u = make_url(url)
    dsn = (f"host={u.host or '127.0.0.1'} port={u.port or 5432} "
           f"user={u.username or 'postgres'} dbname={database or u.database}")
    return f"{dsn} password={u.password}" if u.password else dsn


def ensure_database(url: str = BENCH_DB_URL) -> None:
    """Create the database with PostGIS if it is missing, then migrate it to every head."""
    u = make_url(url)
    admin = libpq_dsn(url, "postgres")
    try:
        with psycopg.connect(admin, autocommit=True, connect_timeout=5) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (u.database,)).fetchone()
            if not exists:
                conn.execute(f'CREATE DATABASE "{u.database}"')
    except psycopg.OperationalError as exc:
        raise ServiceUnavailable(f"PostgreSQL at {u.host}:{u.port}: {exc}") from exc
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    upgrade(url)


def truncate(engine: Engine) -> None:
    names = ", ".join(t.name for t in Base.metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} CASCADE"))


def register(engine: Engine, device_ids: Iterable[str], role: str,
             home_unit: str = "RE07") -> dict[str, uuid.UUID]:
    """One case per device, inserted in bulk; returns each device's case id."""
    cases: list[dict[str, Any]] = []
    devices: list[dict[str, Any]] = []
    case_of: dict[str, uuid.UUID] = {}
    for device_id in device_ids:
        case_id = uuid.uuid4()
        cases.append({"id": case_id, "reference": f"B-{device_id}", "home_police_unit": home_unit,
                      "custody_status": "none", "exercise": False})
        devices.append({"id": device_id, "case_id": case_id, "role": role, "active": True,
                        "report_interval_s": 30})
        case_of[device_id] = case_id
    with engine.begin() as conn:
        for i in range(0, len(cases), 5_000):
            conn.execute(insert(Case), cases[i:i + 5_000])
            conn.execute(insert(Device), devices[i:i + 5_000])
    return case_of


def alert_counts(engine: Engine, message_prefix: str) -> tuple[int, int]:
    """(alert rows, distinct alarm message ids) for alarms whose id starts with the prefix."""
    with engine.connect() as conn:
        row = conn.execute(
            select(func.count(), func.count(func.distinct(Alert.message_id)))
            .where(Alert.message_id.like(f"{message_prefix}%"))
        ).one()
    return int(row[0]), int(row[1])


def received_times(engine: Engine, message_ids: Iterable[str]) -> dict[str, float]:
    """When the alarm worker received each alarm (its alert's `raised_at`: stamped as paho
    handed the message over), as wall-clock seconds, by alarm message id."""
    ids = list(message_ids)
    if not ids:
        return {}
    with engine.connect() as conn:
        rows = conn.execute(select(Alert.message_id, Alert.raised_at)
                            .where(Alert.message_id.in_(ids))).all()
    return {m: at.timestamp() for m, at in rows}


def ping_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(Ping)).scalar_one())


# A server process reports its statistics at most about once a second.
STATS_LAG_S = 1.0


def pings_inserted(engine: Engine) -> int:
    """Rows ever inserted into the ping partitions, from PostgreSQL's statistics: 0.1 ms
    instead of `ping_count`'s scan of every row (about 50 ms on three server processes at
    350,000 pings, both cores). Up to `STATS_LAG_S` behind; compare two readings, never with
    `ping_count`."""
    with engine.connect() as conn:
        return int(conn.execute(text(
            "SELECT coalesce(sum(pg_stat_get_tuples_inserted(inhrelid)), 0) FROM pg_inherits "
            "WHERE inhparent = 'pings'::regclass")).scalar_one())


@dataclass
class Stack:
    """Ingest worker and API subprocesses on one broker port, database and Redis prefix."""

    broker_port: int
    db_url: str = BENCH_DB_URL
    redis_url: str = BENCH_REDIS_URL
    api: bool = True
    run_id: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    admin_token: str = field(default_factory=lambda: "bench-" + secrets.token_urlsafe(24),
                             repr=False)
    # Webhook secrets sealed as in service: each delivery opens its secret to sign.
    secret_key: str = field(default_factory=lambda: Fernet.generate_key().decode(), repr=False)
    api_port: int = field(default_factory=free_port)
    log_level: str = "INFO"  # at least INFO: the stack waits for its workers' start lines
    # Fix workers: more than one share one subscription (`SCHILDWACHT_BROKER__SHARE_GROUP`),
    # as a deployment adds them past what one sustains.
    fix_workers: int = 1
    # Their group's name: a secret, the same for the stack's life (a worker restarted into
    # another group keeps the first in its persistent session, and takes every fix twice).
    share_group: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    engine: Engine | None = None
    _logdir: Path | None = None

    @property
    def fix_worker_names(self) -> list[str]:
        """"ingest", then "ingest-2", "ingest-3" ...: each loads the measures."""
        return ["ingest"] + [f"ingest-{k}" for k in range(2, self.fix_workers + 1)]

    @property
    def db(self) -> Engine:
        """The benchmark database (after `start()`)."""
        if self.engine is None:
            raise ServiceUnavailable("the stack is not started")
        return self.engine

    @property
    def topic_root(self) -> str:
        return f"bench/{self.run_id}/v1"

    @property
    def redis_prefix(self) -> str:
        return f"swbench{self.run_id}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def env(self) -> dict[str, str]:
        env = dict(os.environ)
        # The repository first on the path: the subprocess imports this checkout's packages
        # whatever state the editable install is in.
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (str(REPO_ROOT), env.get("PYTHONPATH", "")) if p
        )
        env.update({
            "SCHILDWACHT_DATABASE__URL": self.db_url,
            "SCHILDWACHT_BROKER__HOST": "127.0.0.1",
            "SCHILDWACHT_BROKER__PORT": str(self.broker_port),
            "SCHILDWACHT_BROKER__EMBEDDED": "false",
            "SCHILDWACHT_REDIS__URL": self.redis_url,
            "SCHILDWACHT_REDIS__KEY_PREFIX": self.redis_prefix,
            "SCHILDWACHT_PROTOCOL__TOPIC_ROOT": self.topic_root,
            "SCHILDWACHT_API__HOST": "127.0.0.1",
            "SCHILDWACHT_API__PORT": str(self.api_port),
            "SCHILDWACHT_API__ADMIN_TOKEN": self.admin_token,
            "SCHILDWACHT_POLICE__SECRET_KEYS": self.secret_key,
            # The benchmark's victims press panic and send nothing else, so device supervision
            # would raise a silent-device alert for each (20 s after its panic) in the middle of
            # the run: work of the loops process, not of the paths measured here.
            "SCHILDWACHT_SUPERVISION__SILENT_AFTER_S": "86400",
            "SCHILDWACHT_SUPERVISION__SILENT_AFTER_PURSUIT_S": "86400",
            "SCHILDWACHT_SUPERVISION__NO_FIX_AFTER_S": "86400",
            "SCHILDWACHT_SUPERVISION__NO_FIX_AFTER_PURSUIT_S": "86400",
        })
        return env

    def start(self, *, fresh_db: bool = True) -> Self:
        ensure_database(self.db_url)
        self.engine = create_engine(self.db_url, pool_size=2)
        if fresh_db:
            truncate(self.engine)
        # Under SW_BENCH_LOG_DIR the processes' logs stay after the run (for a diagnosis).
        self._logdir = Path(tempfile.mkdtemp(prefix="sw-bench-logs-",
                                             dir=os.environ.get("SW_BENCH_LOG_DIR")))
        self.start_ingest()
        if self.api:
            # The loops in a process of their own: a supervision pass never holds the console.
            # The API carries the console stream: on the alarm path, ahead of the fix worker.
            self._spawn("api", ["api"], {"SCHILDWACHT_API__RUN_LOOPS": "false",
                                         "SCHILDWACHT_PROCESS__NICE": str(NICE["api"])})
            self._spawn("loops", ["loops"], {"SCHILDWACHT_PROCESS__NICE": str(NICE["loops"])})
            self._wait_http(f"{self.api_url}/health")
        return self

    def start_ingest(self) -> None:
        """The deployment this benchmark measures: alarms in a worker of their own at CPU
        niceness -10 (when this process may raise priority), fixes and status reports in
        another at 5 (`IngestSettings.channels`, `nice`), or in `fix_workers` of them on one
        shared subscription. Returns once every worker has subscribed: until then the broker
        keeps nothing for a session it has not seen yet, and what the fleet sends is lost."""
        started = {name: self.log_text(name).count(INGEST_READY)
                   for name in ("ingest-alarm", *self.fix_worker_names)}
        self._spawn("ingest-alarm", ["ingest", "--channels", "alarm",
                                     "--client-id", f"bench-alarm-{self.run_id}"],
                    {"SCHILDWACHT_PROCESS__NICE": str(NICE["ingest-alarm"])})
        shared = ({"SCHILDWACHT_BROKER__SHARE_GROUP": self.share_group}
                  if self.fix_workers > 1 else {})
        for name in self.fix_worker_names:
            self._spawn(name, ["ingest", "--channels", "other",
                               "--client-id", f"bench-{name}-{self.run_id}"],
                        {"SCHILDWACHT_PROCESS__NICE": str(NICE["ingest"]), **shared})
        for name, before in started.items():
            self._wait_log(name, INGEST_READY, before + 1)

    def restart_ingest(self) -> None:
        """Stop and start the ingest workers (their MQTT sessions persist: nothing is lost), so
        that they load every device and measure stored meanwhile, as after a deployment."""
        for name in ("ingest-alarm", *self.fix_worker_names):
            self.stop_process(name)
        self.start_ingest()

    def _spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        assert self._logdir is not None
        log = open(self._logdir / f"{name}.log", "ab")  # noqa: SIM115
        # Each in a session of its own, as a service manager starts services: its niceness
        # then orders its session's scheduling group too (`backend.process`).
        self.procs[name] = subprocess.Popen(
            [*schildwacht_command(), "--log-level", self.log_level, *args],
            env={**self.env(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def pid(self, name: str) -> int:
        return self.procs[name].pid

    def group_niceness(self) -> dict[str, int | None]:
        """The niceness of each running process's session scheduling group (None: the kernel
        has no autogroups)."""
        return {name: group_niceness(Path(f"/proc/{proc.pid}/autogroup"))
                for name, proc in self.procs.items() if proc.poll() is None}

    def log_text(self, name: str) -> str:
        """Everything process `name` has logged so far ("" when nothing)."""
        path = self._logdir / f"{name}.log" if self._logdir is not None else None
        return path.read_text(errors="replace") if path is not None and path.exists() else ""

    def log_tail(self, name: str, lines: int = 30) -> str:
        return "\n".join(self.log_text(name).splitlines()[-lines:])

    def _wait_log(self, name: str, text: str, count: int, timeout_s: float = 60.0) -> None:
        """Until process `name` has logged `text` `count` times in all (its log outlives its
        restarts)."""
        deadline = time.monotonic() + timeout_s
        while self.log_text(name).count(text) < count:
            self.check_alive()
            if time.monotonic() > deadline:
                raise ServiceUnavailable(f"{name} did not log {text!r} within {timeout_s:.0f} "
                                         f"s:\n{self.log_tail(name)}")
            time.sleep(0.1)

    def _wait_http(self, url: str, timeout_s: float = 30.0) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    raise ServiceUnavailable(f"{name} exited:\n{self.log_tail(name)}")
            try:
                if httpx.get(url, timeout=1.0).status_code < 500:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise ServiceUnavailable(f"{url} did not answer within {timeout_s:.0f} s")

    def check_alive(self) -> None:
        for name, proc in self.procs.items():
            if proc.poll() is not None:
                raise ServiceUnavailable(f"{name} exited with {proc.returncode}:\n"
                                         f"{self.log_tail(name)}")

    def stop_process(self, name: str) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def stop(self) -> None:
        for name in list(self.procs):
            self.stop_process(name)
        try:
            r = redis.Redis.from_url(self.redis_url, socket_timeout=2)
            for key in r.scan_iter(f"{self.redis_prefix}:*", count=1_000):
                r.delete(key)
            r.close()
        except redis.RedisError:
            pass
        if self.engine is not None:
            self.engine.dispose()
        if self._logdir is not None:
            if not os.environ.get("SW_BENCH_LOG_DIR"):
                shutil.rmtree(self._logdir, ignore_errors=True)
            self._logdir = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
