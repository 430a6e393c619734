"""The change counter: every process raises it after it changed cases, contacts or devices, and
whatever a process keeps of them (case snapshots, the device directory) is reloaded when it
moves. In Redis for a deployment of several processes (`RedisChangeCounter`), in memory for one
(`LocalChangeCounter`).

Each reader of the counter keeps its own `ChangeReader`, which also applies the rule for a
counter that could not be read: a process that changed something while Redis was away could
not raise the counter then, so a reader that failed to read it takes its next good read as a
move, whatever it reads.
"""

from __future__ import annotations

import secrets
import threading
from typing import Protocol

import redis


class ChangeCounter(Protocol):
    """A counter every process raises after it changed cases, contacts or devices, so that the
    others drop what they keep of them (`RedisChangeCounter`; tests use a fake)."""

    def current(self) -> int: ...
    def bump(self) -> None: ...


class RedisChangeCounter:
    def __init__(self, client: redis.Redis, key: str) -> None:
        self._r = client
        self._key = key

    def current(self) -> int:
        return int(self._r.get(self._key) or 0)

    def bump(self) -> None:
        # After a flush or a restart of Redis the counter starts again from a random value, not
        # from 0: a worker that read n before must not read n again after n changes and miss
        # them (until then it reads 0, which is a move as well).
        pipe = self._r.pipeline(transaction=True)
        pipe.set(self._key, secrets.randbelow(2**62) + 1, nx=True)
        pipe.incr(self._key)
        pipe.execute()


class LocalChangeCounter:
    """The change counter of a deployment without Redis: one process, so one counter in memory."""

    def __init__(self) -> None:
        self._value = 0
        self._lock = threading.Lock()

    def current(self) -> int:
        return self._value

    def bump(self) -> None:
        with self._lock:
            self._value += 1


class ChangeReader:
    """One reader's view of the counter: whether it moved since the last read. A read that
    fails leaves the reader unsure, and its next good read counts as a move: a change may have
    been made meanwhile that its process could not count."""

    def __init__(self, counter: ChangeCounter) -> None:
        self._counter = counter
        self._seen: int | None = None  # the counter as last read
        self._unsure = False  # a read failed since: a change may have been missed
        self._lock = threading.Lock()  # one read at a time: none counts a move twice or never

    def moved(self) -> bool | None:
        """Read the counter: True when it moved since the last read or a read failed since,
        False when not (or on the first read), None when it cannot be read (Redis away)."""
        with self._lock:
            try:
                current = self._counter.current()
            except redis.RedisError:
                self._unsure = True
                return None
            moved = self._unsure or (self._seen is not None and current != self._seen)
            self._seen, self._unsure = current, False
            return moved
