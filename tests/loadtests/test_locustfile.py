"""Headless locust runs against a running worker and API: in 10 s (5 device users, 1 operator)
alerts are observed on the device acks and the console stream and no request fails; alarms no
one acknowledges are failures; an unbounded or remote run is refused."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from loadtests.broker import OwnMosquitto
from loadtests.stack import REPO_ROOT, Stack


def _stats(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as f:
        return {f"{row['Type']} {row['Name']}": row for row in csv.DictReader(f)}


@pytest.fixture(scope="module")
def stack(loadtest_db_url, redis_url) -> Iterator[Stack]:
    """A running worker and API behind their own Mosquitto, for the module's runs."""
    with OwnMosquitto() as broker, Stack(broker.port, db_url=loadtest_db_url,
                                         redis_url=redis_url) as running:
        yield running


def _run(stack: Stack, tmp_path: Path, topic_root: str, users: int, run_time: str,
         alarm_share: str) -> tuple[subprocess.CompletedProcess, dict[str, dict[str, str]]]:
    env = dict(os.environ, SW_LOAD_MQTT_PORT=str(stack.broker_port), SW_LOAD_TOPIC_ROOT=topic_root,
               SW_LOAD_TOKEN=stack.admin_token, SW_LOAD_DEVICES=str(users - 1),
               SW_LOAD_ALARM_SHARE=alarm_share, SW_LOAD_FIX_EVERY_S="0.5")
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "loadtests/locustfile.py"),
         "--headless", "-u", str(users), "-r", str(users), "--run-time", run_time,
         "--host", stack.api_url, "--csv", str(tmp_path / "run"),
         "--html", str(tmp_path / "run.html"), "--only-summary", "--loglevel", "WARNING"],
        check=False, env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
    )
    stack.check_alive()
    stats = _stats(tmp_path / "run_stats.csv") if run.returncode in (0, 1) else {}
    return run, stats


@pytest.mark.services
@pytest.mark.timeout(180)
def test_headless_run_observes_alerts_without_failures(stack, tmp_path):
    run, stats = _run(stack, tmp_path, stack.topic_root, users=6, run_time="10s",
                      alarm_share="0.2")
    assert run.returncode == 0, run.stderr[-3000:]
    assert (tmp_path / "run.html").stat().st_size > 0
    assert int(stats["MQTT publish loc"]["Request Count"]) > 0
    assert int(stats["MQTT publish alarm"]["Request Count"]) > 0
    assert int(stats["MQTT alarm -> ack received"]["Request Count"]) > 0
    assert int(stats["WS alarm -> console frame"]["Request Count"]) > 0
    assert int(stats["GET GET /api/v1/alerts"]["Request Count"]) > 0
    failures = {name: row["Failure Count"] for name, row in stats.items()
                if int(row["Failure Count"])}
    assert failures == {}, (tmp_path / "run_failures.csv").read_text()
    # As the console's queue, the operator reads no position from the queue or the stream:
    # only the answer to an acknowledgement carries one (released and audited).
    assert stack.engine is not None
    with stack.engine.connect() as conn:
        reads = conn.execute(text(
            "SELECT count(*) FROM audit_log WHERE action = 'read_location'")).scalar_one()
        acknowledged = conn.execute(text(
            "SELECT count(*) FROM alerts WHERE state <> 'new'")).scalar_one()
    assert reads == acknowledged


@pytest.mark.services
@pytest.mark.timeout(180)
def test_every_alarm_without_an_ack_is_a_failure(stack, tmp_path):
    # Published under a topic root nobody takes in: no alarm is raised, none acknowledged.
    run, stats = _run(stack, tmp_path, "nobody/v1", users=3, run_time="4s", alarm_share="0.5")
    assert run.returncode == 1, run.stderr[-3000:]  # failures: locust's exit code 1
    alarms = int(stats["MQTT publish alarm"]["Request Count"])
    acks = stats["MQTT alarm -> ack received"]
    assert alarms > 0
    assert int(acks["Failure Count"]) == int(acks["Request Count"]) == alarms


@pytest.mark.timeout(120)
@pytest.mark.parametrize("options", [
    ["--host", "http://example.invalid:8000", "--run-time", "5s"],
    ["--host", "http://127.0.0.1:9"],  # no --run-time
])
def test_an_unbounded_or_remote_run_is_refused_before_it_starts(options):
    env = dict(os.environ, SW_LOAD_TOKEN="t", SW_LOAD_MQTT_PORT="9")
    run = subprocess.run(
        [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "loadtests/locustfile.py"),
         "--headless", "-u", "2", "-r", "2", "--loglevel", "WARNING", *options],
        check=False, env=env, capture_output=True, text=True, timeout=60, cwd=REPO_ROOT,
    )
    assert run.returncode == 2, run.stderr[-2000:]
    assert "refusing to run" in run.stderr
