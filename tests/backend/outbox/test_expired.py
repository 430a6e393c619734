"""A device ack or command the broker never confirms (the broker away, a message it refuses) is
not re-published for ever: once `outbox.device_deadline_s` has passed it ends `expired`, is no
longer re-published, and leaves its outcome on its alert's timeline and, for a command, in the
case log of the device's case. On SQLite and PostgreSQL with a fake clock, and on the running
stack with the real broker."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from backend.alerts.models import Alert, AlertEvent, OutboxMessage
from backend.caselog import service as caselog
from backend.cases.models import Case
from backend.devices.models import Device
from backend.outbox.dispatcher import OutboxDispatcher
from backend.outbox.expired import command_summary, device_topic
from tests.support.waiting import wait_until

T0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
DEADLINE_S = 300.0
ACK = "sd/v1/dev/vic-1/ack"
CMD = "sd/v1/dev/vic-1/cmd"
FEED = "sd/v1/police/RE07/alerts"
CONFIG = b'{"cmd":"config","report_interval_s":15}'


class Published:
    def __init__(self) -> None:
        self.keys: list[int] = []

    def publish(self, topic: str, payload: bytes, qos: int, key) -> None:
        self.keys.append(key)


def _case_with_device(sessions, device_id: str = "vic-1") -> uuid.UUID:
    with sessions.begin() as s:
        case = Case(reference=f"C-{uuid.uuid4().hex[:8]}", home_police_unit="RE07")
        s.add(case)
        s.flush()
        s.add(Device(id=device_id, case_id=case.id, role="victim"))
        return case.id


def _alert(sessions) -> uuid.UUID:
    with sessions.begin() as s:
        alert = Alert(id=uuid.uuid4(), type="panic", priority="P1", state="new", sequence=1,
                      raised_at=T0, updated_at=T0, flags=[], exercise=False)
        s.add(alert)
        return alert.id


def _outbox(sessions, alert_id: uuid.UUID | None, target: str, seconds: float,
            payload: bytes = b"{}") -> int:
    with sessions.begin() as s:
        row = OutboxMessage(alert_id=alert_id, channel="mqtt", target=target, payload=payload,
                            qos=1, status="pending", attempts=3,
                            created_at=T0 + timedelta(seconds=seconds))
        s.add(row)
        s.flush()
        return row.id


def _row(sessions, outbox_id: int) -> OutboxMessage:
    with sessions() as s:
        row = s.get(OutboxMessage, outbox_id)
        s.expunge(row)
        return row


def _dispatcher(sessions) -> tuple[OutboxDispatcher, Published]:
    dispatcher = OutboxDispatcher(sessions, resend_after_s=1.0, device_deadline_s=DEADLINE_S)
    published = Published()
    dispatcher.attach(published)
    return dispatcher, published


def test_the_device_topic_and_what_the_case_log_keeps_of_a_command():
    assert device_topic("sd/v1/dev/vic-1/ack") == ("vic-1", "ack")
    assert device_topic("a/b/c/dev/off-2/cmd") == ("off-2", "cmd")
    with pytest.raises(ValueError):
        device_topic(FEED)
    assert command_summary(b'{"cmd":"warn","reason":"zone","ref":"a-1","lat":51.9}') == {
        "cmd": "warn", "reason": "zone", "ref": "a-1"}
    assert command_summary(b"not json") == {} and command_summary(b"[1]") == {}


def test_device_messages_past_the_deadline_end_expired_and_are_no_longer_published(
        sessions, caplog):
    case_id = _case_with_device(sessions)
    alert_id = _alert(sessions)
    old_ack = _outbox(sessions, alert_id, ACK, 0)
    old_cmd = _outbox(sessions, None, CMD, 0, CONFIG)  # an interval change: no alert
    old_feed = _outbox(sessions, alert_id, FEED, 0)  # the police feed has its own deadline
    new_ack = _outbox(sessions, alert_id, ACK, 60)
    dispatcher, published = _dispatcher(sessions)

    assert dispatcher.expire(T0 + timedelta(seconds=DEADLINE_S - 0.1)) == 0
    published.keys.clear()
    with caplog.at_level(logging.WARNING, logger="backend.outbox.expired"):
        dispatcher.sweep(now=T0 + timedelta(seconds=DEADLINE_S + 5))

    assert sorted(published.keys) == sorted([old_feed, new_ack])
    assert [_row(sessions, i).status for i in (old_ack, old_cmd, old_feed, new_ack)] == [
        "expired", "expired", "pending", "pending"]
    assert _row(sessions, old_cmd).last_error == "not confirmed by the broker within 300 s"
    assert dispatcher.expire(T0 + timedelta(seconds=DEADLINE_S + 10)) == 0  # ended once

    with sessions() as s:
        [entry] = s.query(AlertEvent).filter_by(alert_id=alert_id).all()
        [logged] = caselog.entries(s, case_id, {"device_command_expired"})
    assert (entry.actor, entry.kind) == ("device feedback", "delivery")
    assert entry.detail["state"] == "expired" and entry.detail["outbox_id"] == old_ack
    assert logged.data["device_id"] == "vic-1" and logged.data["outbox_id"] == old_cmd
    assert logged.data["command"] == {"cmd": "config", "report_interval_s": 15}
    lines = sorted(r.getMessage() for r in caplog.records if r.name == "backend.outbox.expired")
    assert lines == [f"device ack outbox={old_ack} device=vic-1 expired",
                     f"device cmd outbox={old_cmd} device=vic-1 expired"]


def test_a_command_of_a_device_without_a_case_or_an_alert_still_ends(sessions):
    cmd = _outbox(sessions, None, "sd/v1/dev/spare-9/cmd", 0, CONFIG)
    dispatcher, published = _dispatcher(sessions)
    dispatcher.sweep(now=T0 + timedelta(seconds=DEADLINE_S + 5))
    assert _row(sessions, cmd).status == "expired" and published.keys == []


@pytest.mark.services
def test_the_running_stack_no_longer_sends_an_expired_command_to_the_device(stack):
    """The real broker: a command pending past the deadline (300 s by default) ends expired
    and never reaches the device, while one still within it is re-published and arrives."""
    stack.register("vic-401")
    topic = stack.topics.cmd("vic-401")
    device = stack.collector(topic)
    sessions = stack.runtime.sessions
    deadline_s = stack.settings.outbox.device_deadline_s
    now = datetime.now(UTC)
    with sessions.begin() as s:
        rows = [OutboxMessage(channel="mqtt", target=topic, payload=payload, qos=1,
                              status="pending", created_at=at)
                for payload, at in ((b'{"cmd":"config","report_interval_s":15}',
                                     now - timedelta(seconds=deadline_s + 1)),
                                    (b'{"cmd":"config","report_interval_s":60}',
                                     now - timedelta(seconds=3)))]
        s.add_all(rows)
        s.flush()
        old, recent = rows[0].id, rows[1].id
    try:
        wait_until(lambda: _row(sessions, recent).status == "sent", timeout=15)
        assert _row(sessions, old).status == "expired"
        assert [payload for _, payload, _ in device.wait_for(1)] == [
            b'{"cmd":"config","report_interval_s":60}']
    finally:
        device.close()
