"""A condition a device reports again and again (tamper in every status report until someone
sees to it) raises one alert while that alert is open, and a new one once it is closed; an event
(a panic) raises one alert per message id whatever is open."""

from __future__ import annotations

import time

from sqlalchemy import select

from backend.alerts.models import Alert
from backend.pipeline.context import AlertDraft


def _draft(stack, case_id, message_id: str, kind: str = "tamper", **extra) -> AlertDraft:
    return AlertDraft(type=kind, device_id="off-301", case_id=case_id, message_id=message_id,
                      raised_at=time.time(), **extra)


def _raise(stack, draft: AlertDraft) -> list[Alert]:
    with stack.runtime.sessions.begin() as s:
        return stack.runtime.flow.raise_alerts(s, [draft]).alerts


def _alerts(stack, kind: str) -> list[Alert]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(Alert).where(Alert.device_id == "off-301",
                                                  Alert.type == kind).order_by(Alert.raised_at)))


def test_a_repeated_condition_raises_while_none_is_open(stack):
    case_id = stack.register("off-301", role="offender")
    [first] = _raise(stack, _draft(stack, case_id, "status-tamper-1", while_none_open=True))
    assert _raise(stack, _draft(stack, case_id, "status-tamper-2", while_none_open=True)) == []
    assert [a.id for a in _alerts(stack, "tamper")] == [first.id]

    with stack.runtime.sessions.begin() as s:
        stack.runtime.flow.transition(s, first.id, "acknowledge", actor="user:desk")
    assert _raise(stack, _draft(stack, case_id, "status-tamper-3", while_none_open=True)) == []
    with stack.runtime.sessions.begin() as s:
        stack.runtime.flow.transition(s, first.id, "resolve", actor="user:desk")
    [again] = _raise(stack, _draft(stack, case_id, "status-tamper-4", while_none_open=True))
    assert [a.id for a in _alerts(stack, "tamper")] == [first.id, again.id]

    # Without the flag (an event), each message id is an alert of its own.
    assert len(_raise(stack, _draft(stack, case_id, "p-1", kind="panic"))) == 1
    assert len(_raise(stack, _draft(stack, case_id, "p-2", kind="panic"))) == 1
