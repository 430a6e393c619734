"""The delivery worker with a scripted sender and a fake clock, on SQLite: the policy's states,
the delivery log, and the console event "police not reached" once the deadline has passed."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.fernet import Fernet

from backend.alerts.models import Alert
from backend.police import signing
from backend.police.attempt import AttemptResult, ErrorKind
from backend.police.retry import RetryPolicy
from backend.police.sealing import SecretBox
from backend.subscriptions import service
from backend.subscriptions.models import Delivery, Subscription
from backend.subscriptions.worker import DeliveryWorker, WorkerConfig

T0 = datetime(2026, 11, 28, 18, 0, tzinfo=UTC)
POLICY = RetryPolicy(base_delay_s=1.0, max_delay_s=4.0, min_delay_s=0.5, jitter=0.0,
                     deadline_s=5.0)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> datetime:
        return self.now


class ScriptedSender:
    def __init__(self, results: list[AttemptResult]) -> None:
        self.results = list(results)
        self.sent: list[dict[str, str]] = []

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        self.sent.append(dict(headers))
        return self.results.pop(0)


class RecordingBus:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def publish(self, event: dict[str, Any]) -> None:
        self.events.append(event)


def _seed(sessions, priority: str = "P1", secret: str = "whsec_" + "A" * 43 + "=") -> uuid.UUID:
    with sessions.begin() as s:
        alert = Alert(id=uuid.uuid4(), type="panic", priority=priority, state="new", sequence=1,
                      raised_at=T0, updated_at=T0, flags=[], exercise=False)
        sub = Subscription(id=uuid.uuid4(), name="p", url="http://127.0.0.1:9/x",
                           secret=secret, format="json")
        s.add_all([alert, sub])
        s.flush()
        s.add(Delivery(id=uuid.uuid4(), subscription_id=sub.id, alert_id=alert.id, sequence=1,
                       priority=priority, format="json", body=b"{}", state="pending",
                       attempts=0, created_at=T0, window_start=T0, next_attempt_at=T0))
        return alert.id


def _worker(sessions, results, clock, bus) -> tuple[DeliveryWorker, ScriptedSender]:
    sender = ScriptedSender(results)
    return DeliveryWorker(sessions, sender, bus, WorkerConfig(policy=POLICY),
                          clock=clock), sender


def test_retries_until_deadline_then_police_not_reached(sessions):
    alert_id = _seed(sessions)
    clock, bus = Clock(), RecordingBus()
    fail = AttemptResult(None, 3.0, error=ErrorKind.CONNECT)
    worker, sender = _worker(sessions, [fail, AttemptResult(503, 2.0), fail], clock, bus)

    assert worker.run_once() == 1  # t=0: fails, retry after 1 s
    assert worker.run_once() == 0  # not due yet
    clock.now = T0 + timedelta(seconds=1)
    assert worker.run_once() == 1  # t=1: 503, retry after 2 s (t=3)
    clock.now = T0 + timedelta(seconds=3)
    assert worker.run_once() == 1  # t=3: fails; next would be t=7 > deadline t=5
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        log = service.attempts_of(s, d.id)
        alert = s.get(Alert, alert_id)
    assert d.state == "unreachable" and d.attempts == 3 and d.next_attempt_at is None
    assert [(a.status, a.error, a.outcome) for a in log] == [
        (None, "connect", "retrying"), (503, None, "retrying"), (None, "connect", "unreachable")]
    assert alert.police_delivery == "unreachable"
    assert len({h["webhook-id"] for h in sender.sent}) == 1  # the same id on every attempt
    [event] = [e for e in bus.events if e.get("notice")]
    assert event["event"] == "alert.updated"
    assert event["notice"] == "police not reached: phone the control room"
    assert event["alert"]["police_delivery"] == "unreachable"
    assert event["scope"]["case_id"] is None  # scope carried (this alert has no case)


def test_a_4xx_is_not_retried(sessions):
    alert_id = _seed(sessions, priority="P3")
    clock, bus = Clock(), RecordingBus()
    worker, sender = _worker(sessions, [AttemptResult(410, 1.0)], clock, bus)
    assert worker.run_once() == 1
    clock.now = T0 + timedelta(seconds=4)
    assert worker.run_once() == 0
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        alert = s.get(Alert, alert_id)
    assert d.state == "rejected" and len(sender.sent) == 1
    assert alert.police_delivery == "failed"  # not urgent: recorded, no phone call
    assert not any(e.get("notice") for e in bus.events)


def test_a_secret_no_key_opens_fails_its_delivery_not_the_worker(sessions):
    sealed = SecretBox([Fernet.generate_key().decode()]).seal(signing.new_secret())
    alert_id = _seed(sessions, secret=sealed)
    clock, bus = Clock(), RecordingBus()
    sender = ScriptedSender([AttemptResult(200, 1.0)])
    worker = DeliveryWorker(sessions, sender, bus, WorkerConfig(policy=POLICY), clock=clock,
                            secrets=SecretBox([Fernet.generate_key().decode()]))
    assert worker.run_once() == 1
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        [attempt] = service.attempts_of(s, d.id)
    assert sender.sent == []  # nothing unsigned leaves
    assert d.state == "rejected" and attempt.error == "invalid_request"
    assert worker.run_once() == 0  # not retried: the key has to be put right


def test_a_sealed_secret_is_opened_to_sign(sessions):
    secret = signing.new_secret()
    box = SecretBox([Fernet.generate_key().decode()])
    _seed(sessions, secret=box.seal(secret))
    sender = ScriptedSender([AttemptResult(200, 1.0)])
    clock = Clock()
    clock.now = datetime.now(UTC)  # the receiver checks the signature's timestamp
    worker = DeliveryWorker(sessions, sender, RecordingBus(), WorkerConfig(policy=POLICY),
                            clock=clock, secrets=box)
    assert worker.run_once() == 1
    [headers] = sender.sent
    signing.verify(secret, headers, b"{}")  # raises unless signed with the secret in clear


def test_a_claimed_row_is_not_claimed_twice(sessions):
    _seed(sessions)
    with sessions.begin() as s:
        first = service.claim_due(s, T0, 10, lease_s=30)
    with sessions.begin() as s:
        second = service.claim_due(s, T0 + timedelta(seconds=1), 10, lease_s=30)
    with sessions.begin() as s:
        after_lease = service.claim_due(s, T0 + timedelta(seconds=31), 10, lease_s=30)
    assert (len(first), len(second), len(after_lease)) == (1, 0, 1)


# -- the fast path: deliveries claimed in the alert's transaction, sent right after its commit --

class _Flow:
    def __init__(self) -> None:
        self.hooks: list[Any] = []


class ThreadNotingSender(ScriptedSender):
    """Notes which thread sent: a round sends a single due row from the worker's own thread
    ("webhooks"), the fast path from the pool ("webhook_0")."""

    def __init__(self, results: list[AttemptResult]) -> None:
        super().__init__(results)
        self.threads: list[str] = []

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        import threading

        self.threads.append(threading.current_thread().name)
        return super().send(url, body, headers)


def _fast_path(sessions, results):
    from backend.settings import PoliceSettings
    from backend.subscriptions.wiring import install

    sender = ThreadNotingSender(results)
    flow = _Flow()
    worker, _ = install(PoliceSettings(poll_interval_s=60.0), sessions, flow, RecordingBus(),
                        sender=sender)
    with sessions.begin() as s:
        s.add(Subscription(id=uuid.uuid4(), name="p", url="http://127.0.0.1:9/x",
                           secret="whsec_" + "A" * 43 + "=", format="json"))
    return worker, sender, flow.hooks[0]


def _raise_in(sessions, hook, info: dict | None = None) -> tuple[uuid.UUID, dict]:
    """A new alert through the hook, in a transaction of `sessions` whose `info` starts with
    `info`: its id, and the session's `info` as the transaction ends."""
    from backend.alerts.document import alert_document
    from backend.alerts.flows import Effects

    now = datetime.now(UTC)
    with sessions.begin() as s:
        s.info.update(info or {})
        alert = Alert(id=uuid.uuid4(), type="panic", priority="P1", state="new", sequence=1,
                      raised_at=now, updated_at=now, flags=[], exercise=False,
                      police_unit="RE07")
        s.add(alert)
        s.flush()
        hook.after_change(s, alert, alert_document(alert, device_role="victim"), Effects())
        return alert.id, dict(s.info)


