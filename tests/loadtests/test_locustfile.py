"""A 10 s headless locust run (5 device users, 1 operator) against a running worker and API:
alerts are observed on the device acks and the console stream, and no request fails."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

from loadtests.stack import REPO_ROOT, Stack


def _stats(path: Path) -> dict[str, dict[str, str]]:
    with path.open() as f:
        return {f"{row['Type']} {row['Name']}": row for row in csv.DictReader(f)}


@pytest.mark.services
@pytest.mark.timeout(180)
def test_headless_run_observes_alerts_without_failures(broker, loadtest_db_url, redis_url,
                                                       tmp_path):
    with Stack(broker.port, db_url=loadtest_db_url, redis_url=redis_url) as stack:
        env = dict(os.environ, SW_LOAD_MQTT_PORT=str(broker.port),
                   SW_LOAD_TOPIC_ROOT=stack.topic_root, SW_LOAD_TOKEN=stack.admin_token,
                   SW_LOAD_DEVICES="5", SW_LOAD_ALARM_SHARE="0.2", SW_LOAD_FIX_EVERY_S="0.5")
        run = subprocess.run(
            [sys.executable, "-m", "locust", "-f", str(REPO_ROOT / "loadtests/locustfile.py"),
             "--headless", "-u", "6", "-r", "6", "--run-time", "10s", "--host", stack.api_url,
             "--csv", str(tmp_path / "run"), "--html", str(tmp_path / "run.html"),
             "--only-summary", "--loglevel", "WARNING"],
            check=False, env=env, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        )
        stack.check_alive()
    assert run.returncode == 0, run.stderr[-3000:]
    stats = _stats(tmp_path / "run_stats.csv")
    assert (tmp_path / "run.html").stat().st_size > 0
    assert int(stats["MQTT publish loc"]["Request Count"]) > 0
    assert int(stats["MQTT publish alarm"]["Request Count"]) > 0
    assert int(stats["MQTT alarm -> ack received"]["Request Count"]) > 0
    assert int(stats["WS alarm -> console frame"]["Request Count"]) > 0
    assert int(stats["GET GET /api/v1/alerts"]["Request Count"]) > 0
    failures = {name: row["Failure Count"] for name, row in stats.items()
                if int(row["Failure Count"])}
    assert failures == {}, (tmp_path / "run_failures.csv").read_text()


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
