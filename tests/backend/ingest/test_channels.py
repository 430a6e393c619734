"""Workers split by channel: an "alarm" worker next to an "other" worker, each with its own MQTT
session, together do what one "all" worker does, and each touches only its own messages."""

from __future__ import annotations

import gc
import secrets
import time
import uuid

import pytest

from backend.alerts.models import Alert
from backend.devices.models import Ping
from backend.ingest.worker import (
    IngestWorker,
    default_client_id,
    subscriptions,
    topic_filters,
)
from backend.runtime import Runtime
from backend.settings import BrokerSettings
from device_protocol import Alarm, Fix, Topics, codec
from tests.support.db import rows
from tests.support.mqtt import publish
from tests.support.waiting import wait_until


def test_topic_filters_split_the_uplink_channels_without_overlap() -> None:
    topics = Topics("sd/v1")
    every = topic_filters(topics, "all")
    alarm, other = topic_filters(topics, "alarm"), topic_filters(topics, "other")
    assert alarm == ["sd/v1/dev/+/alarm"]
    assert sorted(alarm + other) == sorted(every) == sorted(topics.uplink_filters())
    assert not set(alarm) & set(other)
    assert "owntracks/+/+" in other


def test_an_alarm_worker_shares_its_alarms_only_in_a_group_of_its_own() -> None:
    """The fix workers' group (in the environment file every unit reads) never takes the alarms:
    a device that learnt its name and joined it would be handed alarms in turn, and lose them.
    Alarms are shared only in `alarm_share_group`, set for the alarm workers alone."""
    topics = Topics("sd/v1")
    fixes, alarms = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    broker = BrokerSettings(share_group=fixes)
    other = [f"$share/{fixes}/{f}" for f in topic_filters(topics, "other")]

    assert subscriptions(topics, "alarm", broker) == ["sd/v1/dev/+/alarm"]
    assert subscriptions(topics, "other", broker) == other
    assert sorted(subscriptions(topics, "all", broker)) == sorted(["sd/v1/dev/+/alarm", *other])
    assert subscriptions(topics, "alarm", BrokerSettings(alarm_share_group=alarms)) == [
        f"$share/{alarms}/sd/v1/dev/+/alarm"]
    assert subscriptions(topics, "other", BrokerSettings()) == topic_filters(topics, "other")


def test_split_workers_never_share_a_client_id() -> None:
    ids = {default_client_id("schildwacht-ingest", c) for c in ("all", "alarm", "other")}
    assert ids == {"schildwacht-ingest", "schildwacht-ingest-alarm", "schildwacht-ingest-other"}


def test_alarm_and_fix_workers_each_take_their_own_channel(stack):
    if stack.backend != "services":
        pytest.skip("split workers are a deployment of the real services")
    stack.worker.stop()  # the fixture's "all" worker makes way for the split pair
    workers = []
    for channels in ("alarm", "other"):
        settings = stack.settings.model_copy(deep=True)
        settings.ingest.channels = channels
        runtime = Runtime.build(settings)
        worker = IngestWorker(runtime, client_id=f"split-{channels}-{uuid.uuid4().hex[:6]}")
        worker.start()
        runtime.dispatcher.start()
        workers.append((runtime, worker))
    try:
        stack.register("vic-201")
        police = stack.collector(stack.topics.police_filter())
        device = stack.device("vic-201")
        time.sleep(0.5)  # both subscriptions in place
        publish(device, stack.topics.loc("vic-201"),
                codec.encode(Fix(tst=time.time(), lat=51.92, lon=4.48, acc=8.0)))
        publish(device, stack.topics.alarm("vic-201"), codec.encode(Alarm(id="split-1")))
        police.wait_for(1)
        (alarm_rt, alarm_worker), (other_rt, other_worker) = workers
        # Only the alarm worker collects garbage between alarms (the automatic collector off).
        assert alarm_worker._collector is not None and other_worker._collector is None
        assert not gc.isenabled()
        wait_until(lambda: rows(other_rt.sessions, Ping, device_id="vic-201") == 1, timeout=10)
        assert rows(alarm_rt.sessions, Alert, device_id="vic-201", message_id="split-1") == 1
        wait_until(lambda: alarm_worker.processed == 1 and other_worker.processed == 1,
                   timeout=10)
        police.close()
        device.disconnect()
    finally:
        for runtime, worker in workers:
            worker.stop()
            runtime.dispatcher.stop()
            runtime.close()
    assert gc.isenabled()  # back on once the alarm worker stopped