def _raise(sessions, hook) -> tuple[uuid.UUID, list]:
    """A new alert through the hook: its id, and the jobs the hook claimed for the fast path
    (handed to the worker at the commit)."""
    from backend.subscriptions.hook import JOBS_KEY

    alert_id, info = _raise_in(sessions, hook)
    return alert_id, list(info.get(JOBS_KEY, []))


def _delivery(sessions, alert_id) -> Delivery:
    with sessions() as s:
        [d] = service.deliveries_of(s, alert_id)
        return d


def _delivered_after_a_raise(worker, sessions, hook, timeout_s: float) -> Delivery:
    """Start the worker, let its first round find nothing (the next is in 60 s), raise one
    alert and wait until its delivery is delivered or `timeout_s` has passed: the row."""
    worker.start()
    try:
        time.sleep(0.2)
        alert_id, _jobs = _raise(sessions, hook)
        deadline = time.monotonic() + timeout_s
        while _delivery(sessions, alert_id).state != "delivered" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    return _delivery(sessions, alert_id)


def test_a_running_worker_sends_at_commit_without_waiting_for_a_round(sessions):
    import time

    worker, sender, hook = _fast_path(sessions, [AttemptResult(204, 1.0)])
    d = _delivered_after_a_raise(worker, sessions, hook, timeout_s=5)
    assert (d.state, d.attempts, len(sender.sent)) == ("delivered", 1, 1)
    assert sender.sent[0]["webhook-id"] == d.webhook_id
    assert sender.threads == ["webhook_0"]  # sent by the fast path, not by a round


