"""Safety invariant 1: an alarm is acknowledged to the broker only after it is committed.

The ingest process is killed with SIGKILL after it received an alarm and before the commit (the
`before_commit` fault point). The broker keeps the unacknowledged QoS 1 message in the worker's
persistent session; after a restart the alarm is committed and delivered exactly once. Killed
after the commit and before the follow-up (`before_follow_up`), the alarm was acknowledged: the
follow-up sweep finishes its follow-up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson
import pytest
from sqlalchemy import func, select, update

from backend.alerts.follow_up_sweep import FollowUpSweep
from backend.alerts.models import Alert
from backend.caselog.models import CaseLogEntry
from backend.devices.models import Device
from backend.runtime import Runtime
from backend.settings import Settings
from device_protocol import Alarm, Topics, codec
from tests.backend.conftest import subprocess_world
from tests.conftest import MQTT_PORT
from tests.support.mqtt import Collector, client, publish

pytestmark = pytest.mark.services


def _start_worker(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "backend.cli", "ingest"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def _wait_connected(proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    assert proc.stdout is not None
    os.set_blocking(proc.stdout.fileno(), False)
    seen = b""
    while time.monotonic() < deadline:
        chunk = proc.stdout.read() or b""
        seen += chunk
        if b"ingest connected" in seen:
            return
        if proc.poll() is not None:
            raise AssertionError(f"worker exited early: {seen.decode(errors='replace')}")
        time.sleep(0.05)
    raise AssertionError("worker did not connect")


def _world(pg_url: str):
    """A case with one victim device, and the environment of a worker subprocess."""
    root, engine, env = subprocess_world(pg_url, "crash", "vic-crash")
    return Topics(root), engine, env


def _alerts(engine) -> int:
    with engine.connect() as conn:
        return conn.scalar(
            select(func.count()).select_from(Alert).where(Alert.device_id == "vic-crash"))


def _stop(*procs) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            proc.wait(timeout=15)


def test_sigkill_before_commit_then_restart_delivers_exactly_once(pg_url):
    topics, engine, env = _world(pg_url)
    police = Collector(MQTT_PORT, topics.police_filter())
    crashing = _start_worker({**env, "SCHILDWACHT_INGEST__FAULT_POINT": "before_commit"})
    restarted = None
    try:
        _wait_connected(crashing)
        device = client(MQTT_PORT, client_id="vic-crash")
        alarm = Alarm(id="crash-1", kind="panic", tst=time.time(), lat=51.92, lon=4.47)
        publish(device, topics.alarm("vic-crash"), codec.encode(alarm))
        assert crashing.wait(timeout=20) == -signal.SIGKILL
        assert _alerts(engine) == 0
        assert police.messages == []

        restarted = _start_worker(env)
        _wait_connected(restarted)
        [(_, payload, _)] = police.wait_for(1, timeout=20)
        assert orjson.loads(payload)["message_id"] == "crash-1"
        time.sleep(1.5)  # room for a duplicate to show up, if there were one
        assert len(police.messages) == 1
        assert _alerts(engine) == 1
        device.disconnect()
    finally:
        police.close()
        _stop(crashing, restarted)
        engine.dispose()


def _sweep_after_grace(env: dict[str, str]) -> int:
    """One pass of the follow-up sweep (as the loops process runs it), dated after the grace
    time of every alert raised so far; how many follow-ups it finished."""
    settings = Settings(database={"url": env["SCHILDWACHT_DATABASE__URL"]},
                        redis={"url": env["SCHILDWACHT_REDIS__URL"],
                               "key_prefix": env["SCHILDWACHT_REDIS__KEY_PREFIX"]},
                        broker={"embedded": False}, api={"admin_token": uuid.uuid4().hex},
                        protocol={"topic_root": env["SCHILDWACHT_PROTOCOL__TOPIC_ROOT"]})
    runtime = Runtime.build(settings)
    try:
        later = datetime.now(UTC) + timedelta(seconds=settings.supervision.follow_up_grace_s)
        return FollowUpSweep(runtime).run_once(now=later)
    finally:
        runtime.close()


def test_sigkill_before_follow_up_then_the_sweep_finishes_the_follow_up(pg_url):
    """The alert is committed and on the police feed, but the worker dies before the case log
    and device commands (the follow-up). The alarm was acknowledged to the broker once its
    alert was committed, so it does not come again after the restart: the follow-up sweep
    finishes the follow-up, once, and marks the device online again as the follow-up would."""
    topics, engine, env = _world(pg_url)
    with engine.begin() as conn:  # offline since its Last Will; the alarm shows it is back
        conn.execute(update(Device).where(Device.id == "vic-crash").values(online=False))
    police = Collector(MQTT_PORT, topics.police_filter())
    crashing = _start_worker({**env, "SCHILDWACHT_INGEST__FAULT_POINT": "before_follow_up"})
    restarted = None
    try:
        _wait_connected(crashing)
        device = client(MQTT_PORT, client_id="vic-crash")
        alarm = Alarm(id="crash-2", kind="panic", tst=time.time(), lat=51.92, lon=4.47)
        publish(device, topics.alarm("vic-crash"), codec.encode(alarm))
        assert crashing.wait(timeout=20) == -signal.SIGKILL
        [(_, payload, _)] = police.wait_for(1, timeout=5)  # published before the crash
        alert_id = orjson.loads(payload)["alert_id"]
        with engine.connect() as conn:
            assert conn.scalar(select(Alert.followed_up_at)
                               .where(Alert.device_id == "vic-crash")) is None
            assert conn.scalar(select(func.count()).select_from(CaseLogEntry)) == 0

        restarted = _start_worker(env)
        _wait_connected(restarted)
        assert _sweep_after_grace(env) == 1
        assert _sweep_after_grace(env) == 0  # once
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(CaseLogEntry).where(
                CaseLogEntry.alert_id == uuid.UUID(alert_id))) == 1
            assert conn.scalar(select(Alert.followed_up_at)
                               .where(Alert.device_id == "vic-crash")) is not None
            assert conn.scalar(select(Device.online).where(Device.id == "vic-crash")) is True
        assert _alerts(engine) == 1
        # The police feed is at-least-once: any repeat is the same (alert, sequence).
        assert {(orjson.loads(p)["alert_id"], orjson.loads(p)["sequence"])
                for _, p, _ in police.messages} == {(alert_id, 1)}
        device.disconnect()
    finally:
        police.close()
        _stop(crashing, restarted)
        engine.dispose()
