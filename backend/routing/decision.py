"""What the router decides: priority, recipients and the escalation plan."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from backend.routing.policy import Priority, RecipientKind, StepAction

RegionSource = Literal["location", "home", "none"]


@dataclass(frozen=True, slots=True)
class Recipient:
    """One party to notify.

    `code` is a police unit or desk code, or a contact/device/person id; None when the case lacks
    it (the decision then carries a warning so the console can tell the operator to phone).
    For exercise alerts `exercise` is true, `code` is the test endpoint and `stands_in_for` the
    live code that was replaced.
    """

    kind: RecipientKind
    code: str | None
    reason: str
    exercise: bool = False
    stands_in_for: str | None = None


@dataclass(frozen=True, slots=True)
class EscalationStep:
    """One step of an escalation plan, `after_seconds` after the alert was raised."""

    index: int
    after_seconds: int
    action: StepAction
    target: str
    recipients: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class EscalationPlan:
    """The steps taken while nobody acknowledges the alert, and the re-alert of an acknowledged
    alert that stays unresolved (every `realert_after_seconds` after acknowledgement)."""

    priority: Priority
    steps: tuple[EscalationStep, ...]
    realert_after_seconds: int | None
    realert_target: str
    realert_recipients: tuple[Recipient, ...]


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    alert_type: str
    priority: Priority
    recipients: tuple[Recipient, ...]
    escalation: EscalationPlan
    first_escalation_deadline: datetime | None
    region_source: RegionSource
    police_unit: str | None
    vt_desk: str | None
    tightened: bool
    test: bool
    exercise: bool
    warnings: tuple[str, ...]

    def codes(self, kind: RecipientKind) -> list[str | None]:
        """The codes of the recipients of one kind, in order."""
        return [r.code for r in self.recipients if r.kind == kind]
