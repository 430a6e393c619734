"""The long-running commands as their own processes on the real services: `schildwacht loops`
runs supervision (a silent device gets its alert), serves its metrics on the port it is given,
tells the service manager it is ready and alive, and stops cleanly on SIGTERM; `schildwacht
ingest` tells the service manager it is ready and alive; `schildwacht migrate` names the
database server settings the product needs and the server lacks."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
import urllib.request
import uuid

import pytest
from sqlalchemy import select, text

from backend.alerts.models import Alert
from backend.mqtt.embedded import free_port
from tests.backend.conftest import subprocess_world
from tests.support.notify import notify_socket

pytestmark = pytest.mark.services


@pytest.fixture
def manager():
    """A service manager's notification socket and its path."""
    with notify_socket() as found:
        yield found


def test_loops_process_supervises_and_stops_on_sigterm(pg_url, manager):
    _root, engine, env = subprocess_world(pg_url, "loops", "vic-loops", registered_ago_s=3600)
    env["SCHILDWACHT_SUPERVISION__SUPERVISION_INTERVAL_S"] = "0.5"
    # A process whose hot state is new measures silence from its start at the earliest (the
    # state may have been lost): a short threshold, so the never-heard device is flagged soon.
    env["SCHILDWACHT_SUPERVISION__SILENT_AFTER_S"] = "2"
    env["SCHILDWACHT_SUPERVISION__SILENT_AFTER_PURSUIT_S"] = "1"
    port = free_port()
    env["SCHILDWACHT_METRICS__PORT"] = str(port)
    manager, path = manager
    env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "loops"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        types: list[str] = []
        while time.monotonic() < deadline and "device_silent" not in types:
            with engine.connect() as conn:
                types = list(conn.scalars(
                    select(Alert.type).where(Alert.device_id == "vic-loops")))
            time.sleep(0.2)
        assert "device_silent" in types
        with engine.connect() as conn:  # its connections say whose they are
            assert conn.scalar(text("SELECT count(*) FROM pg_stat_activity WHERE "
                                    "application_name = 'schildwacht loops'")) >= 1
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            assert "schildwacht_ping_upkeep_failures_total" in r.read().decode()
        assert manager.recv(64) == b"READY=1"  # and alive while no loop is stuck
        assert manager.recv(64) == b"WATCHDOG=1"
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        engine.dispose()


def test_ingest_tells_the_service_manager_it_is_ready_and_alive(pg_url, manager):
    """As under a systemd unit with Type=notify and WatchdogSec=: READY=1 once it takes in
    messages, WATCHDOG=1 while it is healthy, STOPPING=1 on SIGTERM."""
    env = subprocess_world(pg_url, "ingest", "vic-notify")[2]
    manager, path = manager
    env.update(NOTIFY_SOCKET=path, WATCHDOG_USEC="400000")  # alive every 0.2 s
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "ingest"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        assert manager.recv(64) == b"READY=1"
        assert [manager.recv(64) for _ in range(3)] == [b"WATCHDOG=1"] * 3
        proc.send_signal(signal.SIGTERM)
        while (message := manager.recv(64)) == b"WATCHDOG=1":  # one may have been on its way
            pass
        assert message == b"STOPPING=1"
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()


def test_api_stops_cleanly_on_sigterm(pg_url):
    """As a service manager stops it: the server shuts down and the process ends its own way
    (exit 0, its clean-up run: webhook sends ended, connections closed), not killed by
    the signal that uvicorn raises again once it has shut down."""
    env = subprocess_world(pg_url, "api", "vic-api-stop")[2]
    port = free_port()
    env.update(SCHILDWACHT_API__PORT=str(port), SCHILDWACHT_API__RUN_LOOPS="false")
    proc = subprocess.Popen([sys.executable, "-m", "backend.cli", "api"], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                time.sleep(0.2)
        else:
            pytest.fail("the API did not come up")
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        assert proc.returncode == 0, out[-2000:]
        assert "Traceback" not in out
    finally:
        if proc.poll() is None:
            proc.kill()


def test_migrate_names_what_the_database_server_lacks(pg_url):
    """`schildwacht migrate` logs one warning per server setting the product needs and the
    server lacks (on a server configured as needed: none)."""
    from backend.db import server_check
    from backend.db.engine import make_engine
    from backend.settings import DatabaseSettings

    engine = make_engine(DatabaseSettings(url=pg_url))
    try:
        expected = server_check.advice(server_check.read_settings(engine))
    finally:
        engine.dispose()
    env = subprocess_world(pg_url, "migrate", "vic-migrate")[2]

    out = subprocess.run([sys.executable, "-m", "backend.cli", "migrate"], env=env,
                         capture_output=True, text=True, timeout=120)

    assert out.returncode == 0, out.stderr
    logged = out.stdout + out.stderr
    assert "database migrated to head" in logged
    for line in expected:
        assert line in logged
    assert logged.count("PostgreSQL ") == len(expected)


def test_migrate_seals_the_webhook_secrets_stored_in_clear(pg_url):
    """With keys set, `schildwacht migrate` seals a secret stored in clear (before keys were
    set); without, it warns how many are in clear."""
    from cryptography.fernet import Fernet

    from backend.police import signing
    from backend.police.sealing import SecretBox

    _, engine, env = subprocess_world(pg_url, "seal", "vic-seal")
    secret = signing.new_secret()
    with engine.begin() as conn:
        conn.execute(text(
            "insert into subscriptions (id, name, url, secret, format, police_units, vr_codes,"
            " alert_types, priorities, active, drill, created_at, updated_at) values (:id, 'mk',"
            " 'https://politie.example/h', :secret, 'json', '[]', '[]', '[]', '[]', true, false,"
            " now(), now())"), {"id": uuid.uuid4(), "secret": secret})
    migrate = [sys.executable, "-m", "backend.cli", "migrate"]

    out = subprocess.run(migrate, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "webhook secrets stored in clear count=1" in out.stdout + out.stderr

    key = Fernet.generate_key().decode()
    out = subprocess.run(migrate, env={**env, "SCHILDWACHT_POLICE__SECRET_KEYS": key},
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "webhook secrets sealed with the first key count=1" in out.stdout + out.stderr
    assert secret not in out.stdout + out.stderr
    with engine.connect() as conn:
        stored = conn.execute(text("select secret from subscriptions")).scalar_one()
    engine.dispose()
    assert secret not in stored and SecretBox([key]).open(stored) == secret
