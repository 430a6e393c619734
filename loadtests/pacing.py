"""Open-loop pacing: send at a fixed rate whatever the receiver does."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator


def ticks(rate_per_s: float, duration_s: float, tick_s: float = 0.005) -> Iterator[int]:
    """Yield how many messages to send now, every `tick_s` (or, below one message per tick, when
    the next one is due), so that the running total follows `rate_per_s` (a late tick catches
    up); stops after `duration_s`. Waking once per message instead cost the load generator a
    wake-up per fix, each one preempting the process it loads on a machine of two cores."""
    start = time.perf_counter()
    sent = 0
    total = int(rate_per_s * duration_s)
    while sent < total:
        now = time.perf_counter()
        due = min(total, int((now - start) * rate_per_s) + 1)
        if due > sent:
            yield due - sent
            sent = due
        next_at = start + sent / rate_per_s
        delay = next_at - time.perf_counter()
        if delay > 0:
            time.sleep(max(delay, tick_s))


def paced(rate_per_s: float, count: int, send: Callable[[int], None]) -> None:
    """Call `send(i)` for i in 0..count-1 at `rate_per_s`, one by one (for latency probes)."""
    start = time.perf_counter()
    for i in range(count):
        delay = start + i / rate_per_s - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        send(i)
