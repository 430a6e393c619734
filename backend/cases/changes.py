"""The change counter: every process raises it after it changed cases, contacts or devices, and
whatever a process keeps of them (case snapshots, the device directory) is reloaded when it
moves. In Redis for a deployment of several processes (`RedisChangeCounter`), in memory for one
(`LocalChangeCounter`).

Each raise names the cases it changed, when the process knows them, in a log of the last
`LOG_SIZE` raises beside the counter: a reader whose counter moved by raises that are all in the
log reloads only those cases (`Moves.cases`); any other move (a raise that named no case, one
no longer in the log, a counter started anew) reloads everything (`Moves.everything`). At
150,000 devices that is a query of a few rows instead of 1-6 s of a worker's interpreter.

Each reader of the counter keeps its own `ChangeReader`, which also applies the rule for a
counter that could not be read: a process that changed something while Redis was away could
not raise the counter then, so a reader that failed to read it takes its next good read as a
move of everything, whatever it reads.
"""

from __future__ import annotations

import secrets
import threading
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

import redis

from backend.state import keys

LOG_SIZE = 1_000  # raises whose cases a reader can still be told
RESTART_BELOW = 2**50  # a counter starts anew below this (exact as a Redis score, a double)


@dataclass(frozen=True)
class Moves:
    """What changed since a reader's last read of the counter."""

    cases: frozenset[uuid.UUID] = frozenset()  # these cases (and their devices) changed
    everything: bool = False  # changes not known one by one: reload everything

    @property
    def moved(self) -> bool:
        return self.everything or bool(self.cases)


NOTHING = Moves()
EVERYTHING = Moves(everything=True)


class ChangeCounter(Protocol):
    """A counter every process raises after it changed cases, contacts or devices, so that the
    others drop what they keep of them (`RedisChangeCounter`; tests use a fake)."""

    def current(self) -> int: ...

    def bump(self, case_ids: Iterable[uuid.UUID] | None = None) -> None:
        """Raise the counter; `case_ids` the cases changed (None: not known which)."""

    def cases_between(self, seen: int, current: int) -> frozenset[uuid.UUID] | None:
        """The cases named by the raises after `seen` up to `current`, or None when not every
        one of them is known (one named no case, or is no longer in the log)."""


def _names(case_ids: Iterable[uuid.UUID] | None) -> str:
    """What a log entry says of the cases a raise changed: their ids, or "*" for unknown."""
    return "*" if case_ids is None else ",".join(str(c) for c in case_ids)


def _cases(entries: Iterable[str], seen: int, current: int) -> frozenset[uuid.UUID] | None:
    """The cases of log entries ("<number> <ids>|*"), when they are exactly the raises after
    `seen` up to `current`. An entry that cannot be read names no case it can be trusted for."""
    numbers: set[int] = set()
    cases: set[uuid.UUID] = set()
    for entry in entries:
        number, _, ids = entry.partition(" ")
        if ids == "*":
            return None
        try:
            numbers.add(int(number))
            cases.update(uuid.UUID(i) for i in ids.split(",") if i)
        except ValueError:
            return None
    if numbers != set(range(seen + 1, current + 1)):
        return None
    return frozenset(cases)


# Raise the counter (started anew at ARGV[1] when missing, or when it outgrew exact doubles,
# its log emptied then: an old raise must not outrank the new ones) and log the raise under
# its number, keeping the last ARGV[3] raises: one atomic step.
_BUMP = """
if redis.call('SET', KEYS[1], ARGV[1], 'NX') then
  redis.call('DEL', KEYS[2])
end
local n = redis.call('INCR', KEYS[1])
if n >= tonumber(ARGV[4]) then
  n = tonumber(ARGV[1])
  redis.call('SET', KEYS[1], ARGV[1])
  redis.call('DEL', KEYS[2])
end
redis.call('ZADD', KEYS[2], n, string.format('%d', n) .. ' ' .. ARGV[2])
redis.call('ZREMRANGEBYRANK', KEYS[2], 0, -tonumber(ARGV[3]) - 1)
return n
"""


class RedisChangeCounter:
    """The counter at `key`, its log at `log_key` (one cluster slot: `backend.state.keys`)."""

    def __init__(self, client: redis.Redis, key: str, log_key: str | None = None) -> None:
        self._r = client
        self._key = key
        self._log = log_key or f"{key}:log"
        self._bump = client.register_script(_BUMP)

    @classmethod
    def of_prefix(cls, client: redis.Redis, prefix: str) -> RedisChangeCounter:
        """The deployment's counter under a Redis key prefix (`redis.key_prefix`)."""
        return cls(client, keys.case_changes(prefix), keys.case_changes_log(prefix))

    def current(self) -> int:
        return int(self._r.get(self._key) or 0)

    def bump(self, case_ids: Iterable[uuid.UUID] | None = None) -> None:
        # After a flush or a restart of Redis the counter starts again from a random value, not
        # from 0: a worker that read n before must not read n again after n changes and miss
        # them (until then it reads 0, which is a move as well).
        self._bump(keys=[self._key, self._log],
                   args=[secrets.randbelow(RESTART_BELOW) + 1, _names(case_ids), LOG_SIZE,
                         2**52])

    def cases_between(self, seen: int, current: int) -> frozenset[uuid.UUID] | None:
        if not 0 < current - seen <= LOG_SIZE:
            return None
        entries = self._r.zrangebyscore(self._log, f"({seen}", current)
        return _cases((e.decode() if isinstance(e, bytes) else e for e in entries),
                      seen, current)


class LocalChangeCounter:
    """The change counter of a deployment without Redis: one process, so one counter in memory."""

    def __init__(self) -> None:
        self._value = 0
        self._log: deque[str] = deque(maxlen=LOG_SIZE)
        self._lock = threading.Lock()

    def current(self) -> int:
        return self._value

    def bump(self, case_ids: Iterable[uuid.UUID] | None = None) -> None:
        with self._lock:
            self._value += 1
            self._log.append(f"{self._value} {_names(case_ids)}")

    def cases_between(self, seen: int, current: int) -> frozenset[uuid.UUID] | None:
        with self._lock:
            entries = [e for e in self._log if seen < int(e.partition(" ")[0]) <= current]
        return _cases(entries, seen, current)


class ChangeReader:
    """One reader's view of the counter: whether it moved since the last read. A read that
    fails leaves the reader unsure, and its next good read counts as a move: a change may have
    been made meanwhile that its process could not count."""

    def __init__(self, counter: ChangeCounter) -> None:
        self._counter = counter
        self._seen: int | None = None  # the counter as last read
        self._unsure = False  # a read failed since: a change may have been missed
        self._lock = threading.Lock()  # one read at a time: none counts a move twice or never

    def read(self) -> Moves | None:
        """Read the counter: what changed since the last read (everything after a read that
        failed since), NOTHING on the first read, None when it cannot be read (Redis away)."""
        with self._lock:
            try:
                current = self._counter.current()
                if self._unsure:
                    moves = EVERYTHING
                elif self._seen is None or current == self._seen:
                    moves = NOTHING
                else:
                    cases = self._counter.cases_between(self._seen, current)
                    moves = EVERYTHING if cases is None else Moves(cases=cases)
            except (redis.RedisError, ValueError):  # away, or a counter that is no number
                self._unsure = True
                return None
            self._seen, self._unsure = current, False
            return moves

    def moved(self) -> bool | None:
        """Read the counter: True when anything moved since the last read or a read failed
        since, False when not (or on the first read), None when it cannot be read."""
        moves = self.read()
        return None if moves is None else moves.moved
