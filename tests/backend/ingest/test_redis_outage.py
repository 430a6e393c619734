"""Redis holds only hot state that can be rebuilt: with Redis unreachable, the worker still
stores fixes and raises alarms (safety invariant 1 does not depend on Redis)."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from sqlalchemy import func, select

from backend.cases.models import Case
from backend.devices.models import Device, Ping
from backend.ingest.worker import IngestWorker
from backend.runtime import Runtime
from device_protocol import Alarm, Fix, Topics, codec
from tests.backend.conftest import make_settings, truncate_all
from tests.conftest import MQTT_PORT
from tests.support.mqtt import Collector, client, publish

pytestmark = pytest.mark.services


def test_worker_keeps_storing_and_alarming_without_redis(pg_url):
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:8]
    settings = make_settings("services", db_url=pg_url, port=MQTT_PORT,
                             root=f"sdnoredis/{suffix}/v1", redis_prefix=f"x{suffix}",
                             client_id=f"ingest-noredis-{suffix}")
    settings = settings.model_copy(update={"redis": settings.redis.model_copy(
        update={"url": "redis://127.0.0.1:1/0", "timeout_s": 0.2})})
    runtime = Runtime.build(settings)
    with runtime.sessions.begin() as s:
        case = Case(reference=f"NR-{suffix}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="vic-noredis", case_id=case.id, role="victim"))
    worker = IngestWorker(runtime)
    worker.start()
    runtime.dispatcher.start()
    topics = Topics(settings.protocol.topic_root)
    police = Collector(MQTT_PORT, topics.police_filter())
    device = client(MQTT_PORT, client_id="vic-noredis")
    try:
        publish(device, topics.loc("vic-noredis"),
                codec.encode(Fix(tst=time.time(), lat=51.92, lon=4.47, acc=10)))
        publish(device, topics.alarm("vic-noredis"),
                codec.encode(Alarm(id="nr-1", tst=time.time(), lat=51.92, lon=4.47)))
        [(_, payload, _)] = police.wait_for(1, timeout=15)
        assert orjson.loads(payload)["message_id"] == "nr-1"
        deadline = time.monotonic() + 10
        pings = 0
        while time.monotonic() < deadline and pings == 0:
            with runtime.sessions() as s:
                pings = s.scalar(select(func.count()).select_from(Ping))
            time.sleep(0.05)
        assert pings == 1
    finally:
        police.close()
        device.disconnect()
        worker.stop()
        runtime.dispatcher.stop()
        runtime.close()
