"""The webhook delivery worker: claim due deliveries, sign, send, decide, record.

One thread per process (ingest, api, run, demo). Each round it claims due rows (`FOR UPDATE
SKIP LOCKED` on PostgreSQL, so several processes share the work without sending a row twice),
no more than its pool of `concurrency` threads has free, commits the claim and hands them to the
pool without waiting for them (a receiver that is slow holds up no round). No subscription has
more than `concurrency_per_subscription` attempts in the pool, nor every thread of it (with two
or more), and rows are claimed P1 first and
first attempts ahead of retries (`service.claim_due`): a receiver that hangs until the total
time limit holds that many threads, not all of them, and a P1's first attempt to the police
does not wait behind its retries. A job of the fast path (`submit`) that finds no free thread,
or its subscription at that limit, never waits in the pool's queue: its claim is given back and
a round claims the row in turn. Each attempt is sent
with the urllib3 sender under explicit timeouts and a total time limit, and its outcome
recorded in its own transaction: the attempt on the delivery log
(`webhook_attempts`), a `delivery` entry on the alert's timeline, the delivery's next state from
the retry policy, and the alert's aggregate `police_delivery`. When that aggregate changes the
console gets an `alert.updated` event; when it becomes `unreachable` the event carries the
notice "police not reached: phone the control room".

At most once per `poll_interval_s` the thread also sweeps: an open delivery whose deadline
passed more than a claim lease ago had an attempt that never ended (it hangs, or its worker is
gone), and becomes `unreachable` through the same path as an attempt's outcome; an open delivery
of a deactivated subscription (no round claims it) ends `rejected` the same way; a police feed
message the broker has not confirmed by the deadline ends `unconfirmed` and counts as an
unreachable delivery of its alert (`backend.outbox.unconfirmed`).

The thread sleeps until a row can be claimed (its attempt due, no lease holding it: not while
an attempt is in flight) or `poll_interval_s`, and wakes at once when `wake()` is called (right
after a transaction committed deliveries that this process does not send at once, when an
attempt's outcome schedules a retry, and when an attempt ends while a round left due rows for
want of threads).

Latency hook points (for benchmarks): `on_sent(delivery_id, webhook_id, result)` is called
after every attempt, in the thread that made it.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from backend.alerts import service as alerts_service
from backend.alerts.flows import alert_event
from backend.alerts.models import Alert
from backend.hub.bus import EventBus
from backend.outbox.unconfirmed import end_unconfirmed
from backend.police import cap, cloudevent, signing
from backend.police.attempt import AttemptResult, ErrorKind
from backend.police.client import WebhookSender
from backend.police.retry import (
    POLICE_NOT_REACHED,
    Decision,
    DeliveryState,
    RetryPolicy,
    decide,
    overdue,
    overdue_before,
)
from backend.police.sealing import SecretBox
from backend.subscriptions import service
from backend.subscriptions.models import Delivery, Subscription

log = logging.getLogger(__name__)

CONTENT_TYPES = {"json": cloudevent.CONTENT_TYPE, "cap": cap.CONTENT_TYPE}
# The delivery log's outcome of an attempt that ended too late to apply.
SUPERSEDED = "superseded"


@dataclass(frozen=True, slots=True)
class Job:
    """A claimed delivery, detached from its session."""

    delivery_id: uuid.UUID
    alert_id: uuid.UUID
    webhook_id: str
    attempt: int
    window_start: datetime
    url: str
    secret: str
    format: str
    body: bytes
    priority: str
    prior_attempts: int = 0  # made in earlier delivery windows (`Delivery.prior_attempts`)
    subscription_id: uuid.UUID | None = None

    @property
    def window_attempt(self) -> int:
        """This attempt's number within its delivery window: what the retry policy counts."""
        return self.attempt - self.prior_attempts

    @property
    def ref(self) -> AttemptRef:
        return AttemptRef(self.delivery_id, self.alert_id, self.webhook_id, self.attempt,
                          self.window_start)


