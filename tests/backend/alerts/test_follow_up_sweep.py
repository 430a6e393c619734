"""The follow-up sweep finishes what a process that died between an alert's raise and its
follow-up left undone, when no redelivery will: the "raised" timeline entry, the case log, the
victim's warning and pursuit mode, once, after the grace time; and a tamper report redelivered
while its own alert is open finishes that alert like any redelivery."""

from __future__ import annotations

import time
import uuid
from datetime import timedelta

import orjson
import pytest
from sqlalchemy import select

from backend.alerts.follow_up_sweep import FollowUpSweep
from backend.alerts.models import Alert, AlertEvent
from backend.caselog import service as caselog
from backend.devices.models import Device
from backend.pipeline.context import AlertDraft

GRACE = timedelta(seconds=30)  # the settings' default


def _raised_without_follow_up(stack, draft: AlertDraft) -> Alert:
    """Raise as the alarm worker does, and stop where a crash would: committed, police feed
    out, no follow-up."""
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(s, [draft], follow_up=False)
    stack.runtime.dispatcher.send(effects.outbox)
    [alert] = effects.alerts
    return alert


def _state(stack, alert_id: uuid.UUID, case_id: uuid.UUID) -> tuple:
    with stack.runtime.sessions() as s:
        alert = s.get(Alert, alert_id)
        events = list(s.scalars(select(AlertEvent.kind).where(AlertEvent.alert_id == alert_id)))
        log = [e.kind for e in caselog.entries(s, case_id)]
        return alert.followed_up_at is not None, events, log, caselog.verify(s, case_id).ok


def _zone_case(stack, prefix: str) -> uuid.UUID:
    case_id = stack.register(f"{prefix}-victim")
    with stack.runtime.sessions.begin() as s:
        s.add(Device(id=f"{prefix}-offender", case_id=case_id, role="offender",
                     report_interval_s=120))
    return case_id


def test_an_unfinished_follow_up_is_finished_once_after_the_grace_time(stack):
    case_id = _zone_case(stack, "fs")
    victim = stack.collector(stack.topics.cmd("fs-victim"))
    offender = stack.collector(stack.topics.cmd("fs-offender"))
    alert = _raised_without_follow_up(stack, AlertDraft(
        type="zone_breach", device_id="fs-offender", case_id=case_id, message_id="zb-1",
        raised_at=time.time(),
        detail={"geofence": {"measure_id": "m-1", "event": "enter", "other_device_id": None}}))
    sweep = FollowUpSweep(stack.runtime)
    assert _state(stack, alert.id, case_id) == (False, [], [], True)

    assert sweep.run_once(alert.raised_at + GRACE - timedelta(seconds=1)) == 0  # on its way
    assert _state(stack, alert.id, case_id) == (False, [], [], True)
    assert sweep.run_once(alert.raised_at + GRACE) == 1
    assert _state(stack, alert.id, case_id) == (True, ["raised"], ["alert"], True)
    assert sweep.run_once(alert.raised_at + GRACE + timedelta(seconds=10)) == 0  # once

    # The victim is warned and both devices go into pursuit mode, as after a whole raise.
    sent = [orjson.loads(p) for _, p, _ in victim.wait_for(2)]
    assert {"cmd": "warn", "reason": "zone", "ref": str(alert.id)} in sent
    assert {"cmd": "config", "report_interval_s": 15} in sent
    [(_, payload, _)] = offender.wait_for(1)
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 15}


def test_a_follow_up_done_meanwhile_or_an_alert_closed_is_left_alone(stack):
    case_id = _zone_case(stack, "fd")
    flow = stack.runtime.flow
    done = _raised_without_follow_up(stack, AlertDraft(
        type="tamper", device_id="fd-offender", case_id=case_id, message_id="t-1",
        raised_at=time.time()))
    closed = _raised_without_follow_up(stack, AlertDraft(
        type="tamper", device_id="fd-offender", case_id=case_id, message_id="t-2",
        raised_at=time.time()))
    with stack.runtime.sessions.begin() as s:
        flow.finish_follow_up(s, s.get(Alert, done.id))  # its raise's process finished it
    with stack.runtime.sessions.begin() as s:  # a transition runs the follow-up first
        flow.transition(s, closed.id, "resolve", actor="user:desk")

    assert FollowUpSweep(stack.runtime).run_once(closed.raised_at + GRACE) == 0
    with stack.runtime.sessions() as s:
        events = list(s.scalars(select(AlertEvent.kind).where(
            AlertEvent.alert_id.in_([done.id, closed.id])).order_by(AlertEvent.id)))
        assert events == ["raised", "raised", "transition"]  # none twice
        assert caselog.verify(s, case_id).ok


class _FailingOnce:
    """A follow-up hook that fails for one alert (a bug, a case row it cannot write)."""

    phase = "follow_up"

    def __init__(self, alert_id: uuid.UUID) -> None:
        self.alert_id = alert_id

    def after_change(self, session, alert, document, effects) -> None:
        if alert.id == self.alert_id:
            raise RuntimeError("follow-up hook failed")


def test_one_failing_follow_up_stops_no_other_and_is_tried_again(stack, caplog):
    case_id = _zone_case(stack, "ff")
    flow = stack.runtime.flow
    first, second = (_raised_without_follow_up(stack, AlertDraft(
        type="tamper", device_id="ff-offender", case_id=case_id, message_id=f"t-{n}",
        raised_at=time.time())) for n in (1, 2))
    failing = _FailingOnce(first.id)
    flow.hooks.append(failing)
    try:
        sweep = FollowUpSweep(stack.runtime)
        assert sweep.run_once(second.raised_at + GRACE) == 1
    finally:
        flow.hooks.remove(failing)
    assert f"follow-up of alert id={first.id} failed" in caplog.text
    assert _state(stack, first.id, case_id)[:2] == (False, [])  # rolled back whole
    assert _state(stack, second.id, case_id)[:2] == (True, ["raised"])
    assert sweep.run_once(second.raised_at + GRACE) == 1  # the next pass
    assert _state(stack, first.id, case_id)[:2] == (True, ["raised"])


@pytest.mark.parametrize("open_first", [True, False])
def test_a_tamper_report_redelivered_while_its_alert_is_open_finishes_it(stack, open_first):
    """A status report with tamper raises while none is open; redelivered after a crash, the
    open alert it finds is its own, and the redelivery finishes its follow-up (pursuit mode,
    the case log). Another report while that alert is open raises nothing, finishes nothing."""
    case_id = _zone_case(stack, f"tr{int(open_first)}")
    device_id = f"tr{int(open_first)}-offender"
    flow = stack.runtime.flow

    def report(message_id: str) -> AlertDraft:
        return AlertDraft(type="tamper", device_id=device_id, case_id=case_id,
                          message_id=message_id, raised_at=time.time(), while_none_open=True)

    alert = _raised_without_follow_up(stack, report("status-tamper-1"))
    if open_first:  # another report of the condition first: nothing new, nothing finished
        with stack.runtime.sessions.begin() as s:
            assert flow.raise_alerts(s, [report("status-tamper-2")]).alerts == []
        assert _state(stack, alert.id, case_id)[:2] == (False, [])
    with stack.runtime.sessions.begin() as s:
        effects = flow.raise_alerts(s, [report("status-tamper-1")])  # the redelivery
    assert effects.alerts == []
    assert _state(stack, alert.id, case_id) == (True, ["raised"], ["alert"], True)
