"""Custody release tightening: whether a case is in its tightened period after a release."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from backend.routing.facts import CaseFacts, require_aware
from backend.routing.policy import PRIORITIES, PartnerOrganisation, Policy, Priority


@dataclass(frozen=True, slots=True)
class CustodyTightening:
    """The effects in force while a case is tightened after the offender's release."""

    released_at: datetime
    until: datetime
    priority_steps_up: int
    notify_contacts: tuple[PartnerOrganisation, ...]
    report_interval_s: int


def custody_tightening(case: CaseFacts, policy: Policy, now: datetime) -> CustodyTightening | None:
    """The tightening in force at `now`, or None (in custody, no status, or the period is over).

    The period runs from `released_at` (inclusive) to `released_at + tightening_period`
    (exclusive). A release time in the future does not tighten yet.
    """
    require_aware(now, "now")
    released_at = case.custody.released_at
    if case.custody.state != "released" or released_at is None:
        return None
    if now < released_at:
        return None  # not released yet (and no sum with a date at the end of the range)
    config = policy.custody_release
    until = released_at + config.tightening_period
    if now >= until:
        return None
    return CustodyTightening(
        released_at=released_at,
        until=until,
        priority_steps_up=config.priority_steps_up,
        notify_contacts=config.notify_contacts,
        report_interval_s=config.report_interval_s,
    )


def raise_priority(priority: Priority, steps: int) -> Priority:
    """`steps` steps more urgent (P2 -> P1 for one step), never above P1."""
    return PRIORITIES[max(0, PRIORITIES.index(priority) - steps)]
