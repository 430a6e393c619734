"""The benchmark's own heap, out of the way of what it measures.

The listeners that stamp arrivals (the floor's subscriber, the police feed, the console
WebSocket, the webhook receiver) are threads of the benchmark's interpreter. A full collection
of what that interpreter holds by then (the seeded fleet, earlier levels' samples) stopped them
for 66-88 ms in a quick run of 6 December, once during a measured level: an arrival it held up
counts as the path's latency.
"""

from __future__ import annotations

import gc


def freeze() -> int:
    """Collect this process's garbage, then move every object alive into the permanent
    generation, out of every later collection's scan (they are still freed when nothing refers
    to them). Call before each measurement; it also makes the processes it forks share those
    pages. Returns how many objects are frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
