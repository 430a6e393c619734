"""Which thread does what with an alarm: the MQTT network thread raises it and publishes the police
feed, then starts the webhook sends, then the console event; a slow follow-up runs in the
follow-up thread without holding up the next alarm, after the alarm's webhook sends (within a
bound), or is left to the follow-up sweep when the follow-up thread has no room; an alarm the
network thread cannot store goes to the alarm lane, which stores it (once)."""

from __future__ import annotations

import queue
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from backend.alerts.follow_up_sweep import FollowUpSweep
from backend.alerts.models import Alert
from backend.ingest.worker import IngestWorker
from device_protocol import Alarm, codec
from tests.support.webhooks import (  # noqa: F401 - fixtures used below
    Receiver,
    receivers,
    subscribe,
    webhooks,
)
from tests.support.mqtt import publish
from tests.support.waiting import wait_until

ROTTERDAM_CS = (51.9244, 4.4690)


def _alarm(message_id: str) -> bytes:
    return codec.encode(Alarm(id=message_id, kind="panic", tst=time.time(),
                              lat=ROTTERDAM_CS[0], lon=ROTTERDAM_CS[1], acc=9.0))


class BlockingFollowUp:
    """A follow-up hook that holds the first alert's follow-up until released."""

    phase = "follow_up"

    def __init__(self) -> None:
        self.entered = threading.Event()
        self.release = threading.Event()
        self.threads: set[str] = set()

    def after_change(self, session, alert, document, effects) -> None:
        self.threads.add(threading.current_thread().name)
        if not self.entered.is_set():
            self.entered.set()
            assert self.release.wait(20)


class FailingOnce:
    """Fails the first raise it sees as a lost database connection would."""

    def __init__(self) -> None:
        self.failed_on: str | None = None

    def prepare(self, session, alert, document) -> list:
        if self.failed_on is None:
            self.failed_on = threading.current_thread().name
            raise OperationalError("INSERT", {}, Exception("connection lost"))
        return []

    def after_change(self, session, alert, document, effects) -> None:
        return


def _followed_up(stack, message_id: str) -> bool:
    with stack.runtime.sessions() as s:
        return s.scalar(select(Alert.followed_up_at).where(Alert.message_id == message_id)) \
            is not None


def test_a_slow_follow_up_does_not_hold_up_the_next_alarm(stack):
    stack.register("vic-001")
    stack.register("vic-002")
    hook = BlockingFollowUp()
    stack.runtime.flow.hooks.append(hook)
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-001")
    other = stack.device("vic-002")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("slow-1"))
        police.wait_for(1)
        assert hook.entered.wait(10)

        publish(other, stack.topics.alarm("vic-002"), _alarm("next-1"))
        police.wait_for(2)  # while the first alert's follow-up is still held
        assert not hook.release.is_set()
        assert not _followed_up(stack, "slow-1")
    finally:
        hook.release.set()
    deadline = time.monotonic() + 10
    while not (_followed_up(stack, "slow-1") and _followed_up(stack, "next-1")):
        assert time.monotonic() < deadline, "follow-ups did not finish"
        time.sleep(0.05)
    assert hook.threads == {"ingest-follow-up"}
    stack.runtime.flow.hooks.remove(hook)
    police.close()
    for client in (device, other):
        client.disconnect()


def test_a_follow_up_that_finds_no_room_is_left_to_the_sweep_not_waited_for(stack):
    """The follow-up queue full (here of one, behind a follow-up that hangs): the network
    thread does not wait for room (it would read no alarm, send no keepalive): the next alarms
    are raised all the same, and the follow-up that found no room is the sweep's."""
    if stack.backend != "services":
        pytest.skip("on SQLite the hanging follow-up holds the one write lock: nothing raises")
    stack.register("vic-001")
    hook = BlockingFollowUp()
    stack.runtime.flow.hooks.append(hook)
    stack.worker._after = queue.Queue(1)  # `ingest.follow_up_queue_max` 1
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("full-1"))
        assert hook.entered.wait(10)  # its follow-up hangs; the queue is empty again
        for message_id in ("full-2", "full-3", "full-4"):  # queued, no room, no room
            publish(device, stack.topics.alarm("vic-001"), _alarm(message_id))
        assert len(police.wait_for(4, timeout=20)) == 4
    finally:
        hook.release.set()
    wait_until(lambda: _followed_up(stack, "full-1") and _followed_up(stack, "full-2"))
    assert not _followed_up(stack, "full-3") and not _followed_up(stack, "full-4")
    later = datetime.now(UTC) + timedelta(seconds=stack.settings.supervision.follow_up_grace_s)
    assert FollowUpSweep(stack.runtime).run_once(now=later) == 2
    assert _followed_up(stack, "full-3") and _followed_up(stack, "full-4")
    stack.runtime.flow.hooks.remove(hook)


