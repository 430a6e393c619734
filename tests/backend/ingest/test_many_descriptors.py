"""An alarm goes its whole way (broker, database, Redis, police feed, device ack) through a worker
whose every connection lies above descriptor 1023, as in a process holding a thousand
connections: no client library on the alarm path may wait in select()."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import func, select

from backend.alerts.models import Alert
from backend.cases.models import Case
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker
from backend.runtime import Runtime
from device_protocol import Alarm, Topics, codec
from tests.backend.conftest import make_settings, truncate_all
from tests.conftest import MQTT_PORT
from tests.support.descriptors import descriptors_held
from tests.support.mqtt import Collector, client, publish

pytestmark = pytest.mark.services


def test_an_alarm_goes_the_whole_way_with_every_connection_above_descriptor_1023(pg_url):
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:10]
    settings = make_settings("services", db_url=pg_url, port=MQTT_PORT,
                             root=f"sdtest/{suffix}/v1", redis_prefix=f"swtest{suffix}",
                             client_id=f"ingest-{suffix}")
    topics = Topics(settings.protocol.topic_root)
    # The test's own clients first, below 1023: they run paho's own loop.
    police = Collector(MQTT_PORT, topics.police_filter())
    acks = Collector(MQTT_PORT, topics.ack("vic-many"))
    device = client(MQTT_PORT, client_id="vic-many")
    try:
        with descriptors_held():
            runtime = Runtime.build(settings)
            worker = IngestWorker(runtime)
            try:
                with runtime.sessions.begin() as s:
                    case = Case(reference=f"C-{suffix}", home_police_unit="RE07")
                    s.add(case)
                    s.flush()
                    s.add(Device(id="vic-many", case_id=case.id, role="victim"))
                worker.start()
                runtime.dispatcher.start()
                assert worker.client.socket().fileno() > 1023
                publish(device, topics.alarm("vic-many"), codec.encode(
                    Alarm(id="many-1", kind="panic", tst=time.time(), lat=51.92, lon=4.47)))
                [(_, feed, _)] = police.wait_for(1, timeout=10)
                assert codec.decode_document(feed)["message_id"] == "many-1"
                assert acks.wait_for(1, timeout=10)  # the device hears "received"
                with runtime.sessions() as s:
                    assert s.scalar(select(func.count()).select_from(Alert)) == 1
                assert worker.problems() == []
            finally:
                worker.stop()
                runtime.dispatcher.stop()
                for key in runtime.redis.scan_iter(f"{settings.redis.key_prefix}:*"):
                    runtime.redis.delete(key)
                runtime.close()
    finally:
        police.close()
        acks.close()
        device.disconnect()
        device.loop_stop()
