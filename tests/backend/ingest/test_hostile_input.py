"""Input valid to the decoders that could break a later step, on the running worker (real
broker): each is refused with its reason logged by id and stores nothing, or taken as it should
be; the worker lives on (safety invariant 5); an alarm is raised whatever its optional fields
(safety invariant 2)."""

from __future__ import annotations

import logging
import time

import orjson
import pytest
from prometheus_client import REGISTRY

from backend.alerts.models import Alert
from backend.devices.models import Device, Ping
from backend.measures import flows as measures
from device_protocol import Alarm, codec
from tests.backend.measures.places import ROTTERDAM, zone_feature
from tests.support.db import rows
from tests.support.mqtt import publish
from tests.support.waiting import wait_until


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("schildwacht_ingest_rejected_total", {"reason": reason}) or 0.0


def _logged(caplog, text: str) -> list[str]:
    """The log lines holding `text` so far (the worker's thread may still be writing one)."""
    return [r.getMessage() for r in caplog.records if text in r.getMessage()]


def _alive(stack, sender, device_id: str) -> None:
    """The worker is alive and well: an alarm right after is raised."""
    police = stack.collector(stack.topics.police_filter())
    publish(sender, stack.topics.alarm(device_id), codec.encode(Alarm(id="alive")))
    assert len(police.wait_for(1)) == 1
    police.close()
    assert stack.worker.problems() == []


def test_an_owntracks_phone_named_alarm_has_its_fixes_checked_against_zones(stack):
    """`owntracks/{user}/alarm` is an OwnTracks fix like any other, not an alarm: it is
    evaluated against the zones (on the alarm path it was stored, never evaluated)."""
    if stack.backend != "services":
        pytest.skip("zones are evaluated on the real services")
    case_id = stack.register("off-otz", role="offender")
    with stack.runtime.sessions.begin() as s:
        device = s.get(Device, "off-otz")
        device.owntracks_user, device.owntracks_device = "otz-user", "alarm"
        measures.create(s, case_id, zone_feature("off-otz", measure_id="zone-otz"),
                        stack.runtime.settings.geofence.to_config())
    stack.runtime.directory.load_all()
    stack.runtime.geofences.mark_changed()
    phone = stack.device("otz-phone")
    body = {"_type": "location", "tst": int(time.time()), "lat": ROTTERDAM[0],
            "lon": ROTTERDAM[1], "acc": 5}
    publish(phone, "owntracks/otz-user/alarm", orjson.dumps(body))
    wait_until(lambda: rows(stack.runtime.sessions, Ping, device_id="off-otz") == 1)
    assert wait_until(lambda: rows(stack.runtime.sessions, Alert, device_id="off-otz",
                                   type="zone_breach"))
    _alive(stack, phone, "off-otz")
    phone.disconnect()


NOW = time.time()
FAR_FUTURE, FAR_PAST = 9_999_999_999.5, 1_000_000_000.5
HOME = {"lat": 51.9244, "lon": 4.469}


def _fix(**fields) -> bytes:
    return orjson.dumps({"tst": NOW, **HOME, **fields})


def _fixes(count: int) -> list[dict]:
    """Fixes written as short as they can be: 200 fit in 8 KiB."""
    return [{"tst": int(NOW) - 600 + i, "lat": 52, "lon": 4} for i in range(count)]


def _batch_at_the_size_limit() -> bytes:
    """200 fixes (the most a batch may hold), padded to exactly 8 KiB."""
    body = orjson.dumps({"fixes": _fixes(200), "pad": ""})
    return body[:-2] + b"x" * (8192 - len(body)) + b'"}'


def _alarm_at_the_size_limit() -> bytes:
    """An alarm with the longest id, padded to exactly 8 KiB."""
    body = orjson.dumps({"id": "i" * 64, **HOME, "pad": ""})
    return body[:-2] + b"x" * (8192 - len(body)) + b'"}'


