"""An alarm is raised whatever routing trips on (a bug, or case data it cannot use): routed
without the case's custody and contacts, and flagged, instead of failing every try and never
reaching anyone. Here a policy the validation would refuse (a tightening period of thousands of
years: a release date plus it overflows) stands in for such a bug."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

from backend.cases.models import Case
from backend.devices.models import Device
from device_protocol import Alarm, codec
from tests.support.mqtt import publish

ROTTERDAM_CS = (51.9244, 4.4690)  # VR17, RE07


def test_a_panic_is_raised_and_flagged_when_routing_fails(stack, caplog):
    flow = stack.runtime.flow
    release = flow.policy.custody_release.model_copy(
        update={"tightening_period": timedelta(days=3_000_000)})
    flow.policy = flow.policy.model_copy(update={"custody_release": release})
    with stack.runtime.sessions.begin() as s:
        case = Case(reference="C-FALLBACK", home_police_unit="RE07",
                    custody_status="released",
                    released_at=datetime.now(UTC) - timedelta(days=1))
        s.add(case)
        s.flush()
        s.add(Device(id="vic-fallback", case_id=case.id, role="victim"))
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-fallback")
    publish(device, stack.topics.alarm("vic-fallback"), codec.encode(
        Alarm(id="fb-1", tst=time.time(), lat=ROTTERDAM_CS[0], lon=ROTTERDAM_CS[1])))

    [(topic, payload, _)] = police.wait_for(1, timeout=20)
    document = codec.decode_document(payload)
    assert topic == stack.topics.police_alerts("RE07")
    assert (document["type"], document["priority"]) == ("panic", "P1")
    assert "routing_fallback" in document["flags"]
    assert "routing failed for alert type panic" in caplog.text
    police.close()
    device.disconnect()
