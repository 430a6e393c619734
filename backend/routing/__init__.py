"""Routing: which alert goes to whom, at what priority, and how it escalates.

Pure decisions over a policy in configuration (`policy.yaml`, region overrides keyed by safety
region or police unit):

- `policy`: the pydantic models, `load_policy()`, `Policy.rules_for(vr, police_unit)`.
- `facts`: `AlertFacts`, `CaseFacts`, `Contact`, `CustodyStatus` (the inputs).
- `decision`: `RoutingDecision`, `Recipient`, `EscalationPlan`, `EscalationStep` (the outputs).
- `route`: `route(alert, case, region, policy, now) -> RoutingDecision`.
- `escalation`: `escalation_due(plan, raised_at, acknowledged_at, resolved_at, last_step_done,
  now)` and `next_escalation_at(...)`.
- `custody`: `custody_tightening(case, policy, now)` (also used for device configuration).
- `errors`: the error tree.
"""

from backend.routing.custody import (
    CustodyTightening,
    custody_tightening,
    raise_priority,
)
from backend.routing.decision import (
    EscalationPlan,
    EscalationStep,
    Recipient,
    RoutingDecision,
)
from backend.routing.errors import (
    InvalidFacts,
    PolicyError,
    RoutingError,
    UnknownAlertType,
)
from backend.routing.escalation import escalation_due, next_escalation_at
from backend.routing.facts import AlertFacts, CaseFacts, Contact, CustodyStatus
from backend.routing.policy import Policy, load_policy, parse_policy
from backend.routing.route import route

__all__ = [
    "AlertFacts",
    "CaseFacts",
    "Contact",
    "CustodyStatus",
    "CustodyTightening",
    "EscalationPlan",
    "EscalationStep",
    "InvalidFacts",
    "Policy",
    "PolicyError",
    "Recipient",
    "RoutingDecision",
    "RoutingError",
    "UnknownAlertType",
    "custody_tightening",
    "escalation_due",
    "load_policy",
    "next_escalation_at",
    "parse_policy",
    "raise_priority",
    "route",
]
