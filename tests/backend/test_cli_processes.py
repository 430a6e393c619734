"""The long-running commands as their own processes on the real services: `schildwacht loops`
runs supervision (a silent device gets its alert) and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid

import pytest
from sqlalchemy import create_engine, select, text

from backend.alerts.models import Alert
from tests.backend.conftest import truncate_all
from tests.conftest import MQTT_PORT, REDIS_URL

pytestmark = pytest.mark.services


def test_loops_process_supervises_and_stops_on_sigterm(pg_url):
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:8]
    engine = create_engine(pg_url)
    with engine.begin() as conn:
        case_id = uuid.uuid4()
        conn.execute(text(
            "insert into cases (id, reference, home_police_unit, custody_status, exercise,"
            " created_at, updated_at) values (:id, :ref, 'RE07', 'none', false,"
            " now() - interval '1 hour', now())"), {"id": case_id, "ref": f"LOOPS-{suffix}"})
        conn.execute(text(
            "insert into devices (id, case_id, role, active, report_interval_s, created_at)"
            " values ('vic-loops', :case, 'victim', true, 60, now() - interval '1 hour')"),
            {"case": case_id})
    env = {
        **os.environ,
        "SCHILDWACHT_DATABASE__URL": pg_url,
        "SCHILDWACHT_REDIS__URL": REDIS_URL,
        "SCHILDWACHT_REDIS__KEY_PREFIX": f"swloops{suffix}",
        "SCHILDWACHT_BROKER__EMBEDDED": "false",
        "SCHILDWACHT_BROKER__PORT": str(MQTT_PORT),
        "SCHILDWACHT_PROTOCOL__TOPIC_ROOT": f"sdloops/{suffix}/v1",
        "SCHILDWACHT_SUPERVISION__SUPERVISION_INTERVAL_S": "0.5",
    }
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
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
        engine.dispose()