def test_a_failed_first_attempt_is_retried_when_due_not_at_the_next_poll(sessions):
    """The round sleeps a whole poll interval (60 s here) while nothing is due; a fast-path
    attempt that fails wakes it, so the retry goes out after the policy's delay."""
    worker, sender, hook = _fast_path(sessions, [AttemptResult(503, 1.0),
                                                 AttemptResult(204, 1.0)])
    d = _delivered_after_a_raise(worker, sessions, hook, timeout_s=10)
    assert (d.state, d.attempts, len(sender.sent)) == ("delivered", 2, 2)


def test_without_a_running_worker_rows_wait_unclaimed_for_a_round(sessions):
    worker, sender, hook = _fast_path(sessions, [AttemptResult(204, 1.0)])
    alert_id, _jobs = _raise(sessions, hook)
    d = _delivery(sessions, alert_id)
    assert (d.state, d.attempts, d.claimed_until, sender.sent) == ("pending", 0, None, [])
    assert worker.run_once() == 1
    assert _delivery(sessions, alert_id).state == "delivered"
    assert sender.threads == ["MainThread"]


def test_a_fast_path_claim_lost_in_a_crash_is_taken_over_after_its_lease(sessions):
    """The process claimed the row in the alert's transaction and died before sending."""
    worker, sender, hook = _fast_path(sessions, [AttemptResult(204, 1.0)])
    hook.send_now = lambda: 30.0  # claims as a running worker would; nothing submits the job
    alert_id, _jobs = _raise(sessions, hook)
    claimed = _delivery(sessions, alert_id)
    assert claimed.attempts == 1 and claimed.claimed_until is not None
    with sessions.begin() as s:
        assert service.claim_due(s, datetime.now(UTC), 10, lease_s=30) == []
    later = claimed.claimed_until + timedelta(seconds=1)
    with sessions.begin() as s:
        [(row, _sub)] = service.claim_due(s, later, 10, lease_s=30)
    assert row.id == claimed.id and row.attempts == 2


