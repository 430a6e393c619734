"""A batch of fixes is evaluated against one set of measures: a measure stored while the batch
is handled applies from the next batch, not from the next message of the same batch (real
PostgreSQL and Redis; the worker not started, its fix lane handles the batches here)."""

from __future__ import annotations

import time
import uuid

import pytest
import redis
from sqlalchemy import select

from backend.alerts.models import Alert
from backend.cases.models import Case
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker
from backend.measures import flows as measures
from backend.pipeline.context import Context, RawMessage
from backend.pipeline.zones import ZoneStep
from backend.runtime import Runtime
from device_protocol import Fix, Topics, codec
from tests.backend.conftest import make_settings, truncate_all
from tests.backend.measures.places import ROTTERDAM, zone_feature
from tests.conftest import MQTT_PORT, REDIS_URL

pytestmark = pytest.mark.services


class MeasureStoredMidBatch:
    """A step ahead of the zone step: at the first message of off-a it stores a zone for
    off-b and tells this process's measures, as the API does after a commit."""

    def __init__(self, runtime: Runtime, case_id: uuid.UUID) -> None:
        self._runtime = runtime
        self._case_id = case_id
        self.stored = False

    def __call__(self, ctx: Context) -> None:
        if self.stored or ctx.device is None or ctx.device.id != "off-a":
            return
        with self._runtime.sessions.begin() as s:
            measures.create(s, self._case_id, zone_feature("off-b", measure_id="zone-b"),
                            self._runtime.settings.geofence.to_config())
        self._runtime.geofences.mark_changed()
        self.stored = True


def test_a_batch_is_evaluated_against_one_set_of_measures(pg_url):
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:8]
    settings = make_settings("services", db_url=pg_url, port=MQTT_PORT,
                             root=f"sdbm/{suffix}/v1", redis_prefix=f"swtest{suffix}",
                             client_id=f"ingest-bm-{suffix}")
    runtime = Runtime.build(settings)
    with runtime.sessions.begin() as s:
        case = Case(reference="BM-1", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add_all([Device(id="off-a", case_id=case.id, role="offender"),
                   Device(id="off-b", case_id=case.id, role="offender")])
        s.flush()
        measures.create(s, case.id, zone_feature("off-a", measure_id="zone-a"),
                        settings.geofence.to_config())
        case_id = case.id
    worker = IngestWorker(runtime)  # not started
    steps = worker.fixes.pipeline.steps
    mid_batch = MeasureStoredMidBatch(runtime, case_id)
    steps.insert(next(i for i, s in enumerate(steps) if isinstance(s, ZoneStep)), mid_batch)
    topics = Topics(settings.protocol.topic_root)
    t = time.time() - 60

    def fix(device_id: str, tst: float) -> RawMessage:
        return RawMessage(topics.loc(device_id), codec.encode(
            Fix(tst=tst, lat=ROTTERDAM[0], lon=ROTTERDAM[1], acc=5)), 1, 1, time.time())

    def breached() -> list[str]:
        with runtime.sessions() as s:
            return sorted(s.scalars(select(Alert.device_id).where(Alert.type == "zone_breach")))

    try:
        assert worker.handle(worker.fixes, [fix("off-a", t), fix("off-b", t)])
        assert mid_batch.stored
        assert breached() == ["off-a"]  # zone-b was not yet a measure when the batch began
        assert worker.handle(worker.fixes, [fix("off-b", t + 30)])
        assert breached() == ["off-a", "off-b"]  # from the next batch on, it is
    finally:
        runtime.close()
        store = redis.Redis.from_url(REDIS_URL)
        keys = list(store.scan_iter(f"{settings.redis.key_prefix}:*"))
        if keys:
            store.delete(*keys)
        store.close()
