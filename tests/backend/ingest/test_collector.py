"""Garbage collection between alarms: which generation is due (pure), and the thread that
collects only while the worker is idle, with the automatic collector off meanwhile."""

from __future__ import annotations

import gc
import threading
import time

from backend.ingest.collector import IdleCollector, Schedule, due

S = Schedule(tick_s=0.01, young_every_s=1.0, full_every_s=60.0, max_allocations=1_000)


def test_nothing_is_due_right_after_a_collection():
    assert due(now=100.0, last_young=100.0, last_full=100.0, allocations=50, idle=True,
               schedule=S) is None


def test_the_young_generations_when_idle_and_their_time_has_come():
    assert due(101.5, last_young=100.0, last_full=100.0, allocations=50, idle=True,
               schedule=S) == 1
    # Nothing allocated since: nothing to collect.
    assert due(101.5, last_young=100.0, last_full=100.0, allocations=0, idle=True,
               schedule=S) is None


def test_everything_when_idle_and_the_full_collection_is_due():
    assert due(161.0, last_young=160.5, last_full=100.0, allocations=0, idle=True,
               schedule=S) == 2


def test_while_busy_only_a_pile_of_allocations_makes_a_young_collection():
    assert due(500.0, last_young=100.0, last_full=100.0, allocations=999, idle=False,
               schedule=S) is None
    assert due(500.0, last_young=100.0, last_full=100.0, allocations=1_000, idle=False,
               schedule=S) == 1


def test_the_thread_collects_while_idle_with_the_automatic_collector_off():
    fast = Schedule(tick_s=0.01, young_every_s=0.02, full_every_s=0.05)
    collector = IdleCollector(lambda: True, fast).start()
    try:
        assert not gc.isenabled()
        # A full collection of a whole test run's heap can take seconds on a loaded machine:
        # the wait is long, and ends as soon as two have run.
        deadline = time.monotonic() + 30
        while collector.collections[2] < 2 and time.monotonic() < deadline:
            _ = [[] for _ in range(100)]  # something to collect
            time.sleep(0.01)
        assert collector.collections[2] >= 2
        assert collector.collections[1] >= 1
    finally:
        collector.stop()
    assert gc.isenabled()


def test_the_thread_never_collects_everything_while_the_worker_is_busy():
    busy = threading.Event()
    busy.set()
    fast = Schedule(tick_s=0.01, young_every_s=0.01, full_every_s=0.01, max_allocations=10)
    collector = IdleCollector(lambda: not busy.is_set(), fast).start()
    try:
        keep = []
        deadline = time.monotonic() + 5
        while collector.collections[1] < 1 and time.monotonic() < deadline:
            keep.append([[] for _ in range(100)])  # allocations pile up
            time.sleep(0.01)
        assert collector.collections[1] >= 1  # the pile was collected
        assert collector.collections[2] == 0  # but nothing full while busy
        busy.clear()
        while collector.collections[2] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert collector.collections[2] >= 1  # idle again: the full collection comes
    finally:
        collector.stop()