@dataclass(frozen=True, slots=True)
class AttemptRef:
    """Which attempt an outcome belongs to: attempt `number` (of all the delivery's HTTP
    attempts) in the delivery window that started at `window_start`."""

    delivery_id: uuid.UUID
    alert_id: uuid.UUID
    webhook_id: str
    number: int
    window_start: datetime

    @classmethod
    def of(cls, d: Delivery) -> AttemptRef:
        """The delivery's latest attempt (0: none was made)."""
        return cls(d.id, d.alert_id, d.webhook_id, d.attempts, d.window_start)


class Sends:
    """The webhook attempts started by one `DeliveryWorker.held` block, for whoever wants to
    wait until they are on the wire (the ingest worker holds an alarm's follow-up back so that
    it does not compete with them for the interpreter)."""

    def __init__(self) -> None:
        self._pending = 0
        self._done = threading.Condition()

    def started(self, count: int) -> None:
        with self._done:
            self._pending += count

    def sent(self) -> None:
        with self._done:
            self._pending -= 1
            if self._pending <= 0:
                self._done.notify_all()

    def wait(self, timeout_s: float) -> bool:
        """True when every attempt was made within `timeout_s` (at once when none is left)."""
        with self._done:
            return self._done.wait_for(lambda: self._pending <= 0, max(timeout_s, 0.0))


@dataclass(frozen=True, slots=True)
class WorkerConfig:
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    poll_interval_s: float = 1.0
    batch_size: int = 50
    concurrency: int = 8
    # Attempts to one subscription in the pool at a time: a receiver that hangs holds no more
    # threads than this, whatever it has due.
    concurrency_per_subscription: int = 2
    claim_lease_s: float = 30.0
    urgent_priorities: tuple[str, ...] = ("P1", "P2")

    @property
    def per_subscription(self) -> int:
        """Attempts one subscription may have in the pool: `concurrency_per_subscription`, and
        never every thread of a pool of two or more (one is left for the others)."""
        return max(1, min(self.concurrency_per_subscription, self.concurrency - 1))


