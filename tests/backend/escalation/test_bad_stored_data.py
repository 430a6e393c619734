"""One alert that cannot be escalated (here a stored plan that cannot be read back: an older
format, a hand edit) stops neither the pass nor the escalation of any other alert, and can still
be acknowledged. Before, it came first in every pass by its deadline and failed each one: no
alert escalated any more."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from backend.alerts.models import Alert
from backend.escalation.loop import RETRY_AFTER, EscalationLoop
from tests.backend.escalation.support import RecordingBus, raise_panic


def _break_plan(stack, alert_id) -> None:
    with stack.runtime.sessions.begin() as s:
        s.execute(update(Alert).where(Alert.id == alert_id).values(escalation={"steps": []}))


def _alert(stack, alert_id) -> Alert:
    with stack.runtime.sessions() as s:
        return s.get(Alert, alert_id)


def test_an_unreadable_plan_does_not_stop_the_escalation_of_other_alerts(stack):
    broken = raise_panic(stack, "vic-broken")
    good = raise_panic(stack, "vic-good")
    _break_plan(stack, broken.id)
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, bus=bus)
    now = good.raised_at + timedelta(seconds=61)

    assert loop.run_once(now) == 3  # the good P1's steps at 30, 45 and 60 s
    assert {e["alert"]["alert_id"] for e in bus.named("alert.escalated")} == {str(good.id)}
    assert _alert(stack, good.id).escalation_step == 3
    # The broken one is looked at again later, not at the head of every pass meanwhile.
    assert _alert(stack, broken.id).next_escalation_at == now + RETRY_AFTER
    assert _alert(stack, broken.id).escalation_step == 0


def test_an_alert_with_an_unreadable_plan_can_still_be_acknowledged(stack):
    broken = raise_panic(stack, "vic-broken-ack")
    _break_plan(stack, broken.id)
    r = stack.api().post(f"/api/v1/alerts/{broken.id}/acknowledge")
    assert r.status_code == 200, r.text
    assert _alert(stack, broken.id).state == "acknowledged"