def test_a_row_claimed_for_an_attempt_in_flight_is_next_claimable_when_its_lease_ends(sessions):
    worker, _sender, hook = _fast_path(sessions, [])
    with sessions() as s:
        assert service.next_claimable_at(s) is None  # nothing open: the round sleeps its poll
    hook.send_now = lambda: 30.0  # claimed as a running worker claims; its attempt in flight
    alert_id, _jobs = _raise(sessions, hook)
    claimed = _delivery(sessions, alert_id)
    with sessions() as s:
        assert service.next_claimable_at(s) == claimed.claimed_until
    assert claimed.claimed_until > claimed.next_attempt_at
    hook.send_now = lambda: None  # no worker here: the row waits unclaimed for a round
    other_id, _jobs = _raise(sessions, hook)
    with sessions() as s:
        assert service.next_claimable_at(s) == _delivery(sessions, other_id).next_attempt_at


@pytest.mark.parametrize(("lease_s", "wakes"), [(None, True), (30.0, False)])
def test_a_raise_wakes_the_round_only_for_rows_it_does_not_send_at_once(sessions, lease_s,
                                                                        wakes):
    from backend.subscriptions.hook import WAKE_KEY

    _worker, _sender, hook = _fast_path(sessions, [])
    hook.send_now = lambda: lease_s
    _alert_id, info = _raise_in(sessions, hook)
    assert info.get(WAKE_KEY, False) is wakes


@pytest.mark.parametrize("each_statement_commits", [True, False])
def test_rows_committed_with_their_statement_are_submitted_at_once(sessions,
                                                                   each_statement_commits):
    """In the alarm worker (autocommit) the raise's rows are committed when its statement
    returns: the hook hands the jobs to the worker then, not at the session's end."""
    from backend.alerts.flows import EACH_STATEMENT_COMMITS
    from backend.subscriptions.hook import JOBS_KEY

    _worker, _sender, hook = _fast_path(sessions, [])
    hook.send_now = lambda: 30.0
    submitted: list = []
    hook.submit = submitted.extend
    _alert_id, info = _raise_in(sessions, hook,
                                {EACH_STATEMENT_COMMITS: True} if each_statement_commits else {})
    at_commit = info.get(JOBS_KEY, [])
    assert len(submitted + at_commit) == 1
    assert bool(submitted) is each_statement_commits


class SlowSender(ThreadNotingSender):
    """A receiver that takes `seconds` to answer."""

    def __init__(self, results: list[AttemptResult], seconds: float) -> None:
        super().__init__(results)
        self.seconds = seconds

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        time.sleep(self.seconds)
        return super().send(url, body, headers)


def test_an_attempt_in_flight_leaves_the_round_asleep(sessions):
    """The fast path sends a raise's delivery from the pool; the round thread neither wakes for
    it nor polls the table while it is in flight (it would compete with the send)."""
    import threading
    import time

    from sqlalchemy import event

    worker, _sender, hook = _fast_path(sessions, [])
    worker._sender = sender = SlowSender([AttemptResult(204, 1.0)], seconds=0.5)
    engine = sessions.kw["bind"]
    by_thread: list[str] = []

    def noted(*_args) -> None:
        by_thread.append(threading.current_thread().name)

    worker.start()
    try:
        time.sleep(0.2)  # the first round ran and found nothing; the next is in 60 s
        event.listen(engine, "before_cursor_execute", noted)
        alert_id, _jobs = _raise(sessions, hook)
        deadline = time.monotonic() + 5
        while _delivery(sessions, alert_id).state != "delivered" and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        event.remove(engine, "before_cursor_execute", noted)
        worker.stop()
    assert _delivery(sessions, alert_id).state == "delivered"
    assert sender.threads == ["webhook_0"]
    assert by_thread.count("webhooks") == 0, "the round ran while the attempt was in flight"


