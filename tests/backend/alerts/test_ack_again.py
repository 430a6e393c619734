"""A device whose alarm ack was given up (the broker did not take it within
`outbox.device_deadline_s`) retransmits its alarm until it hears `received`: the retransmission
is answered with `received` and the alert's state now. While the ack is on its way or the broker
has it, a retransmission gets nothing new. On real services and on the embedded defaults."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from backend.alerts.models import OutboxMessage
from device_protocol import Alarm, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


class Dropped:
    """A broker that never takes anything: every publish is lost."""

    def publish(self, topic: str, payload: bytes, qos: int, key) -> None:
        pass


def _ack_statuses(stack, ack_topic: str) -> list[str]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(OutboxMessage.status).where(
            OutboxMessage.target == ack_topic).order_by(OutboxMessage.id)))


def test_a_retransmitted_alarm_whose_ack_was_given_up_gets_its_state_now(stack):
    stack.register("vic-501")
    ack_topic = stack.topics.ack("vic-501")
    dispatcher = stack.runtime.dispatcher
    broker = dispatcher._publisher
    dispatcher.attach(Dropped())  # the broker takes nothing: the ack stays pending
    device = stack.device("vic-501")
    acks = stack.collector(ack_topic)
    api = stack.api()
    try:
        publish(device, stack.topics.alarm("vic-501"), codec.encode(Alarm(id="p-1")))
        alert = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])
        r = api.post(f"/api/v1/alerts/{alert['alert_id']}/acknowledge")
        assert r.status_code == 200
        assert _ack_statuses(stack, ack_topic) == ["pending", "pending"]
        later = datetime.now(UTC) + timedelta(seconds=stack.settings.outbox.device_deadline_s)
        dispatcher.expire(later + timedelta(seconds=1))  # the acks, and the pursuit command
        assert _ack_statuses(stack, ack_topic) == ["expired", "expired"]
        dispatcher.attach(broker)  # the broker is back

        publish(device, stack.topics.alarm("vic-501"), codec.encode(Alarm(id="p-1")))

        told = [codec.decode_ack(p) for _, p, _ in acks.wait_for(2)]
        assert [(a.ref, a.state) for a in told] == [("p-1", "received"), ("p-1", "acknowledged")]
        wait_until(lambda: _ack_statuses(stack, ack_topic)
                   == ["expired", "expired", "sent", "sent"])

        # Now that the broker has them, a retransmission gets nothing new: the next alarm's
        # ack is the only one after it.
        publish(device, stack.topics.alarm("vic-501"), codec.encode(Alarm(id="p-1")))
        publish(device, stack.topics.alarm("vic-501"), codec.encode(Alarm(id="p-2")))
        told = [codec.decode_ack(p) for _, p, _ in acks.wait_for(3)]
        assert [(a.ref, a.state) for a in told[2:]] == [("p-2", "received")]
        assert len(_ack_statuses(stack, ack_topic)) == 5
    finally:
        dispatcher.attach(broker)
        acks.close()
        device.disconnect()


def test_an_alarm_of_kind_tamper_is_answered_received_and_again_when_given_up(stack):
    """Every alarm a device sends hears `received` (it retransmits until it does), whatever
    its kind; a tamper alarm tells the device nothing more of the alert's course."""
    stack.register("off-502", role="offender")
    ack_topic = stack.topics.ack("off-502")
    dispatcher = stack.runtime.dispatcher
    broker = dispatcher._publisher
    device = stack.device("off-502")
    acks = stack.collector(ack_topic)
    api = stack.api()
    try:
        publish(device, stack.topics.alarm("off-502"),
                codec.encode(Alarm(id="t-1", kind="tamper")))
        [(_, payload, _)] = acks.wait_for(1)
        assert (codec.decode_ack(payload).ref, codec.decode_ack(payload).state) == (
            "t-1", "received")
        alert = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])
        assert alert["type"] == "tamper"

        dispatcher.attach(Dropped())  # the next ack is lost at the broker and given up
        publish(device, stack.topics.alarm("off-502"),
                codec.encode(Alarm(id="t-2", kind="tamper")))
        wait_until(lambda: _ack_statuses(stack, ack_topic) == ["sent", "pending"])
        for open_alert in api.get("/api/v1/alerts").json():  # t-2's moves on too
            assert api.post(f"/api/v1/alerts/{open_alert['alert_id']}/acknowledge"
                            ).status_code == 200
        later = datetime.now(UTC) + timedelta(seconds=stack.settings.outbox.device_deadline_s)
        dispatcher.expire(later + timedelta(seconds=1))
        assert _ack_statuses(stack, ack_topic) == ["sent", "expired"]
        dispatcher.attach(broker)

        publish(device, stack.topics.alarm("off-502"),
                codec.encode(Alarm(id="t-2", kind="tamper")))  # the retransmission
        told = [codec.decode_ack(p) for _, p, _ in acks.wait_for(2)]
        assert [(a.ref, a.state) for a in told[1:]] == [("t-2", "received")]
        wait_until(lambda: _ack_statuses(stack, ack_topic) == ["sent", "expired", "sent"])
        time.sleep(0.3)
        assert len(acks.messages) == 2  # no `acknowledged` for the tamper alarm
    finally:
        dispatcher.attach(broker)
        acks.close()
        device.disconnect()