def test_an_alarm_the_network_thread_cannot_store_is_stored_by_the_lane(stack):
    stack.register("vic-001")
    hook = FailingOnce()
    stack.runtime.flow.hooks.append(hook)
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("retry-1"))
        [(_, payload, _)] = police.wait_for(1)
        assert codec.decode_document(payload)["message_id"] == "retry-1"
        time.sleep(0.5)
    finally:
        stack.runtime.flow.hooks.remove(hook)
    assert hook.failed_on is not None and hook.failed_on.startswith("mqtt-")
    assert len(police.messages) == 1
    with stack.runtime.sessions() as s:
        assert s.scalar(select(func.count()).select_from(Alert)
                        .where(Alert.message_id == "retry-1")) == 1
    police.close()
    device.disconnect()


class HeldBus:
    """An event bus that holds the first publish until released (then passes events on)."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.holding = threading.Event()
        self.release = threading.Event()

    def publish(self, event) -> None:
        if not self.holding.is_set():
            self.holding.set()
            assert self.release.wait(20)
        self.inner.publish(event)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_the_police_feed_is_written_before_the_console_event_is_published(stack):
    """The network thread writes the police feed to the socket itself, right after the commit:
    it is on the wire while the console event's publish (next in line) still waits."""
    stack.register("vic-001")
    bus = HeldBus(stack.runtime.bus)
    stack.runtime.bus = bus
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("wire-1"))
        assert bus.holding.wait(10)
        [(_, payload, _)] = police.wait_for(1)
        assert not bus.release.is_set()
        assert codec.decode_document(payload)["message_id"] == "wire-1"
    finally:
        bus.release.set()
        stack.runtime.bus = bus.inner
    police.close()
    device.disconnect()


class WaitsForTheFeed:
    """An "alert" hook, which runs after the alert's statement and before the raise is over:
    waits there (at most `timeout_s`) until the police listener has the feed."""

    phase = "alert"

    def __init__(self, police, timeout_s: float) -> None:
        self.police = police
        self.timeout_s = timeout_s
        self.feed_during_the_raise: list = []

    def after_change(self, session, alert, document, effects) -> None:
        self.feed_during_the_raise = self.police.wait_for(1, timeout=self.timeout_s)


def test_the_police_feed_leaves_when_its_alert_is_committed(stack):
    """On PostgreSQL an alarm's alert is a statement committed on its own: its police feed goes
    out as soon as that returns, before the rest of the raise. Where the raise is one
    transaction (SQLite), nothing goes out before that transaction's commit."""
    early = stack.backend == "services"
    stack.register("vic-001")
    police = stack.collector(stack.topics.police_filter())
    hook = WaitsForTheFeed(police, timeout_s=5 if early else 0.5)
    stack.runtime.flow.hooks.append(hook)
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("early-1"))
        wait_until(lambda: _followed_up(stack, "early-1"), timeout=15)
    finally:
        stack.runtime.flow.hooks.remove(hook)
    if early:
        [(_, payload, _)] = hook.feed_during_the_raise
    else:
        assert hook.feed_during_the_raise == []
        [(_, payload, _)] = police.wait_for(1)
    assert codec.decode_document(payload)["message_id"] == "early-1"
    time.sleep(0.3)
    assert len(police.messages) == 1  # sent once
    police.close()
    device.disconnect()


def test_webhooks_are_sent_before_the_console_event_is_published(webhooks, receivers):
    stack = webhooks
    stack.register("vic-001")
    receiver = receivers()
    subscribe(stack.api(), receiver)
    bus = HeldBus(stack.runtime.bus)
    stack.runtime.bus = bus
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("hook-1"))
        assert bus.holding.wait(10)
        # Within the fast path's claim (10 s): later, a delivery round would send it anyway.
        [received] = receiver.wait_for(1, timeout=5)
        assert not bus.release.is_set()  # the console event is still waiting
        assert b"hook-1" in received.body
    finally:
        bus.release.set()
        stack.runtime.bus = bus.inner
    device.disconnect()


