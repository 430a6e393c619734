"""Delivery windows and late outcomes, with a scripted sender and a fake clock on SQLite: a
replay's retries count from the first again, and an attempt that ends after its delivery was
replayed or taken over by another worker changes nothing but the delivery log."""

from __future__ import annotations

import uuid
from datetime import timedelta

from backend.alerts.models import Alert, AlertEvent
from backend.police.attempt import AttemptResult, ErrorKind
from backend.subscriptions import flows, service
from backend.subscriptions.models import Delivery
from backend.subscriptions.worker import SUPERSEDED, DeliveryWorker, WorkerConfig

from .test_worker import POLICY, T0, Clock, RecordingBus, ScriptedSender, _seed

FAIL = AttemptResult(None, 3.0, error=ErrorKind.CONNECT)
OK = AttemptResult(200, 1.0)


def _worker(sessions, clock: Clock, results: list[AttemptResult] = ()) -> DeliveryWorker:
    return DeliveryWorker(sessions, ScriptedSender(list(results)), RecordingBus(),
                          WorkerConfig(policy=POLICY, claim_lease_s=30.0), clock=clock)


def _delivery(sessions, alert_id: uuid.UUID) -> Delivery:
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        return d


def _log(sessions, delivery_id: uuid.UUID) -> list[tuple[int, int | None, str]]:
    with sessions() as s:
        return [(a.number, a.status, a.outcome) for a in service.attempts_of(s, delivery_id)]


def _police_delivery(sessions, alert_id: uuid.UUID) -> str | None:
    with sessions() as s:
        return s.get(Alert, alert_id).police_delivery


def _replay(sessions, delivery_id: uuid.UUID, at) -> None:
    with sessions.begin() as s:
        flows.replay_delivery(s, delivery_id, "admin", ("P1", "P2"), now=at)


def test_a_replay_retries_after_the_first_backoff_again(sessions):
    """Three attempts ran the window out (backoffs 1 s and 2 s); after the replay the first
    failure waits the first backoff (1 s), not the fourth (4 s). `attempts` keeps counting
    every HTTP attempt."""
    alert_id = _seed(sessions)
    clock = Clock()
    worker = _worker(sessions, clock, [FAIL, FAIL, FAIL, FAIL])
    for at in (0, 1, 3):
        clock.now = T0 + timedelta(seconds=at)
        assert worker.run_once() == 1
    d = _delivery(sessions, alert_id)
    assert (d.state, d.attempts) == ("unreachable", 3)

    replayed_at = T0 + timedelta(seconds=10)
    _replay(sessions, d.id, replayed_at)
    clock.now = replayed_at
    assert worker.run_once() == 1
    d = _delivery(sessions, alert_id)
    assert (d.state, d.attempts) == ("retrying", 4)
    assert d.next_attempt_at == replayed_at + timedelta(seconds=1)
    assert [n for n, _status, _outcome in _log(sessions, d.id)] == [1, 2, 3, 4]


def test_a_replay_keeps_the_police_not_reached_warning_until_it_gets_through(sessions):
    """A replayed unreachable delivery is pending again, but the police have not been reached
    yet: the alert stays `unreachable` while the replay is attempted, fails again, and is
    attempted again; once it gets through the alert is `delivered`, and a replay of the
    delivered message raises no warning."""
    alert_id = _seed(sessions)
    clock = Clock()
    worker = _worker(sessions, clock, [FAIL, FAIL, FAIL, FAIL, FAIL, FAIL, OK])
    for at in (0, 1, 3):
        clock.now = T0 + timedelta(seconds=at)
        worker.run_once()
    assert _police_delivery(sessions, alert_id) == "unreachable"

    _replay(sessions, _delivery(sessions, alert_id).id, T0 + timedelta(seconds=10))
    d = _delivery(sessions, alert_id)
    assert (d.state, d.replayed_failure) == ("pending", "unreachable")
    assert _police_delivery(sessions, alert_id) == "unreachable"
    for at in (10, 11, 13):  # the replay's window runs out: unreachable again
        clock.now = T0 + timedelta(seconds=at)
        worker.run_once()
        assert _police_delivery(sessions, alert_id) == "unreachable"
    assert _delivery(sessions, alert_id).state == "unreachable"

    _replay(sessions, d.id, T0 + timedelta(seconds=20))
    clock.now = T0 + timedelta(seconds=20)
    worker.run_once()
    d = _delivery(sessions, alert_id)
    assert (d.state, d.replayed_failure) == ("delivered", None)
    assert _police_delivery(sessions, alert_id) == "delivered"

    _replay(sessions, d.id, T0 + timedelta(seconds=30))
    d = _delivery(sessions, alert_id)
    assert (d.state, d.replayed_failure) == ("pending", None)
    assert _police_delivery(sessions, alert_id) == "pending"


