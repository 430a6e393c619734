"""The delivery policy: classification, backoff, Retry-After and the deadline."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from backend.police.attempt import AttemptResult, ErrorKind
from backend.police.retry import (
    POLICE_NOT_REACHED,
    DeliveryState,
    RetryPolicy,
    Verdict,
    backoff_s,
    classify,
    deadline,
    decide,
    expired,
    parse_retry_after,
)

T0 = datetime(2026, 11, 28, 18, 0, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_delay_s=0.5, factor=2.0, max_delay_s=10.0, jitter=0.25, deadline_s=60.0)


def status(code: int, retry_after: float | None = None) -> AttemptResult:
    return AttemptResult(code, 12.0, retry_after_s=retry_after)


def error(kind: ErrorKind) -> AttemptResult:
    return AttemptResult(None, 5.0, error=kind)


@pytest.mark.parametrize(
    ("result", "verdict"),
    [
        (status(200), Verdict.DELIVERED),
        (status(202), Verdict.DELIVERED),
        (status(204), Verdict.DELIVERED),
        (status(500), Verdict.RETRY),
        (status(502), Verdict.RETRY),
        (status(503), Verdict.RETRY),
        (status(429), Verdict.RETRY),
        (status(408), Verdict.RETRY),
        (status(400), Verdict.GIVE_UP),
        (status(401), Verdict.GIVE_UP),
        (status(404), Verdict.GIVE_UP),
        (status(410), Verdict.GIVE_UP),
        (status(307), Verdict.GIVE_UP),
        (error(ErrorKind.TIMEOUT), Verdict.RETRY),
        (error(ErrorKind.CONNECT), Verdict.RETRY),
        (error(ErrorKind.TRANSPORT), Verdict.RETRY),
        (error(ErrorKind.INVALID_REQUEST), Verdict.GIVE_UP),
    ],
)
def test_classify(result: AttemptResult, verdict: Verdict) -> None:
    assert classify(result) is verdict


def test_attempt_result_has_exactly_one_of_status_and_error() -> None:
    with pytest.raises(ValueError):
        AttemptResult(None, 1.0)
    with pytest.raises(ValueError):
        AttemptResult(503, 1.0, error=ErrorKind.TIMEOUT)


def test_backoff_grows_is_capped_and_jitter_is_bounded() -> None:
    for attempt in range(1, 12):
        nominal = min(0.5 * 2 ** (attempt - 1), 10.0)
        delay = backoff_s(attempt, POLICY, key="d-1")
        assert nominal * 0.75 <= delay <= nominal
    assert backoff_s(3, POLICY, "d-1") > backoff_s(1, POLICY, "d-1")
    assert backoff_s(100, POLICY, "d-1") <= 10.0


def test_backoff_jitter_is_reproducible_per_key_and_spread_over_keys() -> None:
    assert backoff_s(4, POLICY, "d-1") == backoff_s(4, POLICY, "d-1")
    spread = {backoff_s(4, POLICY, f"d-{n}") for n in range(20)}
    assert len(spread) > 10
    no_jitter = RetryPolicy(jitter=0.0)
    assert backoff_s(2, no_jitter, "a") == backoff_s(2, no_jitter, "b") == 1.0


def test_decide_delivered_and_rejected() -> None:
    ok = decide(status(200), attempt=1, created_at=T0, now=T0, policy=POLICY)
    assert ok.state is DeliveryState.DELIVERED and ok.next_attempt_at is None
    assert not ok.state.police_not_reached
    rejected = decide(status(400), attempt=1, created_at=T0, now=T0, policy=POLICY)
    assert rejected.state is DeliveryState.REJECTED
    assert rejected.next_attempt_at is None
    assert rejected.state.police_not_reached
    assert POLICE_NOT_REACHED in rejected.reason and "HTTP 400" in rejected.reason


def test_decide_retries_5xx_and_timeouts_with_backoff() -> None:
    now = T0 + timedelta(seconds=3)
    for result in (status(503), error(ErrorKind.TIMEOUT), error(ErrorKind.CONNECT)):
        decision = decide(result, attempt=2, created_at=T0, now=now, policy=POLICY, key="d-1")
        assert decision.state is DeliveryState.RETRYING
        assert decision.next_attempt_at == now + timedelta(seconds=backoff_s(2, POLICY, "d-1"))


def test_retry_after_is_honoured_within_bounds() -> None:
    asked = decide(status(503, retry_after=7), attempt=1, created_at=T0, now=T0, policy=POLICY)
    assert asked.next_attempt_at == T0 + timedelta(seconds=7)
    greedy = decide(status(429, retry_after=3600), attempt=1, created_at=T0, now=T0, policy=POLICY)
    assert greedy.state is DeliveryState.RETRYING
    assert greedy.next_attempt_at == T0 + timedelta(seconds=POLICY.max_retry_after_s)
    zero = decide(status(429, retry_after=0), attempt=1, created_at=T0, now=T0, policy=POLICY)
    assert zero.next_attempt_at == T0 + timedelta(seconds=POLICY.min_delay_s)


def test_a_retry_that_would_miss_the_deadline_is_unreachable_now() -> None:
    now = T0 + timedelta(seconds=58)
    decision = decide(status(503), attempt=8, created_at=T0, now=now, policy=POLICY, key="d")
    assert decision.state is DeliveryState.UNREACHABLE
    assert decision.state.police_not_reached
    assert decision.next_attempt_at is None
    assert decision.reason.startswith(POLICE_NOT_REACHED)
    long_wait = decide(status(503, 40), attempt=1, created_at=T0, now=T0 + timedelta(seconds=25),
                       policy=RetryPolicy(max_retry_after_s=60.0))
    assert long_wait.state is DeliveryState.UNREACHABLE


def test_a_receiver_that_stays_down_ends_unreachable_within_the_deadline() -> None:
    now, attempt, decision = T0, 1, None
    while True:
        decision = decide(error(ErrorKind.CONNECT), attempt=attempt, created_at=T0, now=now,
                          policy=POLICY, key="d-9")
        if decision.next_attempt_at is None:
            break
        assert decision.next_attempt_at < deadline(T0, POLICY)
        now, attempt = decision.next_attempt_at, attempt + 1
    assert decision.state is DeliveryState.UNREACHABLE
    assert now <= deadline(T0, POLICY)
    assert attempt >= 6  # backoff 0.5, 1, 2, 4, 8, 10, ... still fits several tries in 60 s


def test_expired_and_deadline() -> None:
    assert deadline(T0, POLICY) == T0 + timedelta(seconds=60)
    assert not expired(T0, T0 + timedelta(seconds=59.9), POLICY)
    assert expired(T0, T0 + timedelta(seconds=60), POLICY)


def test_parse_retry_after() -> None:
    now = datetime(2015, 10, 21, 7, 27, 0, tzinfo=UTC)
    assert parse_retry_after("120", now) == 120.0
    assert parse_retry_after(" 5 ", now) == 5.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now) == 60.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:00:00 GMT", now) == 0.0
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after("-3", now) is None
    assert parse_retry_after(None, now) is None


def test_policy_refuses_nonsense() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.0)
    with pytest.raises(ValueError):
        RetryPolicy(base_delay_s=20.0, max_delay_s=10.0)
    with pytest.raises(ValueError):
        RetryPolicy(deadline_s=0)
