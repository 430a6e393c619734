"""The alert's aggregate police delivery state (`alerts.police_delivery`). Pure.

- `unreachable`: a delivery of an urgent alert to a police system (a subscription not marked
  `partner`) failed (rejected, or not delivered by its deadline) and no later message to that
  subscription got through since: the console shows "police not reached: phone the control
  room";
- `failed`: the same for a non-urgent alert, or for a `partner` subscription (an archive, a
  partner organisation: no control room; recorded, no call needed);
- `pending`: at least one delivery is still being attempted;
- `delivered`: every delivery got through;
- None: no subscription took the alert.

The messages of a subscription are ordered by sequence and then escalation step (an escalation
has the sequence of the message it escalates, and comes after it). A later message that got
through supersedes an earlier one that failed (the receiver has the current state of the
alert); one still on its way does not: until it is delivered the police have not been reached,
and the warning stays. So does a replay of a failed message until it is delivered
(`replayed_state`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable

from backend.police.retry import POLICE_NOT_REACHED

__all__ = ["POLICE_NOT_REACHED", "aggregate", "replayed_state", "subscription_state"]

FAILED = frozenset({"rejected", "unreachable"})
OPEN = frozenset({"pending", "retrying"})


def subscription_state(messages: Iterable[tuple[tuple[int, int], str]]) -> str:
    """The state of one subscription from its messages ((sequence, step), state), in any
    order: the newest message's, except that a failure stands until a later message is
    delivered (a newer one still open leaves it failed)."""
    ordered = sorted(messages, key=lambda m: m[0])
    failure: str | None = None  # the latest failure not yet followed by a delivery
    for _, state in ordered:
        if state in FAILED:
            failure = state
        elif state == "delivered":
            failure = None
    newest = ordered[-1][1]
    return failure if failure is not None and newest in OPEN else newest


def replayed_state(state: str, replayed_failure: str | None) -> str:
    """A delivery's state as it counts here: a replay of a failed delivery still being
    attempted is still that failure (`Delivery.replayed_failure`)."""
    if replayed_failure is not None and state in OPEN:
        return replayed_failure
    return state


def aggregate(
    deliveries: Iterable[tuple[str, int, int, str]], priority: str, urgent: Iterable[str],
    partners: Collection[str] = frozenset(),
) -> str | None:
    """`deliveries`: (subscription key, sequence, escalation step, state) of one alert's
    delivery rows; `partners`: the keys of the `partner` subscriptions among them."""
    messages: dict[str, list[tuple[tuple[int, int], str]]] = {}
    for key, sequence, step, state in deliveries:
        messages.setdefault(key, []).append(((sequence, step), state))
    by_key = {key: subscription_state(m) for key, m in messages.items()}
    if not by_key:
        return None
    failed = {key for key, state in by_key.items() if state in FAILED}
    if failed - set(partners) and priority in set(urgent):
        return "unreachable"
    if failed:
        return "failed"
    if set(by_key.values()) & OPEN:
        return "pending"
    return "delivered"
