"""The alert lifecycle as a pure decision: new -> acknowledged -> dispatched -> resolved, or
false_alarm / cancelled from any open state. Repeating a transition that already happened is a
no-op (idempotent); anything else out of order is refused.

A police system's reports (`already_reported`) are more lenient: it delivers at least once, so
an acknowledgement may come again after its dispatch report went through."""

from __future__ import annotations

import enum
from dataclasses import dataclass

OPEN_STATES = frozenset({"new", "acknowledged", "dispatched"})
CLOSED_STATES = frozenset({"resolved", "false_alarm", "cancelled"})

# action -> (states it may start from, state it leads to)
ACTIONS: dict[str, tuple[frozenset[str], str]] = {
    "acknowledge": (frozenset({"new"}), "acknowledged"),
    "dispatch": (frozenset({"new", "acknowledged"}), "dispatched"),
    "resolve": (OPEN_STATES, "resolved"),
    "false_alarm": (OPEN_STATES, "false_alarm"),
    "cancel": (OPEN_STATES, "cancelled"),
}

# What the victim's device is told for each alert state (protocol v1 ack states).
DEVICE_ACK_STATE = {
    "new": "received",
    "acknowledged": "acknowledged",
    "dispatched": "dispatched",
    "resolved": "resolved",
    "false_alarm": "cancelled",
    "cancelled": "cancelled",
}


class Outcome(enum.Enum):
    APPLY = "apply"
    NOOP = "noop"  # already there: idempotent repeat
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Decision:
    outcome: Outcome
    to_state: str


def decide(current: str, action: str) -> Decision:
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}")
    allowed_from, to_state = ACTIONS[action]
    if current == to_state:
        return Decision(Outcome.NOOP, to_state)
    if current in allowed_from:
        return Decision(Outcome.APPLY, to_state)
    return Decision(Outcome.INVALID, to_state)


def already_reported(action: str, acknowledged: bool, dispatched: bool) -> bool:
    """True when a police report (`acknowledge` or `dispatch`) is covered by what the alert went
    through: it was acknowledged or dispatched (a unit sent means the alert was taken on), or
    dispatched, whatever state it is in now. Such a report changes nothing; one that is not
    covered (a dispatch report for an alert resolved without one) is decided as usual."""
    if action == "acknowledge":
        return acknowledged or dispatched
    if action == "dispatch":
        return dispatched
    return False