class DeliveryWorker:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        sender: WebhookSender,
        bus: EventBus,
        config: WorkerConfig = WorkerConfig(),
        *,
        documents: Callable[[Session, list[Alert]], list[dict[str, Any]]] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        secrets: SecretBox | None = None,
    ) -> None:
        self._sessions = sessions
        self._sender = sender
        self._secrets = secrets or SecretBox()  # opens the stored (sealed) secrets to sign
        self._bus = bus
        self.config = config
        self._documents = documents
        self._clock = clock
        self._wake = threading.Event()
        self._record_lock = threading.Lock()
        # Attempts running in the pool (in all, and by subscription), whether a round left due
        # rows for want of threads, and the claims handed back for a round to give back.
        self._slots = threading.Lock()
        self._in_flight = 0
        self._busy: dict[uuid.UUID | None, int] = {}
        self._waiting_for_slot = False
        self._handed_back: list[Job] = []
        self._local = threading.local()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pool: ThreadPoolExecutor | None = None
        self.on_sent: Callable[[uuid.UUID, str, AttemptResult], None] | None = None

    # -- control --------------------------------------------------------------------------------
    def wake(self) -> None:
        self._wake.set()

    def lease_if_running(self) -> float | None:
        """The claim lease for deliveries this worker will send at once (`submit`), or None
        when it does not run in this process (the rows then wait for a round)."""
        return self.config.claim_lease_s if self.running else None

    @contextmanager
    def held(self) -> Iterator[Sends]:
        """Jobs submitted in this thread inside the block start when it ends, or at `release`:
        the ingest worker publishes the police feed first, then lets the webhook sends compete
        for the CPU. The `Sends` it yields tell when the block's attempts have been made."""
        sends = Sends()
        self._local.held, self._local.sends = [], sends
        try:
            yield sends
        finally:
            jobs = self._local.held or []
            self._local.held = self._local.sends = None
            self.submit(jobs, sends)

    def release(self) -> None:
        """Inside `held`: start what was held, and from now on what is submitted in this block
        starts at once (its attempts still count in the block's `Sends`)."""
        jobs = getattr(self._local, "held", None)
        if jobs is None:
            return
        self._local.held = None
        self.submit(jobs)

    def submit(self, jobs: list[Job], sends: Sends | None = None) -> None:
        """Send deliveries claimed in a transaction that just committed (the fast path): each
        attempt starts now in the pool, not at the next round (inside `held`, when the block
        ends or at `release`). A job finds no free thread, or its subscription has as many
        attempts in flight as it may: it is handed back (`_spawn`) and a round claims it in
        turn. Should the pool be gone, the claims lapse after their lease and a round takes the
        rows over."""
        held = getattr(self._local, "held", None)
        if held is not None:
            held.extend(jobs)
            return
        sends = sends or getattr(self._local, "sends", None)
        pool = self._pool
        if pool is None:
            return
        for job in jobs:
            if self._spawn(pool, job, sends) is None:
                return

    def _spawn(self, pool: ThreadPoolExecutor, job: Job, sends: Sends | None) -> bool | None:
        """Start `job`'s attempt in the pool when a thread is free and its subscription has
        fewer than `WorkerConfig.per_subscription` attempts in flight: True. Else False: no job
        waits in the pool's queue (its lease would run there, and a P1's attempt behind a
        hanging receiver's), it is handed back for the round to give its claim back, and the
        row is claimed again in turn (`service.claim_due`). None when the pool is shutting down
        (the lease runs out, and another round sends it)."""
        with self._slots:
            if (self._in_flight >= self.config.concurrency
                    or self._busy.get(job.subscription_id, 0)
                    >= self.config.per_subscription):
                self._handed_back.append(job)
                self._waiting_for_slot = True
                started = False
            else:
                self._in_flight += 1
                self._busy[job.subscription_id] = self._busy.get(job.subscription_id, 0) + 1
                started = True
        if not started:
            self.wake()
            return False
        if sends is not None:
            sends.started(1)
        try:
            pool.submit(self._deliver_in_pool, job, sends)
        except RuntimeError:
            self._slot_freed(job)
            if sends is not None:
                sends.sent()
            return None
        return True

    def _deliver_in_pool(self, job: Job, sends: Sends | None) -> None:
        try:
            self._deliver(job, sends)
        finally:
            self._slot_freed(job)

    def _slot_freed(self, job: Job) -> None:
        """An attempt in the pool ended: wake a round that left due rows for want of threads,
        or of room for this job's subscription."""
        with self._slots:
            self._in_flight -= 1
            busy = self._busy.pop(job.subscription_id, 0) - 1
            if busy > 0:
                self._busy[job.subscription_id] = busy
            wake = (self._waiting_for_slot
                    or busy + 1 >= self.config.per_subscription)
            self._waiting_for_slot = False
        if wake:
            self.wake()

    def _deliver(self, job: Job, sends: Sends | None = None) -> None:
        try:
            result = self._send(job)
        finally:
            if sends is not None:
                sends.sent()
        try:
            self._record(job, result)
        except Exception:
            log.exception("recording webhook attempt failed delivery=%s", job.delivery_id)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._stop.clear()
        with self._slots:
            self._in_flight, self._waiting_for_slot = 0, False
            self._busy, self._handed_back = {}, []
        self._pool = ThreadPoolExecutor(self.config.concurrency, thread_name_prefix="webhook")
        self._thread = threading.Thread(target=self._run, name="webhooks", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        close = getattr(self._sender, "close", None)
        if close is not None:
            close()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def _run(self) -> None:
        next_sweep = 0.0
        while not self._stop.is_set():
            self._wake.clear()
            if time.monotonic() >= next_sweep:
                next_sweep = time.monotonic() + self.config.poll_interval_s
                for sweep in (self.sweep, self.sweep_inactive, self.sweep_feeds):
                    try:
                        sweep()
                    except Exception:
                        log.exception("delivery sweep %s failed", sweep.__name__)
            try:
                self.run_once()
            except Exception:
                log.exception("webhook delivery round failed")
            # With due rows left for want of threads, the next round waits for one to free up.
            self._wake.wait(self.config.poll_interval_s if self._waiting_for_slot
                            else self._sleep_s())

    def _sleep_s(self) -> float:
        with self._slots:
            full = [sub for sub, n in self._busy.items()
                    if sub is not None and n >= self.config.per_subscription]
        try:
            with self._sessions() as s:
                due = service.next_claimable_at(s, full)
        except Exception:  # noqa: BLE001
            return self.config.poll_interval_s
        if due is None:
            return self.config.poll_interval_s
        wait = (due - self._clock()).total_seconds()
        return min(max(wait, 0.01), self.config.poll_interval_s)

    # -- one round ------------------------------------------------------------------------------
    def run_once(self) -> int:
        """Claim due deliveries and start their attempts; the number claimed. When the worker
        runs, the attempts go to its pool and the round does not wait for them (a slow receiver
        holds up nobody else's round, nor the sweep); it claims no more than the pool has free
        threads, so that no claimed row waits there while its lease runs, and no more of one
        subscription's than it has room for (`WorkerConfig.per_subscription`). Otherwise they
        are made one after the other in this thread."""
        pool = self._pool
        if pool is None:
            jobs = self._claim()
            for job in jobs:
                self._deliver(job)
            return len(jobs)
        self._give_back()
        limit = self._free_slots()
        with self._slots:
            busy = {sub: n for sub, n in self._busy.items() if sub is not None}
        jobs = self._claim(limit, busy) if limit > 0 else []
        if len(jobs) < limit:
            with self._slots:
                self._waiting_for_slot = False  # every due row it had room for was claimed
        for job in jobs:
            if self._spawn(pool, job, None) is None:
                break
        return len(jobs)

    def _give_back(self) -> None:
        """Give back the claims of jobs handed back (`_spawn`): their rows are claimed again
        in turn, this round or a later one."""
        with self._slots:
            jobs, self._handed_back = self._handed_back, []
        if jobs:
            with self._sessions.begin() as s:
                service.release(s, [(j.delivery_id, j.attempt, j.window_start) for j in jobs])

    def _free_slots(self) -> int:
        """How many rows a round may claim; when fewer than a batch, the round is woken as
        soon as an attempt ends (until it finds every due row claimed)."""
        with self._slots:
            free = max(0, self.config.concurrency - self._in_flight)
            self._waiting_for_slot = free < self.config.batch_size
            return min(free, self.config.batch_size)

    def _claim(self, limit: int | None = None,
               busy: dict[uuid.UUID, int] | None = None) -> list[Job]:
        """Claim due rows: with `busy` (attempts in the pool by subscription) no more of one
        subscription's than `WorkerConfig.per_subscription` leaves room for."""
        now = self._clock()
        with self._sessions.begin() as s:
            claimed = service.claim_due(
                s, now, limit or self.config.batch_size, self.config.claim_lease_s,
                per_subscription=(None if busy is None
                                  else self.config.per_subscription),
                busy=busy)
            return [self._job(d, sub) for d, sub in claimed]

    @staticmethod
    def _job(d: Delivery, sub: Subscription) -> Job:
        return Job(
            delivery_id=d.id, alert_id=d.alert_id, webhook_id=d.webhook_id, attempt=d.attempts,
            window_start=d.window_start, url=sub.url, secret=sub.secret, format=d.format,
            body=d.body, priority=d.priority, prior_attempts=d.prior_attempts,
            subscription_id=d.subscription_id,
        )

    def _send(self, job: Job) -> AttemptResult:
        try:
            headers = {
                "content-type": CONTENT_TYPES.get(job.format, cloudevent.CONTENT_TYPE),
                **signing.sign(self._secrets.open(job.secret), job.webhook_id, self._clock(),
                               job.body),
            }
        except (signing.SecretError, ValueError) as exc:
            log.error("webhook delivery=%s cannot be signed: %s", job.delivery_id,
                      type(exc).__name__)
            return AttemptResult(None, 0.0, error=ErrorKind.INVALID_REQUEST, detail="signing")
        result = self._sender.send(job.url, job.body, headers)
        if self.on_sent is not None:
            self.on_sent(job.delivery_id, job.webhook_id, result)
        return result

    def _record(self, job: Job, result: AttemptResult) -> None:
        now = self._clock()
        decision = decide(
            result, attempt=job.window_attempt, created_at=job.window_start, now=now,
            policy=self.config.policy, key=job.delivery_id.hex,
        )
        self._apply(job.ref, result, decision, now, made=True)

    def _apply(self, ref: AttemptRef, result: AttemptResult, decision: Decision, now: datetime,
               *, made: bool) -> bool:
        """Write the outcome of attempt `ref` (`made`: an HTTP attempt, not the sweep's verdict
        on one that never ended): the delivery's next state, the delivery log, the alert's
        timeline and aggregate, and the console event when that changed. False when it no
        longer applies (`service.record_outcome`): a made attempt goes on the log all the same.
        """
        events: list[dict[str, Any]] = []
        state = decision.state.value
        # Outcomes of one alert's deliveries are recorded one at a time (pool threads here,
        # other processes there): each recomputes the alert's aggregate from all its rows.
        with self._record_lock, self._sessions.begin() as s:
            alert = alerts_service.lock(s, ref.alert_id)
            subscription_id = service.record_outcome(
                s, ref.delivery_id, ref.number, ref.window_start, {
                    "state": state, "claimed_until": None,
                    "next_attempt_at": decision.next_attempt_at, "last_status": result.status,
                    "last_error": None if state == "delivered" else decision.reason,
                    **({"delivered_at": now, "replayed_failure": None}
                       if state == "delivered" else {}),
                })
            if alert is None:
                return False
            if subscription_id is None:
                if made:
                    self._superseded(s, ref, result, now)
                return False
            error = result.error.value if result.error else None
            service.record_attempt(
                s, delivery_id=ref.delivery_id, number=ref.number, at=now, status=result.status,
                error=error, duration_ms=result.duration_ms, outcome=state,
                reason=decision.reason,
            )
            alerts_service.add_event(
                s, ref.alert_id, at=now, actor="webhooks", kind="delivery", to_state=None,
                detail={
                    "delivery_id": str(ref.delivery_id), "webhook_id": ref.webhook_id,
                    "subscription_id": str(subscription_id), "attempt": ref.number,
                    "status": result.status, "error": error, "state": state,
                    "reason": decision.reason,
                },
            )
            events = self._refresh_alert(s, alert)
        log.info("webhook delivery=%s attempt=%d state=%s", ref.delivery_id, ref.number, state)
        if decision.state is DeliveryState.RETRYING:
            self.wake()  # the round sleeps until this retry is due, not a whole poll interval
        for event in events:
            self._bus.publish(event)
        return True

    @staticmethod
    def _superseded(s: Session, ref: AttemptRef, result: AttemptResult, now: datetime) -> None:
        """An attempt whose outcome came too late: the delivery was replayed, taken over by
        another worker after its lease, or ended. The delivery log keeps it; the delivery and
        the alert are left as they are."""
        log.warning("webhook delivery=%s attempt=%d superseded: outcome not applied",
                    ref.delivery_id, ref.number)
        if service.get_delivery(s, ref.delivery_id) is None:
            return
        service.record_attempt(
            s, delivery_id=ref.delivery_id, number=ref.number, at=now, status=result.status,
            error=result.error.value if result.error else None, duration_ms=result.duration_ms,
            outcome=SUPERSEDED,
            reason="not applied: the delivery was replayed, taken over or ended meanwhile",
        )

    # -- the sweep ------------------------------------------------------------------------------
    def sweep(self) -> int:
        """End the open deliveries that outlived their deadline by the claim lease: no attempt
        may hold one that long, so its attempt hangs or its worker is gone. Each becomes
        `unreachable` through the path of an attempt's outcome (delivery log, timeline, the
        alert's aggregate, "police not reached" on the console). The number ended."""
        now = self._clock()
        policy = self.config.policy
        before = overdue_before(now, policy, self.config.claim_lease_s)
        with self._sessions() as s:
            refs = [AttemptRef.of(d) for d in
                    service.overdue_deliveries(s, before, now, self.config.batch_size)]
        result = AttemptResult(None, 0.0, error=ErrorKind.TIMEOUT, detail="no outcome")
        ended = sum(self._apply(ref, result, overdue(policy), now, made=False) for ref in refs)
        if ended:
            log.warning("webhook sweep: %d deliveries without an outcome past their deadline "
                        "ended unreachable", ended)
        return ended

    def sweep_inactive(self) -> int:
        """End the open deliveries of deactivated subscriptions (no round claims them any
        more): `rejected`, "not sent: the subscription is inactive", through the path of an
        attempt's outcome, so that the console tells the desk the police were not reached
        rather than showing them pending for good. An attempt in flight is left to end (its
        2xx counts); a replay after reactivating sends them again. The number ended."""
        now = self._clock()
        with self._sessions() as s:
            refs = [AttemptRef.of(d) for d in
                    service.inactive_open(s, now, self.config.batch_size)]
        result = AttemptResult(None, 0.0, error=ErrorKind.INVALID_REQUEST, detail="inactive")
        decision = Decision(DeliveryState.REJECTED, None,
                            f"{POLICE_NOT_REACHED} (not sent: the subscription is inactive)")
        ended = sum(self._apply(ref, result, decision, now, made=False) for ref in refs)
        if ended:
            log.warning("webhook sweep: %d deliveries of inactive subscriptions ended", ended)
        return ended

    def sweep_feeds(self) -> int:
        """End the police feed messages the broker has not confirmed by the delivery deadline
        (`backend.outbox.unconfirmed`): each goes on its alert's timeline and makes the alert's
        aggregate unreachable, through the same refresh as a webhook's outcome. The number
        ended."""
        now = self._clock()
        deadline_s = self.config.policy.deadline_s
        reason = f"not confirmed by the broker within {deadline_s:g} s"
        events: list[dict[str, Any]] = []
        with self._record_lock, self._sessions.begin() as s:
            ended = end_unconfirmed(s, now - timedelta(seconds=deadline_s), reason,
                                    self.config.batch_size)
            for alert_id in sorted({alert_id for _, alert_id, _ in ended}):
                alert = alerts_service.lock(s, alert_id)
                if alert is None:
                    continue
                for outbox_id, _, topic in (row for row in ended if row[1] == alert_id):
                    log.warning("police feed outbox=%d alert=%s: %s", outbox_id, alert_id,
                                reason)
                    alerts_service.add_event(
                        s, alert_id, at=now, actor="police feed", kind="delivery",
                        detail={"channel": "mqtt", "topic": topic, "outbox_id": outbox_id,
                                "state": "unreachable", "reason": reason})
                events += self._refresh_alert(s, alert)
        for event in events:
            self._bus.publish(event)
        return len(ended)

    def _refresh_alert(self, s: Session, alert: Alert) -> list[dict[str, Any]]:
        """Recompute the locked alert's `police_delivery`; the console event when it changed."""
        value = service.police_delivery(s, alert.id, alert.priority,
                                        self.config.urgent_priorities)
        if value == alert.police_delivery:  # read under the lock: nobody changed it since
            return []
        service.set_police_delivery(s, alert.id, value)
        alert.police_delivery = value
        if value == "unreachable":
            log.warning("alert %s: %s", alert.id, POLICE_NOT_REACHED)
        return [self.console_event(s, alert)]

    def console_event(self, s: Session, alert: Alert) -> dict[str, Any]:
        document = self._documents(s, [alert])[0] if self._documents else {
            "alert_id": str(alert.id), "police_delivery": alert.police_delivery}
        event = alert_event(s, "alert.updated", alert, document)
        if alert.police_delivery == "unreachable":
            event["notice"] = POLICE_NOT_REACHED
        return event
