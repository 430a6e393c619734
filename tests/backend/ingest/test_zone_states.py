"""Zone states live in Redis, not in one worker: a worker restarted while an offender is inside
an exclusion zone takes his state over from Redis, so the breach is neither raised a second
time nor left open when he leaves; and workers sharing the fixes go on from each other's
states (real PostgreSQL, Redis and Mosquitto)."""

from __future__ import annotations

import json
import secrets
import time
import uuid

import pytest
import redis
from pydantic import SecretStr
from sqlalchemy import select

from backend.alerts.models import Alert, AlertEvent
from backend.cases.models import Case
from backend.devices.models import Device
from backend.ingest.worker import IngestWorker, batch_devices
from backend.pipeline.context import RawMessage
from backend.measures import flows as measures
from backend.runtime import Runtime
from backend.settings import Settings
from backend.state import keys
from device_protocol import Fix, Topics, codec
from tests.backend.conftest import make_settings, truncate_all
from tests.backend.measures.places import ROTTERDAM, ban_feature, offset, zone_feature
from tests.conftest import MQTT_PORT, REDIS_URL
from tests.support.mqtt import client, publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def _zone_settings(pg_url: str, name: str) -> Settings:
    """Settings of a test of its own (topic root, Redis prefix, client id), on an empty
    database."""
    truncate_all(pg_url)
    suffix = uuid.uuid4().hex[:8]
    return make_settings("services", db_url=pg_url, port=MQTT_PORT,
                         root=f"sd{name}/{suffix}/v1", redis_prefix=f"swtest{suffix}",
                         client_id=f"ingest-{name}-{suffix}")

def _close(settings, *runtimes: Runtime) -> None:
    """Close the runtimes and remove what they kept in Redis."""
    for runtime in runtimes:
        runtime.close()
    store = redis.Redis.from_url(REDIS_URL)
    store.delete(*store.keys(f"{settings.redis.key_prefix}:*"))
    store.close()