def test_a_late_outcome_after_a_takeover_does_not_undo_the_delivery(sessions):
    """Attempt 1 hangs past its lease; another worker takes the row over and delivers; then
    attempt 1 ends in a failure past the deadline. The delivery stays delivered."""
    alert_id = _seed(sessions)
    clock = Clock()
    worker = _worker(sessions, clock)
    [stuck] = worker._claim()
    clock.now = T0 + timedelta(seconds=31)  # the lease ran out
    [taken_over] = worker._claim()
    assert (stuck.attempt, taken_over.attempt) == (1, 2)
    worker._record(taken_over, OK)
    clock.now = T0 + timedelta(seconds=40)
    worker._record(stuck, AttemptResult(None, 40_000.0, error=ErrorKind.TIMEOUT))

    d = _delivery(sessions, alert_id)
    assert (d.state, d.last_status) == ("delivered", 200)
    assert _police_delivery(sessions, alert_id) == "delivered"
    assert _log(sessions, d.id) == [(2, 200, "delivered"), (1, None, SUPERSEDED)]


def test_a_late_outcome_after_a_replay_does_not_undo_the_new_window(sessions):
    """Attempt 1 is in flight when the delivery is replayed. Its outcome, whether it comes
    before or after the new window's first attempt, is not applied."""
    alert_id = _seed(sessions)
    clock = Clock()
    worker = _worker(sessions, clock, [OK])
    [in_flight] = worker._claim()
    replayed_at = T0 + timedelta(seconds=1)
    _replay(sessions, in_flight.delivery_id, replayed_at)

    clock.now = T0 + timedelta(seconds=2)
    worker._record(in_flight, AttemptResult(503, 2.0))  # before the new window's attempt
    d = _delivery(sessions, alert_id)
    assert (d.state, d.window_start, d.next_attempt_at) == ("pending", replayed_at, replayed_at)

    assert worker.run_once() == 1  # the new window's first attempt: delivered
    clock.now = T0 + timedelta(seconds=9)  # past the first window's deadline
    worker._record(in_flight, AttemptResult(None, 9_000.0, error=ErrorKind.TIMEOUT))
    d = _delivery(sessions, alert_id)
    assert d.state == "delivered"
    assert _police_delivery(sessions, alert_id) == "delivered"
    assert _log(sessions, d.id) == [
        (1, 503, SUPERSEDED), (2, 200, "delivered"), (1, None, SUPERSEDED)]


# -- the sweep: deliveries whose attempt never ended ----------------------------------------------

def test_the_sweep_ends_a_delivery_whose_attempt_never_ended(sessions):
    """Attempt 1 never ends (its receiver hangs, or its worker died). Once the deadline (5 s)
    and the claim lease (30 s) have passed, the sweep makes the delivery unreachable with the
    outcome path's log entry, timeline entry and console notice; the stuck attempt's outcome,
    should it come after all, changes nothing."""
    alert_id = _seed(sessions)
    clock = Clock()
    worker = _worker(sessions, clock)
    [stuck] = worker._claim()
    clock.now = T0 + timedelta(seconds=34.9)
    assert worker.sweep() == 0  # the attempt may still end within its lease
    clock.now = T0 + timedelta(seconds=35)
    assert worker.sweep() == 1
    assert worker.sweep() == 0  # ended once

    d = _delivery(sessions, alert_id)
    assert (d.state, d.claimed_until, d.next_attempt_at) == ("unreachable", None, None)
    assert "police not reached: phone the control room" in d.last_error
    with sessions() as s:
        [entry] = service.attempts_of(s, d.id)
        timeline = [e.detail for e in s.query(AlertEvent).filter_by(alert_id=alert_id)]
    assert (entry.number, entry.error, entry.outcome) == (1, "timeout", "unreachable")
    assert "no outcome within 5 s" in entry.reason
    assert [(t["attempt"], t["state"]) for t in timeline] == [(1, "unreachable")]
    assert _police_delivery(sessions, alert_id) == "unreachable"
    [event] = worker._bus.events
    assert event["notice"] == "police not reached: phone the control room"

    worker._record(stuck, OK)  # the attempt ends after all: the log keeps it
    assert _delivery(sessions, alert_id).state == "unreachable"
    assert [o for _n, _s, o in _log(sessions, d.id)] == ["unreachable", SUPERSEDED]


def test_the_sweep_leaves_deliveries_in_time_and_claims_that_hold(sessions):
    alert_id = _seed(sessions)
    clock = Clock()
    worker = _worker(sessions, clock)
    clock.now = T0 + timedelta(seconds=20)  # past the deadline, not past deadline + lease
    assert worker.sweep() == 0
    [late] = worker._claim()  # claimed late: its lease holds until t=50
    clock.now = T0 + timedelta(seconds=49)
    assert worker.sweep() == 0
    assert _delivery(sessions, alert_id).state == "pending"
    worker._record(late, FAIL)  # its own outcome: past the deadline, unreachable
    assert _delivery(sessions, alert_id).state == "unreachable"
    assert [o for _n, _s, o in _log(sessions, late.delivery_id)] == ["unreachable"]
