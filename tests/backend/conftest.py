"""The alarm-path stack for integration tests, on two back ends:

- "services": PostgreSQL + PostGIS, Redis and Mosquitto (the real ones on this machine);
- "embedded": SQLite, in-process state and hub, and the embedded amqtt broker.

Each test gets its own topic root, client ids and Redis key prefix, and empty tables.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis
from cryptography.fernet import Fernet
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text

from backend.api.app import create_app
from backend.auth.tokens import new_token, token_digest
from backend.cases.models import Case
from backend.db.migrate import downgrade, upgrade
from backend.db.models import Base
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker
from backend.mqtt.embedded import EmbeddedBroker, free_port
from backend.runtime import Runtime
from backend.settings import Settings
from device_protocol import Topics
from loadtests.stack import ensure_database
from tests.conftest import MQTT_PORT, PG_URL, REDIS_URL
from tests.support.mqtt import Collector, client

ADMIN_TOKEN = "test-admin-" + uuid.uuid4().hex
# The services stack seals webhook secrets with a key of this run; the embedded one keeps them
# in clear (no keys): both paths sign every delivery the tests verify.
SEAL_KEY = Fernet.generate_key().decode()


@pytest.fixture(scope="session")
def pg_url() -> str:
    """The test database, migrated down and up once per session (this tests the migrations);
    an xdist worker's own database is created first."""
    ensure_database(PG_URL)
    downgrade(PG_URL, "base")
    upgrade(PG_URL)
    return PG_URL


@pytest.fixture
def pg_sessions(pg_url):
    """A session factory on the emptied test database (PostgreSQL)."""
    from backend.db.engine import make_engine, make_session_factory
    from backend.settings import DatabaseSettings

    truncate_all(pg_url)
    engine = make_engine(DatabaseSettings(url=pg_url))
    yield make_session_factory(engine)
    engine.dispose()


def truncate_all(url: str) -> None:
    """Empty every table, those that refer to others first. DELETE, not TRUNCATE: on tables
    this small it takes 1-5 ms where TRUNCATE took 50-65 (before every test of the stack)."""
    engine = create_engine(url)
    tables = list(reversed(Base.metadata.sorted_tables))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("; ".join(f"DELETE FROM {t.name}" for t in tables)))
        else:
            for table in tables:
                conn.execute(table.delete())
    engine.dispose()


@pytest.fixture(scope="session")
def embedded_broker() -> Iterator[EmbeddedBroker]:
    broker = EmbeddedBroker(port=free_port())
    broker.start()
    yield broker
    broker.stop()


@dataclass
class Stack:
    backend: str
    settings: Settings
    runtime: Runtime
    worker: IngestWorker
    port: int
    topics: Topics
    protocol: str

    # The MQTT clients a test made, closed with the stack (a client left open keeps its network
    # thread, and with it its sockets, for the rest of the test process).
    clients: list = field(default_factory=list)

    def device(self, device_id: str):
        made = client(self.port, client_id=device_id, protocol=self.protocol)
        self.clients.append(made)
        return made

    def collector(self, topic_filter: str) -> Collector:
        made = Collector(self.port, topic_filter, self.protocol)
        self.clients.append(made)
        return made

    def close_clients(self) -> None:
        for made in self.clients:
            if isinstance(made, Collector):
                made.close()
            else:
                made.disconnect()
                made.loop_stop()
        self.clients.clear()

    def api(self) -> TestClient:
        return TestClient(create_app(self.runtime), headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})

    def register(self, device_id: str, role: str = "victim", case_ref: str | None = None,
                 home_unit: str = "RE07", exercise: bool = False) -> uuid.UUID:
        with self.runtime.sessions.begin() as s:
            case = Case(reference=case_ref or f"C-{uuid.uuid4().hex[:8]}",
                        home_police_unit=home_unit, exercise=exercise)
            s.add(case)
            s.flush()
            s.add(Device(id=device_id, case_id=case.id, role=role))
            return case.id

    def token(self, role: str, scope: dict | None = None) -> str:
        from backend.auth.models import ApiToken

        token = new_token()
        with self.runtime.sessions.begin() as s:
            s.add(ApiToken(name=f"test-{role}", role=role, scope=scope or {},
                           token_sha256=token_digest(token)))
        return token


