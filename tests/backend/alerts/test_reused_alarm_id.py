"""A device that counts its alarm ids from 1 again (after a reset) presses panic with the id of
an alert the desk closed long ago: a new press, raised anew (flagged `reused_id`) and answered
under the id the device gave; its own retransmissions raise nothing more. A retransmission
while the alert is open stays one alert. An alarm without a usable id, whose id is derived from
its bytes, is raised anew once its alert is closed, though in the same bytes. On real services
and on the embedded defaults."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import func, select

from backend.alerts.flows import derived_again_key, device_ref
from backend.alerts.models import Alert
from backend.pipeline.context import RawMessage
from backend.pipeline.pipeline import build_pipeline
from backend.state.store import InMemoryState
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def _alerts(api) -> list[dict]:
    found = api.get("/api/v1/alerts", params={"state": "all", "with_location": "false"}).json()
    return sorted(found, key=lambda a: a["raised_at"])


def test_a_new_press_reusing_a_closed_alerts_id_is_raised_and_answered(stack):
    stack.register("vic-601")
    device = stack.device("vic-601")
    acks = stack.collector(stack.topics.ack("vic-601"))
    api = stack.api()
    topic = stack.topics.alarm("vic-601")
    try:
        first = codec.encode(Alarm(id="1", tst=time.time() - 3600))
        publish(device, topic, first)
        [old] = wait_until(lambda: _alerts(api))
        publish(device, topic, first)  # a retransmission while it is open: nothing new
        assert api.post(f"/api/v1/alerts/{old['alert_id']}/resolve").status_code == 200
        publish(device, topic, first)  # and once it is closed: the same bytes, nothing new
        time.sleep(1.0)
        assert len(_alerts(api)) == 1

        again = codec.encode(Alarm(id="1", tst=time.time()))  # after a reset: id 1 again
        publish(device, topic, again)
        alerts = wait_until(lambda: len(found := _alerts(api)) == 2 and found)
        new = alerts[1]
        assert new["state"] == "new" and new["type"] == "panic"
        assert "reused_id" in new["flags"] and new["message_id"].startswith("1~")
        publish(device, topic, again)  # its retransmission
        time.sleep(1.0)
        assert len(_alerts(api)) == 2

        told = [codec.decode_ack(p) for _, p, _ in acks.wait_for(3)]
        assert [(a.ref, a.state) for a in told] == [
            ("1", "received"), ("1", "resolved"), ("1", "received")]
    finally:
        acks.close()
        device.disconnect()


def _press(stack, pipeline, payload: bytes, retain: bool = False) -> list[Alert]:
    """One alarm of vic-603 through the pipeline and the flow: the alerts it raised."""
    ctx = pipeline.run(RawMessage(stack.topics.alarm("vic-603"), payload, 1, 1, time.time(),
                                  retain))
    with stack.runtime.sessions.begin() as s:
        return stack.runtime.flow.raise_alerts(s, ctx.alerts).alerts


def _resolve(stack, alert: Alert) -> None:
    with stack.runtime.sessions.begin() as s:
        stack.runtime.flow.transition(s, alert.id, "resolve", actor="user:desk")


@pytest.mark.parametrize("body", [b'{"kind": "panic"}', b""], ids=["no id", "empty"])
def test_presses_in_one_body_without_an_id_are_raised_again_once_closed(stack, body):
    """Firmware with an id bug sends the same body for every press: its id is derived from the
    bytes, the same each time. While its alert is open a press is a retransmission of it; once
    the desk closed it, the next press is raised anew (flagged `reused_id`), each time."""
    stack.register("vic-603")
    pipeline = build_pipeline(stack.settings.protocol, stack.runtime.directory, InMemoryState())
    [first] = _press(stack, pipeline, body)
    base = first.message_id
    assert base.startswith("body-") and "unreadable" in first.flags
    assert _press(stack, pipeline, body) == []  # open: a retransmission

    _resolve(stack, first)
    [second] = _press(stack, pipeline, body)
    assert second.message_id == f"{base}~2" and "reused_id" in second.flags
    assert device_ref(second) == base  # its ack names the id the device's alarm has
    assert _press(stack, pipeline, body) == []  # the second open: a retransmission of it

    _resolve(stack, second)
    [third] = _press(stack, pipeline, body)
    assert third.message_id == f"{base}~3"
    with stack.runtime.sessions() as s:
        held = s.scalars(select(Alert.message_id).where(Alert.device_id == "vic-603"))
        assert sorted(held) == [base, f"{base}~2", f"{base}~3"]


@pytest.mark.parametrize("body", [b"{}", codec.encode(Alarm(id="r-1"))], ids=["no id", "id"])
def test_a_retained_alarm_replayed_at_each_subscribe_is_no_new_press(stack, body):
    """A device published its alarm retained: the broker sends its stored copy (retain set)
    every time the alarm worker subscribes again. The press reached the worker live once; the
    copies, also after the desk closed its alert, raise nothing more."""
    stack.register("vic-603")
    pipeline = build_pipeline(stack.settings.protocol, stack.runtime.directory, InMemoryState())
    [live] = _press(stack, pipeline, body)
    _resolve(stack, live)
    for _reconnect in range(3):
        assert _press(stack, pipeline, body, retain=True) == []
    with stack.runtime.sessions() as s:
        assert s.scalar(select(func.count()).where(Alert.device_id == "vic-603")) == 1


def test_the_key_of_a_press_again_follows_the_last_by_number():
    closed, open_ = "resolved", "new"
    assert derived_again_key("b", [("b", closed)]) == "b~2"
    assert derived_again_key("b", [("b~10", closed), ("b", closed), ("b~9", closed)]) == "b~11"
    assert derived_again_key("b", [("b", closed), ("b~2", open_), ("b~3", closed)]) == "b~2"
