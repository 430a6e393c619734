"""The escalation loop on the stack: an unacknowledged P1 is re-notified at 30 s and escalated
(desk supervisor, then the police unit directly, which reaches the police feed); an acknowledged
alert that stays unresolved re-alerts; the loop is driven with a controllable clock."""

from __future__ import annotations

import uuid
from datetime import timedelta

import orjson
from sqlalchemy import select

from backend.alerts.models import Alert, AlertEvent
from backend.caselog import service as caselog
from backend.cases.models import Case
from backend.escalation.loop import EscalationLoop
from tests.backend.escalation.support import RecordingBus, raise_panic


def _timeline(stack, alert_id: uuid.UUID) -> list[AlertEvent]:
    with stack.runtime.sessions() as s:
        return list(
            s.scalars(
                select(AlertEvent)
                .where(AlertEvent.alert_id == alert_id)
                .order_by(AlertEvent.id)
            )
        )


def test_unacknowledged_p1_escalates_on_time(stack):
    alert = raise_panic(stack, "vic-esc")
    assert alert.priority == "P1" and alert.escalation_step == 0
    t0 = alert.raised_at
    assert alert.next_escalation_at == t0 + timedelta(seconds=30)
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, clock=lambda: t0, bus=bus)
    police = stack.collector(stack.topics.police_filter())

    assert loop.run_once(t0 + timedelta(seconds=29)) == 0
    assert loop.run_once(t0 + timedelta(seconds=30)) == 1  # re-notified at 30 s
    assert loop.run_once(t0 + timedelta(seconds=31)) == 0  # not twice
    assert loop.run_once(t0 + timedelta(seconds=45)) == 1  # desk supervisor
    assert police.messages == []  # nothing for the police feed yet
    assert loop.run_once(t0 + timedelta(seconds=60)) == 1  # the police unit directly

    [(topic, payload, _)] = police.wait_for(1)
    assert topic == stack.topics.police_alerts("RE07")
    document = orjson.loads(payload)
    assert document["alert_id"] == str(alert.id)
    assert document["escalation"]["target"] == "police_unit"
    assert "police_delivery" not in document  # the console's, not the police's
    assert [
        (e["escalation"]["action"], e["escalation"]["target"])
        for e in bus.named("alert.escalated")
    ] == [
        ("re_notify", "primary"),
        ("escalate", "desk_supervisor"),
        ("escalate", "police_unit"),
    ]
    escalations = [e for e in _timeline(stack, alert.id) if e.kind == "escalated"]
    assert [e.detail["step"] for e in escalations] == [1, 2, 3]
    assert all(e.actor == "system:escalation" for e in escalations)
    with stack.runtime.sessions() as s:
        kinds = [e.kind for e in caselog.entries(s, alert.case_id)]
        assert kinds == ["alert", "escalation", "escalation", "escalation"]
        assert caselog.verify(s, alert.case_id).ok
        stored = s.get(Alert, alert.id)
        # The chain is done; the next look is the re-alert after acknowledgement only.
        assert stored.next_escalation_at is None and stored.escalation_step == 3
    police.close()


def test_a_late_loop_catches_up_every_step_in_order(stack):
    alert = raise_panic(stack, "vic-late")
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, bus=bus)
    assert loop.run_once(alert.raised_at + timedelta(seconds=90)) == 3
    assert [e["escalation"]["step"] for e in bus.named("alert.escalated")] == [1, 2, 3]
    # Each event carries its scope facts: the console stream screens it without the database.
    with stack.runtime.sessions() as s:
        case = s.get(Case, alert.case_id)
        expected = {"police_unit": alert.police_unit, "case_id": str(alert.case_id),
                    "case_reference": case.reference, "case_home_vr": case.home_vr_code,
                    "case_director": case.case_director,
                    "case_home_unit": case.home_police_unit}
    assert [e["scope"] for e in bus.named("alert.escalated")] == [expected] * 3


def test_acknowledged_alert_stops_escalating_and_re_alerts_when_unresolved(stack):
    alert = raise_panic(stack, "vic-ack")
    api = stack.api()
    assert api.post(f"/api/v1/alerts/{alert.id}/acknowledge").status_code == 200
    with stack.runtime.sessions() as s:
        acked = s.get(Alert, alert.id)
        assert acked.next_escalation_at == acked.acknowledged_at + timedelta(
            seconds=600
        )
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, bus=bus)
    assert (
        loop.run_once(acked.raised_at + timedelta(seconds=120)) == 0
    )  # acknowledged: no chain
    assert loop.run_once(acked.acknowledged_at + timedelta(seconds=600)) == 1
    [event] = bus.named("alert.escalated")
    assert event["escalation"]["action"] == "re_alert"
    assert loop.run_once(acked.acknowledged_at + timedelta(seconds=700)) == 0
    assert (
        loop.run_once(acked.acknowledged_at + timedelta(seconds=1200)) == 1
    )  # and again
    assert api.post(f"/api/v1/alerts/{alert.id}/resolve").status_code == 200
    assert loop.run_once(acked.acknowledged_at + timedelta(seconds=9999)) == 0
