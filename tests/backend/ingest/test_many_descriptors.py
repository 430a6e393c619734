"""An alarm goes its whole way (broker, database, Redis, police feed, device ack) through an ingest
worker process whose every connection lies above descriptor 1023, as in a process holding a
thousand connections: no client library on the alarm path may wait in select(). A fresh process
(`schildwacht ingest`, run after holding 1,100 descriptors), so that no descriptor an earlier
test frees can land below 1024."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from backend.alerts.models import Alert
from device_protocol import Alarm, Topics, codec
from tests.backend.conftest import subprocess_world
from tests.backend.ingest.test_crash_recovery import _stop, _wait_connected
from tests.conftest import MQTT_PORT
from tests.support.descriptors import FD_SETSIZE, HOLD_IN_A_FRESH_PROCESS
from tests.support.mqtt import Collector, client, publish

pytestmark = pytest.mark.services

INGEST = HOLD_IN_A_FRESH_PROCESS + (
    "import sys; from backend.cli import main; sys.exit(main(['ingest']))")


def _sockets(pid: int) -> list[int]:
    """The descriptors of the process that are sockets (one its threads closed while they
    were listed is left out)."""
    found = []
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd).startswith("socket:"):
                found.append(int(fd.name))
        except FileNotFoundError:
            continue
    return sorted(found)


def test_an_alarm_goes_the_whole_way_with_every_connection_above_descriptor_1023(pg_url):
    root, engine, env = subprocess_world(pg_url, "manyfd", "vic-many")
    topics = Topics(root)
    police = Collector(MQTT_PORT, topics.police_filter())
    acks = Collector(MQTT_PORT, topics.ack("vic-many"))
    worker = subprocess.Popen([sys.executable, "-c", INGEST], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_connected(worker)
        sockets = _sockets(worker.pid)  # the broker, PostgreSQL and Redis at least
        assert len(sockets) >= 3 and min(sockets) >= FD_SETSIZE, sockets
        device = client(MQTT_PORT, client_id="vic-many")
        publish(device, topics.alarm("vic-many"), codec.encode(
            Alarm(id="many-1", kind="panic", tst=time.time(), lat=51.92, lon=4.47)))
        [(_, feed, _)] = police.wait_for(1, timeout=15)
        assert codec.decode_document(feed)["message_id"] == "many-1"
        assert acks.wait_for(1, timeout=10)  # the device hears "received"
        with engine.connect() as conn:
            assert conn.scalar(select(func.count()).select_from(Alert)
                               .where(Alert.device_id == "vic-many")) == 1
        device.disconnect()
        device.loop_stop()
    finally:
        police.close()
        acks.close()
        _stop(worker)
        engine.dispose()