# (name, channel, payload, what happens): "pings:n" stored, "rejected:reason", "alarm:flags"
# (the alarm raised with these flags among its own), "status" (the report stored), "tamper"
# (a tamper alert raised).
CASES = [
    ("fix far in the future", "loc", _fix(tst=FAR_FUTURE), "pings:1"),
    ("fix far in the past", "loc", _fix(tst=FAR_PAST), "pings:1"),
    ("fix on the antimeridian", "loc", _fix(lat=0.0, lon=180.0), "pings:1"),
    ("fix west of the antimeridian", "loc", _fix(lat=-16.5, lon=-180.0), "pings:1"),
    ("fix at the pole", "loc", _fix(lat=90.0, lon=0.0, acc=100_000), "pings:1"),
    ("batch at the size limit", "loc", _batch_at_the_size_limit(), "pings:200"),
    ("batch over the limit", "loc", _batch_at_the_size_limit()[:-2] + b'x"}',
     "rejected:payload_too_large"),
    ("batch of 201", "loc", orjson.dumps({"fixes": _fixes(201)}), "rejected:invalid_payload"),
    ("fix with a NaN", "loc", _fix()[:-1] + b',"acc":NaN}', "rejected:malformed_payload"),
    ("fix with a string latitude", "loc", _fix(lat="51.9244"), "rejected:invalid_payload"),
    ("status far in the future", "status", orjson.dumps({"tst": FAR_FUTURE, "batt": 5}),
     "status"),
    ("status with odd firmware text", "status",
     orjson.dumps({"tst": NOW, "fw": "ü" * 64, "online": True}), "status"),
    ("status with a control character", "status", orjson.dumps({"fw": "2.4\u0085"}),
     "rejected:invalid_payload"),
    ("alarm on the antimeridian far in the future", "alarm",
     orjson.dumps({"id": "h-1", "tst": FAR_FUTURE, "lat": 0.0, "lon": -180.0}),
     "alarm:clock_skew"),
    ("alarm at the pole far in the past", "alarm",
     orjson.dumps({"id": "h-2", "tst": FAR_PAST, "lat": -90.0, "lon": 180.0, "acc": 1e5}),
     "alarm:clock_skew"),
    ("alarm with a NaN accuracy", "alarm",
     b'{"id":"h-3","kind":"fall","lat":51.9244,"lon":4.469,"acc":NaN}', "alarm:invalid_acc"),
    ("alarm at the size limit", "alarm", _alarm_at_the_size_limit(), "alarm:"),
    ("alarm with nan as C prints it", "alarm",
     b'{"id":"h-4","lat":51.9244,"lon":4.469,"acc":-nan,"batt":inf}',
     "alarm:invalid_acc,invalid_batt"),
    ("tamper far in the future", "status", orjson.dumps({"tst": FAR_FUTURE, "tamper": True}),
     "tamper"),
    ("owntracks fix at the antimeridian", "owntracks",
     orjson.dumps({"_type": "location", "tst": int(NOW), "lat": 0, "lon": 180, "vel": 1300}),
     "pings:1"),
    ("owntracks fix with a NaN", "owntracks",
     b'{"_type":"location","tst":1800000000,"lat":51.9244,"lon":4.469,"acc":NaN}',
     "rejected:malformed_payload"),
    ("owntracks fix far in the future", "owntracks",
     orjson.dumps({"_type": "location", "tst": FAR_FUTURE, **HOME}), "pings:1"),
]


@pytest.mark.parametrize(("name", "channel", "payload", "outcome"), CASES,
                         ids=[c[0] for c in CASES])
