"""The webhook delivery policy, as pure functions of an attempt's outcome and the time.

- `classify(result)`: a 2xx is DELIVERED; timeouts, connection and transport errors, 5xx, 408 and
  429 are RETRY; every other status (other 4xx, 3xx: redirects are not followed, since a signed
  alert must not be sent on to another host) and a request that cannot be sent are GIVE_UP.
- `backoff_s(attempt, policy, key)`: exponential backoff `base * factor**(attempt-1)` capped at
  `max_delay_s`, minus a jitter of up to `jitter` of it. The jitter is seeded by `key` (the
  delivery id) and the attempt number, so the schedule is reproducible yet spread over deliveries.
- A Retry-After from the receiver (429/503) is honoured within `[min_delay_s, max_retry_after_s]`.
- `decide(...)`: the delivery's next state. A delivery has until `created_at + deadline_s` to get
  through. When the next attempt would fall at or after the deadline, the state is UNREACHABLE at
  once ("police not reached: phone the control room") rather than after one more wait; GIVE_UP
  makes it REJECTED. Both end automatic attempts; a replay starts a new delivery window.
- `overdue_before(...)`, `overdue(policy)`: a delivery still open `grace_s` (the claim lease)
  after its deadline had an attempt that never ended; the sweep makes it UNREACHABLE.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from enum import StrEnum

from backend.police.attempt import AttemptResult, ErrorKind

POLICE_NOT_REACHED = "police not reached: phone the control room"
RETRY_STATUSES = frozenset({408, 429})


class Verdict(StrEnum):
    DELIVERED = "delivered"
    RETRY = "retry"
    GIVE_UP = "give_up"


class DeliveryState(StrEnum):
    DELIVERED = "delivered"
    RETRYING = "retrying"  # another attempt is scheduled at `next_attempt_at`
    REJECTED = "rejected"  # the receiver refused it (4xx) or the request cannot be sent
    UNREACHABLE = "unreachable"  # not delivered within the deadline

    @property
    def police_not_reached(self) -> bool:
        """The console must tell the operator to phone the control room."""
        return self in (DeliveryState.REJECTED, DeliveryState.UNREACHABLE)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    base_delay_s: float = 0.5
    factor: float = 2.0
    max_delay_s: float = 10.0
    jitter: float = 0.25  # fraction of the delay taken off at most, in [0, 1)
    min_delay_s: float = 0.2
    max_retry_after_s: float = 30.0
    deadline_s: float = 60.0

    def __post_init__(self) -> None:
        if not 0.0 <= self.jitter < 1.0:
            raise ValueError("jitter is a fraction in [0, 1)")
        if not 0.0 < self.min_delay_s <= self.base_delay_s <= self.max_delay_s:
            raise ValueError("need 0 < min_delay_s <= base_delay_s <= max_delay_s")
        if self.factor < 1.0 or self.deadline_s <= 0 or self.max_retry_after_s < self.min_delay_s:
            raise ValueError("need factor >= 1, deadline_s > 0, max_retry_after_s >= min_delay_s")


@dataclass(frozen=True, slots=True)
class Decision:
    state: DeliveryState
    next_attempt_at: datetime | None
    reason: str


def classify(result: AttemptResult) -> Verdict:
    if result.error is not None:
        return Verdict.GIVE_UP if result.error is ErrorKind.INVALID_REQUEST else Verdict.RETRY
    status = result.status or 0
    if 200 <= status < 300:
        return Verdict.DELIVERED
    if status >= 500 or status in RETRY_STATUSES:
        return Verdict.RETRY
    return Verdict.GIVE_UP


def _unit(key: str, attempt: int) -> float:
    digest = hashlib.blake2b(f"{key}:{attempt}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def backoff_s(attempt: int, policy: RetryPolicy, key: str = "") -> float:
    """The wait after failed attempt number `attempt` (1-based), jittered and bounded."""
    if attempt < 1:
        raise ValueError("attempt numbers start at 1")
    exponent = min(attempt - 1, 64)
    delay = min(policy.base_delay_s * policy.factor**exponent, policy.max_delay_s)
    delay *= 1.0 - policy.jitter * _unit(key, attempt)
    return max(delay, policy.min_delay_s)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Retry-After (delta-seconds or HTTP-date) in seconds from `now`; None when absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        return None
    return max((when - now).total_seconds(), 0.0)


def deadline(created_at: datetime, policy: RetryPolicy) -> datetime:
    return created_at + timedelta(seconds=policy.deadline_s)


def expired(created_at: datetime, now: datetime, policy: RetryPolicy) -> bool:
    """True when a still-pending delivery has run out of time."""
    return now >= deadline(created_at, policy)


def overdue_before(now: datetime, policy: RetryPolicy, grace_s: float) -> datetime:
    """Open deliveries whose window started at or before this are overdue: expired `grace_s`
    ago or longer (the claim lease, the longest an attempt may hold a delivery)."""
    return now - timedelta(seconds=policy.deadline_s + grace_s)


def overdue(policy: RetryPolicy) -> Decision:
    """The state of an overdue delivery: its attempt never ended (it hangs, or its worker is
    gone), so the police were not reached in time."""
    return Decision(
        DeliveryState.UNREACHABLE, None,
        f"{POLICE_NOT_REACHED} (no outcome within {policy.deadline_s:g} s)",
    )


def _describe(result: AttemptResult) -> str:
    return f"HTTP {result.status}" if result.status is not None else str(result.error)


def decide(
    result: AttemptResult,
    *,
    attempt: int,
    created_at: datetime,
    now: datetime,
    policy: RetryPolicy = RetryPolicy(),
    key: str = "",
) -> Decision:
    """The delivery's state after attempt number `attempt` ended at `now` with `result`."""
    verdict = classify(result)
    what = _describe(result)
    if verdict is Verdict.DELIVERED:
        return Decision(DeliveryState.DELIVERED, None, f"delivered ({what})")
    if verdict is Verdict.GIVE_UP:
        return Decision(DeliveryState.REJECTED, None, f"{POLICE_NOT_REACHED} (rejected: {what})")
    delay = backoff_s(attempt, policy, key)
    if result.retry_after_s is not None:
        delay = min(max(result.retry_after_s, policy.min_delay_s), policy.max_retry_after_s)
    next_at = now + timedelta(seconds=delay)
    if next_at >= deadline(created_at, policy):
        return Decision(
            DeliveryState.UNREACHABLE,
            None,
            f"{POLICE_NOT_REACHED} (no delivery within {policy.deadline_s:g} s; last: {what})",
        )
    return Decision(DeliveryState.RETRYING, next_at, f"retry after {what} in {delay:.2f} s")
