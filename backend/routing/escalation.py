"""Escalation timing: which steps of an escalation plan are due at `now`. Pure.

While nobody has acknowledged an alert, the plan's steps fall due at `raised_at + after_seconds`
(P1 by default: notify at once, re-notify at 30 s, then the desk supervisor, then the police unit
directly). Steps are identified by their index; the caller records the last one it carried out
and passes it back as `last_step_done` (None before the first notification). A caller that falls
behind gets every overdue step at once, in order: escalation is never skipped.

Once acknowledged, the chain stops; an alert that stays unresolved re-alerts every
`realert_after_seconds` after the acknowledgement. Re-alerts continue the step numbering after
the chain (the first re-alert has index `len(plan.steps)`); when several re-alerts are overdue
only the latest is returned. A resolved alert has nothing due.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from backend.routing.decision import EscalationPlan, EscalationStep
from backend.routing.facts import require_aware


def _happened(moment: datetime | None, now: datetime) -> bool:
    return moment is not None and moment <= now


def _realert(
    plan: EscalationPlan, raised_at: datetime, acknowledged_at: datetime, number: int
) -> EscalationStep:
    assert plan.realert_after_seconds is not None
    offset = (acknowledged_at - raised_at).total_seconds() + number * plan.realert_after_seconds
    return EscalationStep(
        index=len(plan.steps) - 1 + number,
        after_seconds=int(offset),
        action="re_alert",
        target=plan.realert_target,
        recipients=plan.realert_recipients,
    )


def escalation_due(
    plan: EscalationPlan,
    raised_at: datetime,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
    last_step_done: int | None,
    now: datetime,
) -> list[EscalationStep]:
    """The steps to carry out at `now`, in order (empty when nothing is due)."""
    for name, value in (
        ("raised_at", raised_at),
        ("acknowledged_at", acknowledged_at),
        ("resolved_at", resolved_at),
        ("now", now),
    ):
        require_aware(value, name)
    if _happened(resolved_at, now):
        return []
    done = -1 if last_step_done is None else last_step_done
    if not _happened(acknowledged_at, now):
        return [
            step
            for step in plan.steps
            if step.index > done and raised_at + timedelta(seconds=step.after_seconds) <= now
        ]
    assert acknowledged_at is not None
    if plan.realert_after_seconds is None:
        return []
    number = int((now - acknowledged_at).total_seconds() // plan.realert_after_seconds)
    if number < 1:
        return []
    step = _realert(plan, raised_at, acknowledged_at, number)
    return [step] if step.index > done else []


def next_escalation_at(
    plan: EscalationPlan,
    raised_at: datetime,
    acknowledged_at: datetime | None,
    resolved_at: datetime | None,
    last_step_done: int | None,
) -> datetime | None:
    """When the next step falls due (for scheduling the escalation loop), or None."""
    if resolved_at is not None:
        return None
    done = -1 if last_step_done is None else last_step_done
    if acknowledged_at is None:
        pending = [s for s in plan.steps if s.index > done]
        return raised_at + timedelta(seconds=pending[0].after_seconds) if pending else None
    if plan.realert_after_seconds is None:
        return None
    number = max(1, done - (len(plan.steps) - 1) + 1)
    return acknowledged_at + timedelta(seconds=number * plan.realert_after_seconds)