def test_input_valid_to_the_decoder_breaks_no_later_step(stack, caplog, name, channel,
                                                         payload, outcome):
    caplog.set_level(logging.INFO)
    stack.register("vic-hx")
    with stack.runtime.sessions.begin() as s:
        device = s.get(Device, "vic-hx")
        device.owntracks_user, device.owntracks_device = "hx-user", "phone"
    stack.runtime.directory.load_all()
    sender = stack.device("vic-hx")
    police = stack.collector(stack.topics.police_filter())
    kind, _, detail = outcome.partition(":")
    before = _rejected(detail)
    topic = ("owntracks/hx-user/phone" if channel == "owntracks"
             else stack.topics.device("vic-hx", channel))
    publish(sender, topic, payload)
    if kind == "pings":
        wait_until(lambda: rows(stack.runtime.sessions, Ping, device_id="vic-hx") == int(detail))
    elif kind == "rejected":
        wait_until(lambda: _rejected(detail) == before + 1)
        assert rows(stack.runtime.sessions, Ping) == 0 and rows(stack.runtime.sessions, Alert) == 0
        [line] = wait_until(lambda: _logged(caplog, "rejected"))  # logged after it is counted
        assert f"device=vic-hx channel={channel} reason={detail}" in line
    elif kind == "status":
        with stack.runtime.sessions() as s:
            wait_until(lambda: s.get(Device, "vic-hx", populate_existing=True).last_status_at)
    elif kind == "tamper":
        [(_, document, _)] = police.wait_for(1)
        assert orjson.loads(document)["type"] == "tamper"
    else:
        [(_, document, _)] = police.wait_for(1)
        alert = orjson.loads(document)
        assert alert["type"] in ("panic", "fall") and alert["priority"] == "P1"
        assert set(filter(None, detail.split(","))) <= set(alert["flags"])
        assert alert["location"]["source"] == "alarm"
    police.close()
    assert not any("51.92" in r.getMessage() or "4.469" in r.getMessage()
                   for r in caplog.records), "a log line holds a coordinate"
    _alive(stack, sender, "vic-hx")
    sender.disconnect()


TOPICS = [
    ("{root}/dev/vïc-hx/loc", _fix()),
    ("{root}/dev/" + "x" * 65 + "/status", b'{"online": true}'),
    ("{root}/dev/vic hx/alarm", b'{"id": "t-1"}'),
    ("{root}/dev/vic.hx/alarm", b'{"id": "t-2"}'),
    ("owntracks/hx user/phone", orjson.dumps({"_type": "location", "tst": NOW, **HOME})),
    ("owntracks/üser/phone", orjson.dumps({"_type": "location", "tst": NOW, **HOME})),
]


@pytest.mark.parametrize(("topic", "payload"), TOPICS, ids=[t for t, _ in TOPICS])
def test_a_topic_outside_the_grammar_is_refused(stack, caplog, topic, payload):
    caplog.set_level(logging.WARNING)
    stack.register("vic-hx")
    sender = stack.device("hx-sender")
    before = _rejected("invalid_topic")
    publish(sender, topic.format(root=stack.topics.root), payload)
    wait_until(lambda: _rejected("invalid_topic") == before + 1)
    assert rows(stack.runtime.sessions, Ping) == 0 and rows(stack.runtime.sessions, Alert) == 0
    wait_until(lambda: _logged(caplog, "device=- channel=unknown reason=invalid_topic"))
    _alive(stack, sender, "vic-hx")
    sender.disconnect()


def test_a_batch_given_up_with_a_message_of_a_bad_topic_leaves_the_lane_running(
        stack, monkeypatch):
    """A batch tried in vain again and again (a defect, here a broken `handle`) is refused as a
    whole; a message in it that the pipeline rejected for its topic is refused with it, by no
    device, and the lane's thread goes on (it ended on parsing that topic again)."""
    import backend.ingest.worker as worker_module
    from backend.pipeline.context import RawMessage

    def broken(*args, **kwargs):
        raise RuntimeError("a defect")

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.0,))
    monkeypatch.setattr(stack.worker, "handle", broken)
    root = stack.topics.root
    batch = [RawMessage(f"{root}/dev/bad id/loc", b"{}", 0, 1, time.time()),
             RawMessage(f"{root}/dev/vic-hx/loc", _fix(), 0, 2, time.time())]
    before = _rejected("unstorable")
    stack.worker._handle_in_lane(stack.worker.fixes, batch)
    assert _rejected("unstorable") == before + 2
    monkeypatch.undo()
    stack.register("vic-hx")
    sender = stack.device("hx-sender")
    _alive(stack, sender, "vic-hx")
    sender.disconnect()
