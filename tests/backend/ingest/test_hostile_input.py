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
from sqlalchemy import func, select

from backend.alerts.models import Alert
from backend.devices.models import Device, Ping
from backend.measures import flows as measures
from device_protocol import Alarm, codec
from tests.backend.measures.places import ROTTERDAM, zone_feature
from tests.support.mqtt import publish
from tests.support.waiting import wait_until


def _rejected(reason: str) -> float:
    return REGISTRY.get_sample_value("schildwacht_ingest_rejected_total", {"reason": reason}) or 0.0


def _rows(stack, model, **where) -> int:
    with stack.runtime.sessions() as s:
        query = select(func.count()).select_from(model)
        for key, value in where.items():
            query = query.where(getattr(model, key) == value)
        return s.scalar(query)


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
    wait_until(lambda: _rows(stack, Ping, device_id="off-otz") == 1)
    assert wait_until(lambda: _rows(stack, Alert, device_id="off-otz", type="zone_breach"))
    _alive(stack, phone, "off-otz")
    phone.disconnect()
