"""The inbox's batches: a lingering inbox lets a short batch wait (once) until its oldest message
has waited `linger_s`; a full batch, or an inbox that does not linger, never waits."""

from __future__ import annotations

import pytest

from backend.ingest.inbox import Inbox
from backend.pipeline.context import RawMessage


class FakeTime:
    """A clock that only moves when the inbox sleeps; `during_sleep` runs meanwhile (another
    thread's puts)."""

    def __init__(self, now: float = 1_000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.during_sleep = lambda: None

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        self.during_sleep()


def raw(n: int, at: float) -> RawMessage:
    return RawMessage(f"sw/v1/dev/d{n}/loc", b"{}", 1, n, at)


def test_a_short_batch_waits_for_what_arrives_within_the_linger() -> None:
    t = FakeTime()
    inbox = Inbox(linger_s=0.05, clock=t.clock, sleep=t.sleep)
    first = raw(1, t.now - 0.01)  # has waited 10 ms already
    inbox.put(first)
    later = raw(2, t.now)
    t.during_sleep = lambda: inbox.put(later)
    assert inbox.next_batch(limit=100, wait_s=0) == [first, later]
    assert t.sleeps == pytest.approx([0.04])  # one sleep, for what the oldest had left to wait


def test_an_old_message_is_taken_at_once() -> None:
    t = FakeTime()
    inbox = Inbox(linger_s=0.05, clock=t.clock, sleep=t.sleep)
    stale = raw(1, t.now - 3.0)
    inbox.put(stale)
    assert inbox.next_batch(limit=100, wait_s=0) == [stale]
    assert t.sleeps == [0.0]


def test_a_full_batch_and_an_inbox_without_linger_never_wait() -> None:
    t = FakeTime()
    lingering = Inbox(linger_s=0.05, clock=t.clock, sleep=t.sleep)
    for n in range(3):
        lingering.put(raw(n, t.now))
    assert [r.mid for r in lingering.next_batch(limit=2, wait_s=0)] == [0, 1]
    assert [r.mid for r in lingering.next_batch(limit=2, wait_s=0)] == [2]  # waited: short
    assert t.sleeps == pytest.approx([0.05])

    t.sleeps.clear()
    prompt = Inbox(clock=t.clock, sleep=t.sleep)  # the alarm lane's
    prompt.put(raw(9, t.now))
    assert [r.mid for r in prompt.next_batch(limit=100, wait_s=0)] == [9]
    assert t.sleeps == []


def test_an_empty_inbox_gives_an_empty_batch_without_sleeping() -> None:
    t = FakeTime()
    inbox = Inbox(linger_s=0.05, clock=t.clock, sleep=t.sleep)
    assert inbox.next_batch(limit=10, wait_s=0) == []
    assert t.sleeps == []
