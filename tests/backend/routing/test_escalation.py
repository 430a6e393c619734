"""escalation_due(): a controllable clock (plain `now` values), no sleeping."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.regions import RegionMatch
from backend.routing import (
    AlertFacts,
    CaseFacts,
    EscalationPlan,
    Policy,
    escalation_due,
    next_escalation_at,
    route,
)

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.fixture()
def p1_plan(case: CaseFacts, rotterdam: RegionMatch, policy: Policy) -> EscalationPlan:
    decision = route(AlertFacts("panic", T0), case, rotterdam, policy, T0)
    assert decision.priority == "P1"
    assert decision.first_escalation_deadline == at(30)
    return decision.escalation


def due(
    plan: EscalationPlan,
    now: float,
    *,
    last: int | None,
    ack: float | None = None,
    resolved: float | None = None,
):  # type: ignore[no-untyped-def]
    return escalation_due(
        plan,
        raised_at=T0,
        acknowledged_at=None if ack is None else at(ack),
        resolved_at=None if resolved is None else at(resolved),
        last_step_done=last,
        now=at(now),
    )


def test_first_notification_is_due_at_once(p1_plan: EscalationPlan) -> None:
    steps = due(p1_plan, 0, last=None)
    assert [(s.index, s.action, s.target) for s in steps] == [(0, "notify", "primary")]


def test_unacknowledged_p1_is_renotified_at_30s_then_escalated(p1_plan: EscalationPlan) -> None:
    assert due(p1_plan, 29, last=0) == []
    assert due(p1_plan, 29.999, last=0) == []
    at_30 = due(p1_plan, 30, last=0)
    assert [(s.action, s.target) for s in at_30] == [("re_notify", "primary")]
    assert {r.kind for r in at_30[0].recipients} == {"police_unit", "vt_desk"}
    assert due(p1_plan, 44, last=1) == []
    at_45 = due(p1_plan, 45, last=1)
    assert [(s.action, s.target) for s in at_45] == [("escalate", "desk_supervisor")]
    assert [(r.kind, r.code) for r in at_45[0].recipients] == [("desk_supervisor", "VT4607")]
    at_60 = due(p1_plan, 60, last=2)
    assert [(s.action, s.target) for s in at_60] == [("escalate", "police_unit")]
    assert [(r.kind, r.code) for r in at_60[0].recipients] == [("police_unit", "RE07")]
    assert "directly" in at_60[0].recipients[0].reason
    assert due(p1_plan, 3600, last=3) == []


def test_a_late_loop_gets_every_overdue_step_in_order(p1_plan: EscalationPlan) -> None:
    steps = due(p1_plan, 75, last=0)
    assert [s.index for s in steps] == [1, 2, 3]


def test_a_done_step_is_not_repeated(p1_plan: EscalationPlan) -> None:
    assert due(p1_plan, 31, last=1) == []


def test_acknowledgement_stops_the_chain(p1_plan: EscalationPlan) -> None:
    assert due(p1_plan, 29, last=0, ack=20) == []
    assert due(p1_plan, 60, last=0, ack=20) == []
    # An acknowledgement recorded for later than `now` does not count yet.
    assert [s.index for s in due(p1_plan, 30, last=0, ack=40)] == [1]


def test_acknowledged_but_unresolved_re_alerts_after_the_configured_time(
    p1_plan: EscalationPlan,
) -> None:
    period = p1_plan.realert_after_seconds
    assert period == 600
    chain = len(p1_plan.steps)
    assert due(p1_plan, 20 + period - 1, last=0, ack=20) == []
    first = due(p1_plan, 20 + period, last=0, ack=20)
    assert [(s.index, s.action, s.target) for s in first] == [(chain, "re_alert", "primary")]
    assert first[0].after_seconds == 20 + period
    assert {r.kind for r in first[0].recipients} == {"police_unit", "vt_desk"}
    # Done: nothing until the next period, then again.
    assert due(p1_plan, 20 + period + 1, last=chain, ack=20) == []
    second = due(p1_plan, 20 + 2 * period, last=chain, ack=20)
    assert [s.index for s in second] == [chain + 1]


def test_several_overdue_re_alerts_collapse_into_the_latest(p1_plan: EscalationPlan) -> None:
    chain = len(p1_plan.steps)
    steps = due(p1_plan, 20 + 3 * 600 + 5, last=0, ack=20)
    assert [s.index for s in steps] == [chain + 2]


def test_resolved_alert_has_nothing_due(p1_plan: EscalationPlan) -> None:
    assert due(p1_plan, 60, last=0, resolved=10) == []
    assert due(p1_plan, 5000, last=0, ack=5, resolved=100) == []


def test_p4_never_re_alerts(case: CaseFacts, rotterdam: RegionMatch, policy: Policy) -> None:
    plan = route(AlertFacts("test", T0), case, rotterdam, policy, T0).escalation
    assert plan.realert_after_seconds is None
    assert due(plan, 0, last=None)[0].action == "notify"
    assert due(plan, 10_000, last=0) == []
    assert due(plan, 10_000, last=0, ack=5) == []


def test_re_alert_time_is_configurable(
    case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    chain = policy.escalation["P1"].model_copy(update={"realert_unresolved_after_s": 120})
    faster = policy.model_copy(update={"escalation": {**policy.escalation, "P1": chain}})
    plan = route(AlertFacts("panic", T0), case, rotterdam, faster, T0).escalation
    assert due(plan, 10 + 119, last=0, ack=10) == []
    assert [s.action for s in due(plan, 10 + 120, last=0, ack=10)] == ["re_alert"]


def test_next_escalation_at_schedules_the_loop(p1_plan: EscalationPlan) -> None:
    assert next_escalation_at(p1_plan, T0, None, None, None) == at(0)
    assert next_escalation_at(p1_plan, T0, None, None, 0) == at(30)
    assert next_escalation_at(p1_plan, T0, None, None, 3) is None
    assert next_escalation_at(p1_plan, T0, at(20), None, 0) == at(620)
    assert next_escalation_at(p1_plan, T0, at(20), None, len(p1_plan.steps)) == at(1220)
    assert next_escalation_at(p1_plan, T0, at(20), at(30), 0) is None
