"""Where an alert's escalation stands, as the console marks it: the last step carried out after
the first notification (`escalation` of the API's alert document). Pure."""

from __future__ import annotations

from typing import Any

from backend.escalation.errors import BadStoredPlan
from backend.escalation.plan_codec import plan_from_json


def last_step(plan: dict[str, Any] | None, step_index: int | None) -> dict[str, Any] | None:
    """`{"step", "action", "target"}` of the stored plan's step `step_index` (the alert's
    `escalation_step`), a re-alert for an index past the chain (`re_alert`, the plan's
    `realert_target`); None for the first notification (index 0, carried out at the raise),
    for an alert without a plan, and for a plan that cannot be read back (the escalation loop
    logs that one when it looks at the alert)."""
    if plan is None or step_index is None or step_index < 1:
        return None
    try:
        decoded = plan_from_json(plan)
    except BadStoredPlan:
        return None
    for step in decoded.steps:
        if step.index == step_index:
            return {"step": step.index, "action": step.action, "target": step.target}
    if step_index >= len(decoded.steps):
        return {"step": step_index, "action": "re_alert", "target": decoded.realert_target}
    return None
