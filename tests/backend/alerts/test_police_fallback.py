"""A panic whose place and case name no police unit (no position, none known, a case without a
home region) still goes to the police: the fallback unit's feed gets it, at the raise and when
the escalation calls the police, and the desk reads why and that it should phone. An alarm
whose place names a unit is routed there, as before."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.alerts.models import Alert, OutboxMessage
from backend.console.notices import alert_notices
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def _alert(stack, device_id: str) -> Alert | None:
    with stack.runtime.sessions() as s:
        return s.scalar(select(Alert).where(Alert.device_id == device_id))


def _feeds(stack, alert: Alert) -> list[str]:
    with stack.runtime.sessions() as s:
        return sorted(t for t in s.scalars(select(OutboxMessage.target).where(
            OutboxMessage.alert_id == alert.id)) if "/police/" in t)


def test_a_panic_nobody_can_place_goes_to_the_fallback_police_unit(stack):
    stack.register("vic-nowhere", home_unit=None)  # no home region, unit or desk
    device = stack.device("vic-nowhere")
    try:
        publish(device, stack.topics.alarm("vic-nowhere"), codec.encode(Alarm(id="n-1")))
        alert = wait_until(lambda: _alert(stack, "vic-nowhere"))
    finally:
        device.disconnect()
    fallback = stack.settings.routing.fallback_police_unit
    assert alert.priority == "P1" and "police_fallback" in alert.flags
    assert {"kind": "police_unit", "code": fallback} in [
        {"kind": r["kind"], "code": r["code"]} for r in alert.recipients]
    assert _feeds(stack, alert) == [stack.topics.police_alerts(fallback)]
    # The escalation's call to the police unit calls the fallback unit too, not nobody.
    called = [[r["code"] for r in step["recipients"]] for step in alert.escalation["steps"]
              if step["target"] == "police_unit"]
    assert called == [[fallback]]
    notes = alert_notices(alert.flags, alert.escalation)  # what the alert page says
    assert "alert_note_police_fallback" in notes and "alert_note_no_region" in notes


def test_a_panic_with_a_place_is_routed_by_it_not_by_the_fallback(stack):
    stack.register("vic-placed", home_unit=None)
    device = stack.device("vic-placed")
    try:
        publish(device, stack.topics.alarm("vic-placed"), codec.encode(
            Alarm(id="p-1", lat=52.3731, lon=4.8922, acc=8.0)))  # Amsterdam: RE05
        alert = wait_until(lambda: _alert(stack, "vic-placed"))
    finally:
        device.disconnect()
    assert "police_fallback" not in alert.flags
    assert _feeds(stack, alert) == [stack.topics.police_alerts("RE05")]


@pytest.mark.parametrize(("where", "note"), [
    ((51.2194, 4.4025), "alert_note_place_nearest_municipality"),  # Antwerp, across the border
    ((53.9, 2.5), "alert_note_place_outside_regions"),  # the North Sea, far out
])
def test_a_position_in_no_municipality_is_named_on_the_alert_page(stack, where, note):
    device_id = f"vic-{note[-8:]}"
    stack.register(device_id)
    device = stack.device(device_id)
    try:
        publish(device, stack.topics.alarm(device_id), codec.encode(
            Alarm(id="x-1", lat=where[0], lon=where[1], acc=8.0)))
        alert = wait_until(lambda: _alert(stack, device_id))
    finally:
        device.disconnect()
    notes = alert_notices(alert.flags, alert.escalation)
    assert note in notes and "alert_note_police_fallback" not in notes
