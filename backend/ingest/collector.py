"""Garbage collection between alarms, for a worker that handles only alarms.

Python collects when enough objects have been allocated, and an alarm worker allocates almost
only while it raises an alarm: its collections start in the middle of alarms. A full one stops
every thread for as long as it scans what is alive (10-14 ms in the benchmark's alarm worker,
which freezes what it loads at start; 50-120 ms in processes that did not). Here the automatic
collector is off, and a thread of its own collects when the worker is idle: no alarm being
raised or queued, no follow-up waiting. An alarm that arrives during such a collection waits
for it, as it would for any; but none starts inside an alarm.

`due` (pure) decides which generation to collect; `IdleCollector` is the thread. If the worker
is never idle for long, the young generations are still collected once `max_allocations`
objects have piled up, alarm or not: memory stays bounded."""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Schedule:
    tick_s: float = 0.2  # how often the thread looks
    young_every_s: float = 1.0  # generations 0 and 1, when idle
    full_every_s: float = 60.0  # every generation, when idle
    # Allocations (net of deallocations) since the last collection past which the young
    # generations are collected even when the worker is busy.
    max_allocations: int = 200_000


def due(now: float, last_young: float, last_full: float, allocations: int, idle: bool,
        schedule: Schedule) -> int | None:
    """The generation to collect now (2: everything, 1: the young ones), or None."""
    if not idle:
        return 1 if allocations >= schedule.max_allocations else None
    if now - last_full >= schedule.full_every_s:
        return 2
    if now - last_young >= schedule.young_every_s and allocations > 0:
        return 1
    return None


class IdleCollector:
    """Turns the automatic collector off while it runs and collects when `idle()` says so."""

    def __init__(self, idle: Callable[[], bool], schedule: Schedule = Schedule(),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._idle = idle
        self._schedule = schedule
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.collections = [0, 0, 0]  # per generation, by this thread

    def start(self) -> IdleCollector:
        gc.disable()
        self._thread = threading.Thread(target=self._run, name="ingest-gc", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
        gc.enable()

    def _run(self) -> None:
        last_young = last_full = self._clock()
        while not self._stop.wait(self._schedule.tick_s):
            try:
                now = self._clock()
                generation = due(now, last_young, last_full, gc.get_count()[0],
                                 self._idle(), self._schedule)
                if generation is None:
                    continue
                gc.collect(generation)
                self.collections[generation] += 1
                last_young = now
                if generation == 2:
                    last_full = now
            except Exception:  # noqa: BLE001 - the worker lives on; collect the usual way
                log.exception("idle collector failed; automatic collection is back on")
                gc.enable()
                return