@pytest.mark.services
def test_outcomes_recorded_at_the_same_time_leave_the_right_aggregate(pg_sessions):
    """Two subscriptions' first attempts finish together in the pool and are recorded from two
    threads: the alert ends up "delivered" (each recording recomputes the aggregate; they are
    serialised on the alert row, so neither works from a stale view of the other)."""
    import threading

    sessions = pg_sessions

    from backend.alerts.document import alert_document
    from backend.alerts.flows import Effects

    worker, _sender, hook = _fast_path(sessions, [])
    with sessions.begin() as s:
        s.add(Subscription(id=uuid.uuid4(), name="q", url="http://127.0.0.1:9/y",
                           secret="whsec_" + "B" * 43 + "=", format="json"))
    hook.send_now = lambda: 30.0
    barrier = threading.Barrier(2, timeout=5)

    class TogetherSender:
        def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
            barrier.wait()
            return AttemptResult(204, 1.0)

    worker._sender = TogetherSender()
    alert_id, jobs = _raise(sessions, hook)
    assert len(jobs) == 2
    threads = [threading.Thread(target=worker._deliver, args=(job,)) for job in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    with sessions() as s:
        assert s.get(Alert, alert_id).police_delivery == "delivered"
        assert {d.state for d in service.deliveries_of(s, alert_id)} == {"delivered"}


@pytest.mark.services
def test_an_outcome_reads_the_alert_once_and_writes_only_what_moved(pg_sessions):
    """Recording an outcome locks and reads the alert in one statement and writes the delivery
    row without reading it; the alert's aggregate, and the console's event, only when it
    moved: of a raise's two deliveries, the first outcome leaves it pending, the second moves
    it (pending -> delivered)."""
    from sqlalchemy import event

    sessions = pg_sessions
    worker, _sender, hook = _fast_path(sessions, [])
    with sessions.begin() as s:
        s.add(Subscription(id=uuid.uuid4(), name="q", url="http://127.0.0.1:9/y",
                           secret="whsec_" + "B" * 43 + "=", format="json"))
    hook.send_now = lambda: 30.0
    alert_id, [one, other] = _raise(sessions, hook)
    engine = sessions.kw["bind"]
    statements: list[str] = []

    def noted(_conn, _cursor, statement, *_args) -> None:
        statements.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", noted)
    try:
        worker._record(one, AttemptResult(204, 1.0))
        first = statements[:]
        statements.clear()
        worker._record(other, AttemptResult(204, 1.0))
    finally:
        event.remove(engine, "before_cursor_execute", noted)

    def alert_reads(found: list[str]) -> list[str]:
        return [s for s in found if s.startswith("SELECT alerts.")]

    for found in (first, statements):
        assert alert_reads(found) == found[:1], "the alert is read once, by its lock"
        assert found[0].endswith("FOR NO KEY UPDATE")
        assert not [s for s in found if s.startswith("SELECT webhook_deliveries.id")]
        assert len([s for s in found if s.startswith("UPDATE webhook_deliveries")]) == 1
    assert not [s for s in first if s.startswith("UPDATE alerts")]
    assert [s for s in statements if s.startswith("UPDATE alerts")]
    assert [e["alert"]["police_delivery"] for e in worker._bus.events] == ["delivered"]
    with sessions() as s:
        assert s.get(Alert, alert_id).police_delivery == "delivered"
        assert [a.number for a in service.attempts_of(s, one.delivery_id)] == [1]


def test_jobs_submitted_while_held_start_when_the_block_ends(sessions):
    import time

    worker, sender, hook = _fast_path(sessions, [AttemptResult(204, 1.0)])
    hook.send_now = lambda: 30.0
    alert_id = None
    worker.start()
    try:
        with worker.held():
            alert_id, _jobs = _raise(sessions, hook)  # its commit submits the job: held here
            time.sleep(0.3)
            assert sender.sent == []
        deadline = time.monotonic() + 5
        while _delivery(sessions, alert_id).state != "delivered" and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    assert len(sender.sent) == 1 and sender.threads == ["webhook_0"]


class GatedSender:
    """A receiver that answers once `go` is set; notes each attempt's webhook id as it starts."""

    def __init__(self) -> None:
        self.go = threading.Event()
        self.started: list[str] = []

    def send(self, url: str, body: bytes, headers: Mapping[str, str]) -> AttemptResult:
        self.started.append(headers["webhook-id"])
        assert self.go.wait(10)
        return AttemptResult(204, 1.0)

    def wait_started(self, count: int, timeout_s: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout_s
        while len(self.started) < count and time.monotonic() < deadline:
            time.sleep(0.01)
        return len(self.started) >= count


def _gated(sessions) -> tuple[DeliveryWorker, GatedSender, Any]:
    worker, _sender, hook = _fast_path(sessions, [])
    hook.send_now = lambda: 30.0
    worker._sender = sender = GatedSender()
    return worker, sender, hook


def test_a_release_starts_what_was_held_and_what_follows_in_the_block(sessions):
    """The alarm worker releases the held sends once the police feed is written: jobs held
    until then start, and those submitted after it start at once; the block's `Sends` counts
    them all."""
    worker, sender, hook = _gated(sessions)
    worker.start()
    try:
        with worker.held() as sends:
            _first, first_jobs = _raise(sessions, hook)
            assert sender.started == []  # held
            worker.release()
            _second, second_jobs = _raise(sessions, hook)  # after the release: not held
            assert sender.wait_started(2)
            assert sorted(sender.started) == sorted(j.webhook_id
                                                    for j in first_jobs + second_jobs)
            assert not sends.wait(0.1)  # both attempts in flight, counted in the block's sends
        sender.go.set()
        assert sends.wait(5)
    finally:
        sender.go.set()
        worker.stop()


def test_the_held_blocks_sends_tell_when_their_attempts_are_made(sessions):
    """What the ingest worker waits for before an alarm's follow-up: the attempt is made (the
    sender returned), not merely submitted."""
    worker, sender, hook = _gated(sessions)
    worker.start()
    try:
        with worker.held() as sends:
            _raise(sessions, hook)
        assert sender.wait_started(1)
        assert not sends.wait(0.2)  # the attempt is still being made
        sender.go.set()
        assert sends.wait(5)
    finally:
        sender.go.set()
        worker.stop()


def test_sends_count_every_attempt_and_never_wait_past_the_timeout() -> None:
    import time

    from backend.subscriptions.worker import Sends

    sends = Sends()
    assert sends.wait(0)  # nothing started: nothing to wait for
    sends.started(2)
    sends.sent()
    started = time.monotonic()
    assert not sends.wait(-1.0)  # a deadline already past: no wait at all
    assert not sends.wait(0.05)
    assert time.monotonic() - started < 2
    sends.sent()
    assert sends.wait(0)


def test_a_round_claims_no_more_than_the_pool_has_free_threads(sessions):
    """Five rows due, two threads: the round claims two and leaves the rest unclaimed (a row
    claimed to wait for a thread would spend its lease there), and claims more as attempts
    end, without waiting for a poll interval."""
    from sqlalchemy import func, select

    alert_ids = [_seed(sessions) for _ in range(5)]
    sender = GatedSender()
    worker = DeliveryWorker(sessions, sender, RecordingBus(),
                            WorkerConfig(policy=POLICY, concurrency=2, poll_interval_s=60.0),
                            clock=Clock())
    worker.start()
    try:
        assert sender.wait_started(2)
        time.sleep(0.3)
        with sessions() as s:
            claimed = s.scalar(select(func.count()).where(Delivery.attempts > 0))
        assert (claimed, len(sender.started)) == (2, 2)
        sender.go.set()
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and {
                _delivery(sessions, a).state for a in alert_ids} != {"delivered"}:
            time.sleep(0.02)
    finally:
        sender.go.set()
        worker.stop()
    assert {_delivery(sessions, a).state for a in alert_ids} == {"delivered"}
    assert len(sender.started) == 5