def make_settings(backend: str, *, db_url: str, port: int, root: str, redis_prefix: str,
                  client_id: str) -> Settings:
    env: dict = {
        "database": {"url": db_url},
        "broker": {"embedded": backend == "embedded", "port": port,
                   "protocol": "3.1.1" if backend == "embedded" else "5",
                   "client_id": client_id},
        "protocol": {"topic_root": root},
        "api": {"admin_token": ADMIN_TOKEN},
        "ingest": {"outbox_resend_after_s": 2.0},
        # Hundreds of workers come and go in one test process: frozen, each one's garbage (its
        # paho client's socket pair among it) stayed for good, until select() met a
        # descriptor beyond 1023 (`process.freeze_heap`).
        "process": {"freeze_heap": False},
    }
    if backend == "services":
        env["redis"] = {"url": REDIS_URL, "key_prefix": redis_prefix}
        env["police"] = {"secret_keys": SEAL_KEY}
    return Settings(**env)


@pytest.fixture(params=["services", "embedded"])
def stack(request, tmp_path: Path) -> Iterator[Stack]:
    backend = request.param
    suffix = uuid.uuid4().hex[:10]
    if backend == "services":
        db_url = request.getfixturevalue("pg_url")
        truncate_all(db_url)
        port = MQTT_PORT
    else:
        db_url = f"sqlite:///{tmp_path}/schildwacht.db"
        upgrade(db_url)
        port = request.getfixturevalue("embedded_broker").port
    settings = make_settings(backend, db_url=db_url, port=port, root=f"sdtest/{suffix}/v1",
                             redis_prefix=f"swtest{suffix}", client_id=f"ingest-{suffix}")
    runtime = Runtime.build(settings)
    worker = IngestWorker(runtime)
    worker.start()
    runtime.dispatcher.start()
    made = Stack(backend, settings, runtime, worker, port, runtime.topics,
                 settings.broker.protocol)
    yield made
    made.close_clients()
    worker.stop()
    runtime.dispatcher.stop()
    if runtime.redis is not None:
        for key in runtime.redis.scan_iter(f"{settings.redis.key_prefix}:*"):
            runtime.redis.delete(key)
    runtime.close()


@pytest.fixture
def redis_client() -> Iterator[redis.Redis]:
    r = redis.Redis.from_url(REDIS_URL, socket_timeout=2)
    yield r
    r.close()


def subprocess_world(pg_url: str, name: str, device_id: str, registered_ago_s: int = 0,
                     ) -> tuple[str, Engine, dict[str, str]]:
    """An emptied test database with one case and its victim device (registered
    `registered_ago_s` seconds ago), and the environment of a `schildwacht` subprocess on the
    real services: (topic root, engine, env)."""
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:8]
    root = f"sd{name}/{suffix}/v1"
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        case_id = uuid.uuid4()
        conn.execute(text(
            "insert into cases (id, reference, home_police_unit, custody_status, exercise,"
            " created_at, updated_at) values (:id, :ref, 'RE07', 'none', false,"
            " now() - make_interval(secs => :ago), now())"
        ), {"id": case_id, "ref": f"{name.upper()}-{suffix}", "ago": registered_ago_s})
        conn.execute(text(
            "insert into devices (id, case_id, role, active, report_interval_s, created_at)"
            " values (:device, :case, 'victim', true, 60, now() - make_interval(secs => :ago))"
        ), {"device": device_id, "case": case_id, "ago": registered_ago_s})
    env = {
        **os.environ,
        "SCHILDWACHT_DATABASE__URL": pg_url,
        "SCHILDWACHT_REDIS__URL": REDIS_URL,
        "SCHILDWACHT_REDIS__KEY_PREFIX": f"sw{name}{suffix}",
        "SCHILDWACHT_BROKER__EMBEDDED": "false",
        "SCHILDWACHT_BROKER__PORT": str(MQTT_PORT),
        "SCHILDWACHT_BROKER__CLIENT_ID": f"ingest-{name}-{suffix}",
        "SCHILDWACHT_PROTOCOL__TOPIC_ROOT": root,
    }
    return root, engine, env
