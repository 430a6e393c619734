"""A lane's inbox: the raw messages the MQTT network thread hands over, taken out in batches.

Each batch costs the lane the same round trips whatever its size (Redis state, one transaction),
so a lane that lingers (`linger_s`) lets a short batch wait until its oldest message has waited
that long, with one sleep, before taking what has arrived. A lane that does not linger (alarms)
takes what is there the moment it is woken.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable

from backend.pipeline.context import RawMessage


class Inbox:
    def __init__(
        self, maxsize: int = 0, linger_s: float = 0.0, *,
        clock: Callable[[], float] = time.time, sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._queue: queue.Queue[RawMessage] = queue.Queue(maxsize)
        self.linger_s = linger_s
        self._clock = clock  # the clock of `RawMessage.received_at`
        self._sleep = sleep
        self._wake = threading.Event()

    def put(self, raw: RawMessage) -> None:
        """Blocks while the inbox is full (paho stops reading: back-pressure to the broker)."""
        self._queue.put(raw)
        self._wake.set()

    def offer(self, raw: RawMessage) -> bool:
        """Put without waiting: False when the inbox is full."""
        try:
            self._queue.put_nowait(raw)
        except queue.Full:
            return False
        self._wake.set()
        return True

    def wake(self) -> None:
        """End a wait in `next_batch` now (the lane is stopping)."""
        self._wake.set()

    def empty(self) -> bool:
        return self._queue.empty()

    def next_batch(self, limit: int, wait_s: float = 0.2) -> list[RawMessage]:
        """Up to `limit` messages, oldest first; empty when none arrived within `wait_s`."""
        self._wake.wait(wait_s)
        self._wake.clear()
        if self.linger_s > 0 and self._queue.qsize() < limit:
            oldest = self._oldest()
            if oldest is not None:
                due = oldest.received_at + self.linger_s - self._clock()
                self._sleep(min(self.linger_s, max(0.0, due)))
        batch: list[RawMessage] = []
        while len(batch) < limit:
            try:
                batch.append(self._queue.get_nowait())
            except queue.Empty:
                break
        if not self._queue.empty():
            self._wake.set()  # more is waiting: no pause before the next batch
        return batch

    def _oldest(self) -> RawMessage | None:
        with self._queue.mutex:
            return self._queue.queue[0] if self._queue.queue else None
