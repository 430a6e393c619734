"""The alert's aggregate police delivery state (`alerts.police_delivery`). Pure.

- `unreachable`: a delivery of an urgent alert failed (rejected, or not delivered by its
  deadline): the console shows "police not reached: phone the control room";
- `failed`: the same for a non-urgent alert (recorded, no call needed);
- `pending`: at least one delivery is still being attempted;
- `delivered`: every delivery got through;
- None: no subscription took the alert.

Only the newest message per subscription counts, by sequence and then escalation step (an
escalation has the sequence of the message it escalates, and comes after it): a later message
that got through supersedes an earlier one that failed (the receiver has the current state of the
alert).
"""

from __future__ import annotations

from collections.abc import Iterable

from backend.police.retry import POLICE_NOT_REACHED

__all__ = ["POLICE_NOT_REACHED", "aggregate"]


def aggregate(
    deliveries: Iterable[tuple[str, int, int, str]], priority: str, urgent: Iterable[str]
) -> str | None:
    """`deliveries`: (subscription key, sequence, escalation step, state) of one alert's
    delivery rows."""
    latest: dict[str, tuple[tuple[int, int], str]] = {}
    for key, sequence, step, state in deliveries:
        if key not in latest or (sequence, step) > latest[key][0]:
            latest[key] = ((sequence, step), state)
    states = {state for _, state in latest.values()}
    if not states:
        return None
    if states & {"rejected", "unreachable"}:
        return "unreachable" if priority in set(urgent) else "failed"
    if states & {"pending", "retrying"}:
        return "pending"
    return "delivered"