def _offender_banned_from_a_zone(runtime: Runtime, device_id: str, measure_id: str) -> None:
    with runtime.sessions.begin() as s:
        case = Case(reference=f"ZS-{device_id}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id=device_id, case_id=case.id, role="offender"))
        s.flush()
        measures.create(s, case.id, zone_feature(device_id, measure_id=measure_id),
                        runtime.settings.geofence.to_config())


def test_a_restarted_worker_takes_over_zone_states(pg_url):
    settings = _zone_settings(pg_url, "zones")
    prefix = settings.redis.key_prefix
    runtime = Runtime.build(settings)
    _offender_banned_from_a_zone(runtime, "off-zs", "zone-zs")
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


def test_workers_sharing_the_fixes_go_on_from_each_others_states(pg_url):
    """Two fix workers (each its own runtime and engine, as two processes on a shared
    subscription) handle an offender's fixes in turn: in at A, out at B, in again at A. The
    second entry is a breach of its own: A takes over from Redis that B saw him leave."""
    settings = _zone_settings(pg_url, "share")
    a, b = Runtime.build(settings), Runtime.build(settings)
    _offender_banned_from_a_zone(a, "off-sh", "zone-sh")
    topics = Topics(settings.protocol.topic_root)
    workers = {"a": IngestWorker(a), "b": IngestWorker(b)}  # not started: handled directly
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = time.time() - 120

    def handle(at: str, point, tst: float) -> None:
        raw = RawMessage(topics.loc("off-sh"), codec.encode(
            Fix(tst=tst, lat=point[0], lon=point[1], acc=5)), 1, 1, time.time())
        worker = workers[at]
        assert worker.handle(worker.fixes, [raw])

    def breaches() -> list[Alert]:
        with a.sessions() as s:
            return list(s.scalars(select(Alert).where(Alert.type == "zone_breach")
                                  .order_by(Alert.raised_at)))

    try:
        handle("a", inside, t)
        handle("b", outside, t + 30)
        handle("a", inside, t + 60)
        handle("b", inside, t + 90)  # still inside: no third
        assert [int(x.device_time.timestamp()) for x in breaches()] == [int(t), int(t + 60)]
    finally:
        _close(settings, a, b)


def test_fix_workers_on_a_shared_subscription_raise_what_one_worker_would(pg_url):
    """The scale-out of DESIGN.md: two fix workers on `$share/...`, which Mosquitto hands the
    offender's fixes in turn. In, out, in, in, out: two breaches and two clearings, as one
    worker would raise, whichever worker had which fix."""
    settings = _zone_settings(pg_url, "sharesub")
    settings = settings.model_copy(update={"broker": settings.broker.model_copy(
        update={"share_group": SecretStr(secrets.token_urlsafe(24))})})
    a, b = Runtime.build(settings), Runtime.build(settings)
    _offender_banned_from_a_zone(a, "off-ss", "zone-ss")
    base = settings.broker.client_id
    workers = [IngestWorker(a, client_id=f"{base}-a"), IngestWorker(b, client_id=f"{base}-b")]
    topics = Topics(settings.protocol.topic_root)
    device = client(MQTT_PORT, client_id=f"{base}-device")
    inside, outside = ROTTERDAM, offset(*ROTTERDAM, 2_000, 0)
    t = time.time() - 300
    for worker in workers:
        worker.start()
    try:
        for i, point in enumerate([inside, outside, inside, inside, outside]):
            publish(device, topics.loc("off-ss"), codec.encode(
                Fix(tst=t + 30 * i, lat=point[0], lon=point[1], acc=5)))
            # Each fix stored, and its states in Redis, before the next is sent.
            wait_until(lambda n=i + 1: sum(w.processed for w in workers) == n)
        assert all(w.processed for w in workers)  # both had fixes of the offender
        with a.sessions() as s:
            breaches = list(s.scalars(select(Alert.device_time).where(
                Alert.type == "zone_breach").order_by(Alert.device_time)))
            notes = list(s.scalars(select(AlertEvent.detail).where(
                AlertEvent.kind == "geofence")))
        assert [int(x.timestamp()) for x in breaches] == [int(t), int(t + 60)]
        assert [n["event"] for n in notes] == ["zone_breach_cleared"] * 2
    finally:
        device.disconnect()
        for worker in workers:
            worker.stop()
        _close(settings, a, b)


class FailsOnce:
    """The alert flow with a defect in its first raise (not a database error, which the store
    step retries itself): the lane handles the whole batch again."""

    def __init__(self, flow) -> None:
        self._flow = flow
        self.failed = False

    def __getattr__(self, name: str):
        return getattr(self._flow, name)

    def raise_alerts(self, *args, **kwargs):
        if not self.failed:
            self.failed = True
            raise RuntimeError("defect in the raise")
        return self._flow.raise_alerts(*args, **kwargs)


def test_a_batch_handled_again_after_a_failed_try_raises_its_breach(pg_url):
    """The first try evaluated the fix (a breach) and failed before storing it; the second
    evaluates it again from the state in Redis, so the breach is raised, once."""
    settings = _zone_settings(pg_url, "again")
    runtime = Runtime.build(settings)
    _offender_banned_from_a_zone(runtime, "off-ag", "zone-ag")
    runtime.flow = FailsOnce(runtime.flow)
    worker = IngestWorker(runtime)  # not started: its lane handles the batch here
    raw = RawMessage(Topics(settings.protocol.topic_root).loc("off-ag"), codec.encode(
        Fix(tst=time.time() - 5, lat=ROTTERDAM[0], lon=ROTTERDAM[1], acc=5)), 1, 1, time.time())
    try:
        worker._handle_in_lane(worker.fixes, [raw])
        assert runtime.flow.failed
        with runtime.sessions() as s:
            types = list(s.scalars(select(Alert.type).where(Alert.device_id == "off-ag")))
        assert types == ["zone_breach"]
    finally:
        _close(settings, runtime)


def test_a_batchs_devices_include_owntracks_pairs_and_leave_out_what_cannot_be_parsed():
    topics = Topics("sd/v1")
    batch = [RawMessage(topic, b"", 1, i, 0.0) for i, topic in enumerate([
        topics.loc("dev-1"), topics.owntracks("anna", "phone"), "sd/v1/dev/x/loc",
        topics.status("dev-1"), "elsewhere/dev/dev-2/loc", topics.owntracks("anna", "phone"),
    ])]
    assert batch_devices(topics, batch) == (["dev-1"], [("anna", "phone")])


def test_a_retried_batch_with_an_owntracks_fix_raises_its_proximity_alert(pg_url):
    """A victim's phone sends on its OwnTracks topic. The batch of its fix fails once after
    the evaluation; handled again, it is evaluated again from the stored states of the victim
    and of the offender, so the proximity is raised."""
    settings = _zone_settings(pg_url, "otagain")
    runtime = Runtime.build(settings)
    with runtime.sessions.begin() as s:
        case = Case(reference="OT-again", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-ot", case_id=case.id, role="offender"))
        s.add(Device(id="vic-ot", case_id=case.id, role="victim",
                     owntracks_user="anna", owntracks_device="phone"))
        s.flush()
        measures.create(s, case.id, ban_feature("off-ot", "vic-ot", measure_id="ban-ot"),
                        runtime.settings.geofence.to_config())
    topics = Topics(settings.protocol.topic_root)
    worker = IngestWorker(runtime)  # not started: its lanes handle the batches here
    t = time.time() - 30
    try:
        off = RawMessage(topics.loc("off-ot"), codec.encode(
            Fix(tst=t, lat=ROTTERDAM[0], lon=ROTTERDAM[1], acc=5)), 1, 1, time.time())
        worker._handle_in_lane(worker.fixes, [off])
        runtime.flow = FailsOnce(runtime.flow)
        lat, lon = offset(*ROTTERDAM, 100, 0)
        vic = RawMessage(topics.owntracks("anna", "phone"), json.dumps(
            {"_type": "location", "tst": int(t + 10), "lat": lat, "lon": lon, "acc": 5}
        ).encode(), 1, 2, time.time())
        worker._handle_in_lane(worker.fixes, [vic])
        assert runtime.flow.failed
        with runtime.sessions() as s:
            types = list(s.scalars(select(Alert.type).where(Alert.device_id == "off-ot")))
        assert types == ["proximity"]
    finally:
        _close(settings, runtime)


def _ban_shared(pg_url, name: str, warm: bool) -> list[int]:
    """Two fix workers (workers not started: handled directly) on one contact ban: the
    offender's fixes at A, the victim's at B. When each raised a proximity, in seconds after
    the offender's first fix. `warm`: both loaded the measures before their first batch."""
    settings = _zone_settings(pg_url, name)
    a, b = Runtime.build(settings), Runtime.build(settings)
    with a.sessions.begin() as s:
        case = Case(reference="BAN-share", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="off-bs", case_id=case.id, role="offender"))
        s.add(Device(id="vic-bs", case_id=case.id, role="victim"))
        s.flush()
        measures.create(s, case.id, ban_feature("off-bs", "vic-bs", measure_id="ban-bs"),
                        a.settings.geofence.to_config())
    topics = Topics(settings.protocol.topic_root)
    workers = {"a": IngestWorker(a), "b": IngestWorker(b)}
    if warm:
        for runtime in (a, b):
            assert runtime.geofences.refresh()
    near = offset(*ROTTERDAM, 100, 0)
    t = time.time() - 120

    def handle(at: str, device: str, point, tst: float) -> None:
        raw = RawMessage(topics.loc(device), codec.encode(
            Fix(tst=tst, lat=point[0], lon=point[1], acc=5)), 1, 1, time.time())
        worker = workers[at]
        assert worker.handle(worker.fixes, [raw])

    try:
        handle("a", "off-bs", ROTTERDAM, t)
        handle("b", "vic-bs", near, t + 10)  # proximity raised at B
        handle("a", "off-bs", ROTTERDAM, t + 20)  # nothing new must be raised at A
        with a.sessions() as s:
            raised = list(s.scalars(select(Alert.device_time).where(
                Alert.type == "proximity").order_by(Alert.device_time)))
        return [round(x.timestamp() - t) for x in raised]
    finally:
        _close(settings, a, b)


def test_a_proximity_raised_at_one_worker_is_not_raised_again_at_the_other(pg_url):
    """The ban's state, kept under the offender, changed at B with the victim's fix: A takes
    it over on the offender's next fix, although it knows that offender's last fix."""
    assert _ban_shared(pg_url, "banshare", warm=True) == [10]


def test_a_worker_that_just_loaded_the_ban_raises_it_on_the_victims_fix(pg_url):
    """B's first batch loads the ban before it looks for the victim's partner: the
    offender's last fix is taken over and the proximity raised on the victim's fix."""
    assert _ban_shared(pg_url, "banfresh", warm=False) == [10]