class SlowReceiver(Receiver):
    """Answers only once `release` is set."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.release = threading.Event()

    def handle(self, headers, body) -> int:
        assert self.release.wait(20)
        return super().handle(headers, body)


def _alarm_with_slow_webhook(stack, receivers, message_id: str) -> SlowReceiver:
    receiver = receivers()
    slow = SlowReceiver(url=receiver.url)  # the server calls `receiver.handle`: swap it in
    receiver.handle = slow.handle
    subscribe(stack.api(), slow)
    device = stack.device("vic-001")
    police = stack.collector(stack.topics.police_filter())
    publish(device, stack.topics.alarm("vic-001"), _alarm(message_id))
    police.wait_for(1)
    police.close()
    device.disconnect()
    return slow


def test_the_follow_up_waits_for_the_alarms_webhook_sends(webhooks, receivers):
    stack = webhooks
    stack.register("vic-001")
    stack.settings.ingest.follow_up_wait_s = 1.0
    slow = _alarm_with_slow_webhook(stack, receivers, "wait-1")
    try:
        time.sleep(0.5)  # the webhook is being sent: the follow-up waits for it
        assert not _followed_up(stack, "wait-1")
        slow.release.set()
        wait_until(lambda: _followed_up(stack, "wait-1"), timeout=10)
    finally:
        slow.release.set()


def test_the_follow_up_waits_no_longer_than_its_bound(webhooks, receivers):
    stack = webhooks
    stack.register("vic-001")
    stack.settings.ingest.follow_up_wait_s = 0.05
    slow = _alarm_with_slow_webhook(stack, receivers, "bound-1")
    try:  # the webhook is still held, the follow-up ran anyway
        wait_until(lambda: _followed_up(stack, "bound-1"), timeout=10)
    finally:
        slow.release.set()


class RaisingOnPrepare:
    """Raises a bug (not a database error) on the first `times` raises it sees."""

    def __init__(self, times: int) -> None:
        self.times = times
        self.calls = 0

    def prepare(self, session, alert, document) -> list:
        self.calls += 1
        if self.calls <= self.times:
            raise RuntimeError("a bug in a hook")
        return []

    def after_change(self, session, alert, document, effects) -> None:
        return


def _count(stack, message_id: str) -> int:
    with stack.runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Alert)
                        .where(Alert.message_id == message_id))


def test_an_unexpected_error_does_not_stop_the_alarm_lane(stack, monkeypatch):
    """A bug that fails an alarm on the network thread and in the lane: the lane tries again
    with back-off and stores it; the lane's thread lives on."""
    from backend.ingest import worker as worker_module

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.05, 0.05, 0.05))
    stack.register("vic-001")
    hook = RaisingOnPrepare(times=3)  # network thread, then the lane twice
    stack.runtime.flow.hooks.append(hook)
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("bug-1"))
        wait_until(lambda: _count(stack, "bug-1") == 1, timeout=10)
        assert all(t.is_alive() for t in stack.worker._threads)
    finally:
        stack.runtime.flow.hooks.remove(hook)
        device.disconnect()


def test_a_batch_that_keeps_failing_is_given_up_unacknowledged(stack, monkeypatch):
    """After its bounded retries, the lane leaves the failing alarm unacknowledged and goes on
    with the next one; the watchdog hears of it, and the restarted worker (on Mosquitto: the
    embedded broker does not resend to a new connection) gets the alarm again and raises it."""
    from backend.ingest import worker as worker_module

    monkeypatch.setattr(worker_module, "RETRY_DELAYS_S", (0.05, 0.05))
    stack.register("vic-001")
    hook = RaisingOnPrepare(times=1 + 3)  # network thread, then every try of the lane
    stack.runtime.flow.hooks.append(hook)
    device = stack.device("vic-001")
    try:
        publish(device, stack.topics.alarm("vic-001"), _alarm("poison-1"))
        wait_until(lambda: hook.calls >= 4, timeout=10)
        publish(device, stack.topics.alarm("vic-001"), _alarm("after-1"))
        wait_until(lambda: _count(stack, "after-1") == 1, timeout=10)
        assert _count(stack, "poison-1") == 0
        assert all(t.is_alive() for t in stack.worker._threads)
        assert stack.worker.problems() == [
            "1 messages given up unacknowledged (a restart has the broker send them again)"]
    finally:
        stack.runtime.flow.hooks.remove(hook)
    if stack.backend == "services":
        stack.worker.stop()
        restarted = IngestWorker(stack.runtime)  # as the service manager restarts it
        restarted.start()
        try:
            wait_until(lambda: _count(stack, "poison-1") == 1, timeout=20)
            assert restarted.problems() == []
        finally:
            restarted.stop()
    device.disconnect()


def test_a_worker_told_not_to_freeze_the_heap_leaves_it_unfrozen(stack):
    """`process.freeze_heap` off (as every test stack has it): nothing frozen at start, so what
    a stopped worker leaves behind is collected."""
    import gc

    assert stack.settings.process.freeze_heap is False
    assert gc.get_freeze_count() == 0
