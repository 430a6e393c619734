"""Where an alert's escalation stands, from its stored plan and last step: the chain's step by
its index, a re-alert past the chain, nothing for the first notification or an unreadable plan."""

from __future__ import annotations

from backend.escalation.last_step import last_step
from backend.escalation.plan_codec import plan_to_json
from backend.routing import EscalationPlan, EscalationStep

PLAN = plan_to_json(EscalationPlan(
    priority="P1",
    steps=(
        EscalationStep(0, 0, "notify", "primary", ()),
        EscalationStep(1, 30, "re_notify", "primary", ()),
        EscalationStep(2, 45, "escalate", "desk_supervisor", ()),
        EscalationStep(3, 60, "escalate", "police_unit", ()),
    ),
    realert_after_seconds=600,
    realert_target="vt_desk",
    realert_recipients=(),
))


def test_a_step_of_the_chain_by_its_index() -> None:
    assert last_step(PLAN, 1) == {"step": 1, "action": "re_notify", "target": "primary"}
    assert last_step(PLAN, 2) == {"step": 2, "action": "escalate", "target": "desk_supervisor"}
    assert last_step(PLAN, 3) == {"step": 3, "action": "escalate", "target": "police_unit"}


def test_past_the_chain_a_re_alert_of_the_plans_target() -> None:
    assert last_step(PLAN, 4) == {"step": 4, "action": "re_alert", "target": "vt_desk"}
    assert last_step(PLAN, 7) == {"step": 7, "action": "re_alert", "target": "vt_desk"}


def test_nothing_before_the_first_step_after_the_raise() -> None:
    assert last_step(PLAN, 0) is None
    assert last_step(PLAN, None) is None
    assert last_step(None, 2) is None


def test_an_unreadable_plan_is_nothing_to_mark() -> None:
    assert last_step({"priority": "P1"}, 2) is None
    assert last_step({**PLAN, "steps": [{"index": 1}]}, 1) is None
