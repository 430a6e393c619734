"""The escalation plan and recipients of a routing decision as plain JSON, and back."""

from __future__ import annotations

from typing import Any

from backend.escalation.errors import BadStoredPlan
from backend.routing import EscalationPlan, EscalationStep, Recipient


def recipients_to_json(recipients: tuple[Recipient, ...]) -> list[dict[str, Any]]:
    return [
        {"kind": r.kind, "code": r.code, "reason": r.reason, "exercise": r.exercise,
         "stands_in_for": r.stands_in_for}
        for r in recipients
    ]


def recipients_from_json(data: list[dict[str, Any]]) -> tuple[Recipient, ...]:
    return tuple(Recipient(**r) for r in data)


def plan_to_json(plan: EscalationPlan) -> dict[str, Any]:
    return {
        "priority": plan.priority,
        "steps": [
            {"index": s.index, "after_seconds": s.after_seconds, "action": s.action,
             "target": s.target, "recipients": recipients_to_json(s.recipients)}
            for s in plan.steps
        ],
        "realert_after_seconds": plan.realert_after_seconds,
        "realert_target": plan.realert_target,
        "realert_recipients": recipients_to_json(plan.realert_recipients),
    }


def plan_from_json(data: dict[str, Any]) -> EscalationPlan:
    try:
        return EscalationPlan(
            priority=data["priority"],
            steps=tuple(
                EscalationStep(
                    index=s["index"],
                    after_seconds=s["after_seconds"],
                    action=s["action"],
                    target=s["target"],
                    recipients=recipients_from_json(s["recipients"]),
                )
                for s in data["steps"]
            ),
            realert_after_seconds=data["realert_after_seconds"],
            realert_target=data["realert_target"],
            realert_recipients=recipients_from_json(data["realert_recipients"]),
        )
    except (KeyError, TypeError) as exc:
        raise BadStoredPlan(f"stored escalation plan unreadable: {exc}") from None
