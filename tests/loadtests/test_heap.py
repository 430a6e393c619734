"""The benchmark's heap frozen before a measurement: what is alive is out of later scans,
garbage is collected, not frozen."""

from __future__ import annotations

import gc
import weakref

from loadtests import heap


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_what_is_alive_is_frozen_and_garbage_is_collected():
    kept = [Node() for _ in range(10_000)]  # instances: always tracked by the collector
    a, b = Node(), Node()
    a.other, b.other = b, a  # a cycle: only the collector frees it
    gone = weakref.ref(a)
    del a, b
    before = gc.get_freeze_count()
    frozen = heap.freeze()
    assert frozen >= before + len(kept)
    assert gone() is None
    assert not any(obj is kept for obj in gc.get_objects())  # no collection scans it now
