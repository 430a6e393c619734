"""Zone states outlive the fix worker: a worker restarted while an offender is inside an
exclusion zone resumes his state from Redis, so the breach is neither raised a second time nor
left open when he leaves (real PostgreSQL, Redis and Mosquitto)."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from sqlalchemy import select

from backend.alerts.models import Alert, AlertEvent
from backend.cases.models import Case
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker
from backend.measures import flows as measures
from backend.runtime import Runtime
from backend.state import keys
from device_protocol import Fix, Topics, codec
from tests.backend.conftest import make_settings, truncate_all
from tests.backend.measures.places import ROTTERDAM, offset, zone_feature
from tests.conftest import MQTT_PORT, REDIS_URL
from tests.support.mqtt import client, publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def test_a_restarted_worker_resumes_zone_states(pg_url):
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:8]
    settings = make_settings("services", db_url=pg_url, port=MQTT_PORT,
                             root=f"sdzones/{suffix}/v1", redis_prefix=f"swtest{suffix}",
                             client_id=f"ingest-zones-{suffix}")
    prefix = settings.redis.key_prefix
    runtime = Runtime.build(settings)
    with runtime.sessions.begin() as s:
        case = Case(reference=f"ZS-{suffix}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-zs", case_id=case.id, role="offender"))
        s.flush()
        measures.create(s, case.id, zone_feature("off-zs", measure_id="zone-zs"),
                        runtime.settings.geofence.to_config())
    topics = Topics(settings.protocol.topic_root)
    device = client(MQTT_PORT, client_id="off-zs")
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = time.time()

    def send(point, tst):
        publish(device, topics.loc("off-zs"),
                codec.encode(Fix(tst=tst, lat=point[0], lon=point[1], acc=5)))

    def breaches() -> list[Alert]:
        with runtime.sessions() as s:
            return list(s.scalars(select(Alert).where(Alert.type == "zone_breach")))

    store = redis.Redis.from_url(REDIS_URL)
    worker = IngestWorker(runtime)
    worker.start()
    try:
        send(inside, t - 60)
        [breach] = wait_until(breaches)
        kept = wait_until(lambda: store.hget(keys.zone_states(prefix), "off-zs"))
        assert b'"inside"' in kept
        worker.stop()
        runtime.close()

        runtime = Runtime.build(settings)  # a new process, as far as the engine knows
        worker = IngestWorker(runtime)
        worker.start()
        send(inside, t - 30)  # still inside: no second breach
        send(outside, t)  # left: the breach's timeline says so

        def cleared() -> list[AlertEvent]:
            with runtime.sessions() as s:
                return list(s.scalars(select(AlertEvent).where(
                    AlertEvent.alert_id == breach.id, AlertEvent.kind == "geofence")))

        [note] = wait_until(cleared)
        assert note.detail["event"] == "zone_breach_cleared"
        # Idle again: no longer kept (written after the batch's commit, so a moment after the
        # note, which the pipeline writes before it) ...
        assert wait_until(lambda: store.hget(keys.zone_states(prefix), "off-zs") is None)
        # ... and with both fixes' batches committed, still the one breach.
        assert [a.id for a in breaches()] == [breach.id]
    finally:
        device.disconnect()
        worker.stop()
        runtime.close()
        store.delete(*store.keys(f"{prefix}:*"))
        store.close()
