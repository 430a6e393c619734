"""CAP subscriptions (Alert and Updates valid against the official XSD, with references) and
drill isolation (exercise alerts reach only drill endpoints, live alerts only live ones)."""

from __future__ import annotations

import time
from pathlib import Path

import orjson
import pytest
from lxml import etree

from device_protocol import Alarm, codec
from tests.support.webhooks import subscribe
from tests.support.waiting import wait_until
from tests.support.mqtt import publish

pytestmark = pytest.mark.services

CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"
XSD = Path(__file__).resolve().parents[4] / "shared" / "data" / "cap" / "CAP-v1.2-schema.xsd"
ROTTERDAM_CS = (51.9244, 4.4690)  # VR17, police unit RE07


def _schema() -> etree.XMLSchema:
    if not XSD.exists():  # the repository copy of the same official schema
        return etree.XMLSchema(etree.parse(str(
            Path(__file__).resolve().parents[3] / "backend" / "police" / "schema"
            / "CAP-v1.2-schema.xsd")))
    return etree.XMLSchema(etree.parse(str(XSD)))


def _alert_id(api, device_id: str) -> str:
    def find():
        for a in api.get("/api/v1/alerts").json():
            if a["device"]["id"] == device_id:
                return a["alert_id"]
        return None
    return wait_until(find)


def test_cap_alert_and_updates_validate_and_reference_every_earlier_message(webhooks,
                                                                            receivers):
    stack = webhooks
    api = stack.api()
    receiver = receivers()
    subscribe(api, receiver, format="cap", alert_types=["panic"])
    stack.register("vic-201")
    device = stack.device("vic-201")
    alarm = Alarm(id="c-1", kind="panic", tst=time.time(), lat=ROTTERDAM_CS[0],
                  lon=ROTTERDAM_CS[1], acc=12.0)
    publish(device, stack.topics.alarm("vic-201"), codec.encode(alarm))
    alert_id = _alert_id(api, "vic-201")
    api.post(f"/api/v1/alerts/{alert_id}/acknowledge")
    api.post(f"/api/v1/alerts/{alert_id}/resolve")

    got = receiver.wait_for(3)
    assert len(got) == 3 and receiver.bad_signatures == 0
    schema = _schema()
    docs = []
    for r in got:
        assert r.headers["content-type"] == "application/cap+xml; charset=utf-8"
        root = etree.fromstring(r.body)
        assert schema.validate(root), schema.error_log
        docs.append(root)
    docs.sort(key=lambda d: d.findtext(f"{CAP}identifier").rsplit("-", 1)[1])
    first, update, resolved = docs
    assert [d.findtext(f"{CAP}msgType") for d in docs] == ["Alert", "Update", "Update"]
    assert {d.findtext(f"{CAP}status") for d in docs} == {"Actual"}
    assert {d.findtext(f"{CAP}scope") for d in docs} == {"Restricted"}
    first_ref, update_ref = (",".join(d.findtext(f"{CAP}{tag}")
                                      for tag in ("sender", "identifier", "sent"))
                             for d in (first, update))
    assert first.find(f"{CAP}references") is None
    assert update.findtext(f"{CAP}references") == first_ref
    assert resolved.findtext(f"{CAP}references") == f"{first_ref} {update_ref}"
    assert first.findtext(f"{CAP}info/{CAP}urgency") == "Immediate"
    assert resolved.findtext(f"{CAP}info/{CAP}responseType") == "AllClear"
    assert resolved.findtext(f"{CAP}info/{CAP}urgency") == "Past"
    assert first.findtext(f"{CAP}info/{CAP}area/{CAP}circle").endswith(" 0.012")
    device.disconnect()


def test_drill_alerts_reach_only_drill_endpoints(webhooks, receivers):
    stack = webhooks
    api = stack.api()
    live, drill, drill_cap = receivers(), receivers(), receivers()
    subscribe(api, live)
    subscribe(api, drill, drill=True)
    subscribe(api, drill_cap, drill=True, format="cap")
    stack.register("vic-301", exercise=True)
    stack.register("vic-302")
    drill_device, live_device = stack.device("vic-301"), stack.device("vic-302")
    publish(drill_device, stack.topics.alarm("vic-301"), codec.encode(Alarm(id="d-1")))
    publish(live_device, stack.topics.alarm("vic-302"), codec.encode(Alarm(id="l-1")))

    [drill_msg] = drill.wait_for(1)
    [cap_msg] = drill_cap.wait_for(1)
    [live_msg] = live.wait_for(1)
    wait_until(lambda: all(a["police_delivery"] == "delivered"
                           for a in api.get("/api/v1/alerts").json()))
    drill_event, live_event = orjson.loads(drill_msg.body), orjson.loads(live_msg.body)
    assert drill_event["data"]["exercise"] is True
    assert drill_event["data"]["device"]["id"] == "vic-301"
    assert live_event["data"]["exercise"] is False
    assert live_event["data"]["device"]["id"] == "vic-302"
    root = etree.fromstring(cap_msg.body)
    assert root.findtext(f"{CAP}status") == "Exercise"
    assert _schema().validate(root)
    assert (len(live.received), len(drill.received), len(drill_cap.received)) == (1, 1, 1)
    for d in (drill_device, live_device):
        d.disconnect()


def test_a_live_case_in_a_region_holding_an_exercise_still_reaches_the_live_police(
        webhooks, receivers):
    """A region holding an exercise does not make a drill of a real victim's panic there: only
    an exercise case's alerts are drills (the region's rule is for alerts of no case)."""
    stack = webhooks
    api = stack.api()
    live, drill = receivers(), receivers()
    subscribe(api, live)
    subscribe(api, drill, drill=True, vr_codes=["VR17"])
    stack.runtime.flow.exercise_regions = frozenset({"VR17"})
    stack.register("vic-303")
    device = stack.device("vic-303")
    alarm = Alarm(id="r-1", tst=time.time(), lat=ROTTERDAM_CS[0], lon=ROTTERDAM_CS[1], acc=8.0)
    publish(device, stack.topics.alarm("vic-303"), codec.encode(alarm))
    [msg] = live.wait_for(1)
    event = orjson.loads(msg.body)
    assert event["data"]["exercise"] is False and event["data"]["region"]["vr_code"] == "VR17"
    wait_until(lambda: api.get("/api/v1/alerts").json()[0]["police_delivery"] == "delivered")
    assert drill.requests == 0
    device.disconnect()
