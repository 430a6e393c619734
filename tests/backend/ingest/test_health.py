"""A worker knows when it is stuck: a thread of its own that shows no progress for
`process.stuck_after_s`, or one that ended, is a problem for the watchdog; one that waits for
work or tries again is not. Nor is paho's network thread, which shows no progress of its own:
an alarm it raises that hangs on a database connection gone half-open, or a wait for room in a
queue, is a problem once it lasts that long; and a follow-up that is not done for that long
while raises commit."""

from __future__ import annotations

import time
import uuid

from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import make_url

from backend.alerts.models import Alert
from backend.cases.models import Case
from backend.devices.models import Device
from backend.ingest.health import follow_up_problem, network_thread_problem
from backend.ingest.inbox import Inbox
from backend.ingest.worker import IngestWorker
from backend.runtime import Runtime
from device_protocol import Alarm, Fix, codec
from tests.backend.conftest import make_settings, truncate_all
from tests.conftest import MQTT_PORT
from tests.support.mqtt import client, publish
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_until


def test_the_network_thread_is_stuck_once_one_wait_outlasts_the_bound() -> None:
    assert network_thread_problem(None, now=100.0, limit_s=30.0) is None
    assert network_thread_problem(("raising an alarm", 80.0), now=100.0, limit_s=30.0) is None
    assert network_thread_problem(("raising an alarm", 60.0), now=100.0, limit_s=30.0) == (
        "the MQTT network thread has been raising an alarm for 40 s")


def test_a_follow_up_is_stuck_only_while_other_work_commits() -> None:
    assert follow_up_problem(None, committed_at=99.0, now=100.0, limit_s=30.0) is None
    assert follow_up_problem(80.0, committed_at=99.0, now=100.0, limit_s=30.0) is None
    # Nothing committed since it began: the database is away, a restart would change nothing.
    assert follow_up_problem(60.0, committed_at=None, now=100.0, limit_s=30.0) is None
    assert follow_up_problem(60.0, committed_at=59.0, now=100.0, limit_s=30.0) is None
    assert follow_up_problem(60.0, committed_at=61.0, now=100.0, limit_s=30.0) == (
        "a follow-up has not been done for 40 s while alerts are committed")


def test_a_stuck_lane_is_found_and_recovers(stack) -> None:
    stack.register("vic-health")
    worker = stack.worker
    stack.runtime.settings.process.stuck_after_s = 2.0  # the others show progress every 0.2 s
    assert worker.problems() == []

    with worker.fixes.busy:  # the fix lane takes a batch and cannot handle it
        publish(stack.device("vic-health"), stack.topics.loc("vic-health"),
                codec.encode(Fix(tst=1_790_000_000, lat=51.92, lon=4.48, acc=5)))
        stuck = wait_until(worker.problems, timeout=10)
        assert any("thread ingest-other showed no progress" in p for p in stuck)

    wait_until(lambda: worker.problems() == [], timeout=10)


def test_a_stopped_worker_has_ended_threads(stack) -> None:
    stack.worker.stop()
    found = stack.worker.problems()
    assert "thread ingest-alarm ended" in found and "thread ingest-other ended" in found
    assert "the MQTT network thread ended" in found


def _alerts(engine, message_id: str) -> int:
    with engine.connect() as conn:
        return conn.scalar(select(func.count()).select_from(Alert)
                           .where(Alert.message_id == message_id))


def test_an_alarm_hung_on_a_black_holed_database_is_found_and_recovers(pg_url) -> None:
    """The worker's database connection goes through a proxy that stops forwarding: the alarm
    raised on the network thread hangs (statement_timeout is the server's, and the proxy's
    kernel acknowledges what is sent). The watchdog hears of it; once the connection breaks,
    the alarm is raised by the lane."""
    truncate_all(pg_url)
    direct = create_engine(pg_url)
    url = make_url(pg_url)
    proxy = TcpProxy(url.host or "127.0.0.1", url.port or 5432)
    suffix = uuid.uuid4().hex[:10]
    settings = make_settings(
        "services", db_url=url.set(port=proxy.port).render_as_string(hide_password=False),
        port=MQTT_PORT, root=f"sdtest/{suffix}/v1", redis_prefix=f"swtest{suffix}",
        client_id=f"ingest-{suffix}")
    settings.process.stuck_after_s = 2.0  # the lanes and the follow-up thread beat every 0.2 s
    runtime = Runtime.build(settings)
    with runtime.sessions.begin() as s:
        case = Case(reference=f"C-{suffix}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id="vic-hole", case_id=case.id, role="victim"))
    worker = IngestWorker(runtime)
    worker.start()
    device = client(MQTT_PORT, client_id="vic-hole")
    try:
        assert worker.problems() == []
        proxy.black_hole()
        publish(device, runtime.topics.alarm("vic-hole"),
                codec.encode(Alarm(id="hole-1", kind="panic", tst=time.time())))
        found = wait_until(lambda: [p for p in worker.problems() if "network thread" in p],
                           timeout=30)
        assert "has been raising an alarm for" in found[0]
        assert _alerts(direct, "hole-1") == 0

        proxy.heal()  # the held connection breaks, as after a failover
        wait_until(lambda: _alerts(direct, "hole-1") == 1, timeout=30)
        wait_until(lambda: worker.problems() == [], timeout=10)
    finally:
        device.disconnect()
        device.loop_stop()
        proxy.heal()
        worker.stop()
        for key in runtime.redis.scan_iter(f"{settings.redis.key_prefix}:*"):
            runtime.redis.delete(key)
        runtime.close()
        proxy.close()
        direct.dispose()


def test_a_network_thread_waiting_for_room_in_the_fix_lane_is_found(stack) -> None:
    """channels "all": fixes wait in the fix lane's inbox; a full one holds paho's network
    thread (back-pressure), which the watchdog hears of once it lasts too long."""
    stack.register("vic-room")
    worker = stack.worker
    stack.runtime.settings.process.stuck_after_s = 2.0
    worker.fixes.inbox = Inbox(100)  # the smallest the settings allow
    device = stack.device("vic-room")
    with worker.fixes.busy:  # the fix lane takes a batch and cannot handle it
        for n in range(300):
            device.publish(stack.topics.loc("vic-room"), codec.encode(
                Fix(tst=1_790_000_000 + n, lat=51.92, lon=4.48, acc=5)), qos=0)
        found = wait_until(lambda: [p for p in worker.problems() if "network thread" in p],
                           timeout=30)
        assert "waiting for room in the fix lane's inbox" in found[0]
    wait_until(lambda: worker.problems() == [], timeout=30)
