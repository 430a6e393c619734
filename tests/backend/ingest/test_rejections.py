"""Safety invariants 2 and 5 on the running worker: bad input gets a clear rejection, is counted,
changes nothing, and never kills the worker; an alarm from a registered device is raised whatever
its body, flagged."""

from __future__ import annotations

import time

import orjson
import pytest
from prometheus_client import REGISTRY

from backend.alerts.models import Alert
from backend.devices.models import Ping
from device_protocol import Alarm, Fix, codec
from tests.support.db import rows
from tests.support.mqtt import publish


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("schildwacht_ingest_rejected_total", {"reason": reason}) or 0.0


def _wait_processed(stack, count: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while stack.worker.processed < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stack.worker.processed >= count, "the worker did not process the messages"


OWNTRACKS = b'{"_type": "location", "lat": 51.9, "lon": 4.4, "tst": 1800000000}'
CASES = [
    ("unknown device", "ghost-01", "alarm", codec.encode(Alarm(id="x")), "unknown_device"),
    ("inactive device", "vic-off", "alarm", codec.encode(Alarm(id="x")), "inactive_device"),
    ("topic/payload mismatch", "vic-rej", "loc", OWNTRACKS, "topic_payload_mismatch"),
    ("alarm body on loc topic", "vic-rej", "loc", b'{"id": "a", "kind": "panic"}',
     "topic_payload_mismatch"),
    ("malformed", "vic-rej", "loc", b"not json at all", "malformed_payload"),
    ("not an object", "vic-rej", "status", b"[1, 2]", "malformed_payload"),
    ("oversize", "vic-rej", "loc", b'{"pad": "' + b"x" * 9000 + b'"}', "payload_too_large"),
    ("out of range", "vic-rej", "loc", b'{"tst": 1800000000, "lat": 200, "lon": 4}',
     "invalid_payload"),
    ("nan", "vic-rej", "loc", b'{"tst": 1800000000, "lat": NaN, "lon": 4}', "malformed_payload"),
    ("invalid device id in topic", "x!", "loc", b"{}", "invalid_topic"),
]


@pytest.mark.parametrize(("name", "device_id", "channel", "payload", "reason"), CASES,
                         ids=[c[0] for c in CASES])
def test_rejected_counted_and_nothing_changes(stack, name, device_id, channel, payload, reason):
    stack.register("vic-rej")
    stack.register("vic-off")
    with stack.runtime.sessions.begin() as s:
        from backend.devices.models import Device

        s.get(Device, "vic-off").active = False
    before = _rejected(reason)
    sender = stack.device("sender-" + name.replace(" ", "-").replace("/", "-"))
    topic = f"{stack.topics.root}/dev/{device_id}/{channel}"
    publish(sender, topic, payload)
    _wait_processed(stack, 1)
    assert _rejected(reason) == before + 1
    assert rows(stack.runtime.sessions, Alert) == 0 and rows(stack.runtime.sessions, Ping) == 0

    # The worker is alive and well: a valid alarm right after is raised.
    police = stack.collector(stack.topics.police_filter())
    publish(sender, stack.topics.alarm("vic-rej"), codec.encode(Alarm(id="after")))
    assert len(police.wait_for(1)) == 1
    police.close()
    sender.disconnect()


def test_unreadable_alarm_is_raised_flagged_with_last_known_position(stack):
    stack.register("vic-bad")
    device = stack.device("vic-bad")
    police = stack.collector(stack.topics.police_filter())
    publish(device, stack.topics.loc("vic-bad"),
            codec.encode(Fix(tst=time.time(), lat=51.92, lon=4.47, acc=20)))
    _wait_processed(stack, 1)
    before = time.time()
    publish(device, stack.topics.alarm("vic-bad"), b"\xff\xfe garbage from a broken firmware")
    [(_, payload, _)] = police.wait_for(1)
    document = orjson.loads(payload)
    assert document["type"] == "panic" and document["priority"] == "P1"
    assert {"unreadable", "malformed_body", "last_known_position"} <= set(document["flags"])
    assert document["location"]["source"] == "last_known"
    raised = document["raised_at"]
    from datetime import datetime

    assert datetime.fromisoformat(raised).timestamp() >= before - 1  # server time
    # A retransmission of the same bytes is the same alarm.
    publish(device, stack.topics.alarm("vic-bad"), b"\xff\xfe garbage from a broken firmware")
    _wait_processed(stack, 3)
    time.sleep(0.3)
    assert len(police.messages) == 1
    police.close()
    device.disconnect()


@pytest.mark.parametrize(("offset_s", "flag"), [(-600, "late"), (86_400 * 30, "clock_skew"),
                                                (-86_400 * 30, "clock_skew")])
def test_alarm_with_odd_device_time_is_raised_and_flagged(stack, offset_s, flag):
    stack.register("vic-time")
    device = stack.device("vic-time")
    police = stack.collector(stack.topics.police_filter())
    alarm = Alarm(id=f"t{offset_s}", tst=time.time() + offset_s, lat=51.92, lon=4.47)
    publish(device, stack.topics.alarm("vic-time"), codec.encode(alarm))
    [(_, payload, _)] = police.wait_for(1)
    document = orjson.loads(payload)
    assert flag in document["flags"]
    assert document["state"] == "new"
    police.close()
    device.disconnect()
