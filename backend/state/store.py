from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Protocol

import redis

from backend.state import keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LastFix:
    tst: float
    lat: float
    lon: float
    acc: float | None


def _decode_fix(data: dict[bytes, bytes]) -> LastFix | None:
    if not data:
        return None
    acc = data.get(b"acc")
    return LastFix(
        tst=float(data[b"tst"]),
        lat=float(data[b"lat"]),
        lon=float(data[b"lon"]),
        acc=float(acc) if acc not in (None, b"") else None,
    )


class StateStore(Protocol):
    def get_last_fix(self, device_id: str) -> LastFix | None: ...
    def get_last_fixes(self, device_ids: list[str]) -> dict[str, LastFix]: ...
    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None: ...
    def touch(self, seen: dict[str, float]) -> None: ...
    def last_seen(self, device_id: str) -> float | None: ...
    def last_seen_many(self, device_ids: list[str]) -> dict[str, float]: ...


class InMemoryState:
    def __init__(self) -> None:
        self._fixes: dict[str, LastFix] = {}
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def get_last_fix(self, device_id: str) -> LastFix | None:
        return self._fixes.get(device_id)

    def get_last_fixes(self, device_ids: list[str]) -> dict[str, LastFix]:
        return {d: self._fixes[d] for d in device_ids if d in self._fixes}

    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        with self._lock:
            self._fixes.update(fixes)

    def touch(self, seen: dict[str, float]) -> None:
        with self._lock:
            self._seen.update(seen)

    def last_seen(self, device_id: str) -> float | None:
        return self._seen.get(device_id)

    def last_seen_many(self, device_ids: list[str]) -> dict[str, float]:
        return {d: self._seen[d] for d in device_ids if d in self._seen}


class RedisState:
    """Redis-backed state; one pipeline round trip per batch of fixes."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._prefix = prefix

    def get_last_fix(self, device_id: str) -> LastFix | None:
        return _decode_fix(self._r.hgetall(keys.last_fix(self._prefix, device_id)))

    def get_last_fixes(self, device_ids: list[str]) -> dict[str, LastFix]:
        """The last fixes of many devices in one round trip per 1,000."""
        found: dict[str, LastFix] = {}
        for start in range(0, len(device_ids), 1_000):
            chunk = device_ids[start:start + 1_000]
            pipe = self._r.pipeline(transaction=False)
            for device_id in chunk:
                pipe.hgetall(keys.last_fix(self._prefix, device_id))
            for device_id, data in zip(chunk, pipe.execute(), strict=True):
                fix = _decode_fix(data)
                if fix is not None:
                    found[device_id] = fix
        return found


    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        if not fixes:
            return
        pipe = self._r.pipeline(transaction=False)
        for device_id, fix in fixes.items():
            pipe.hset(
                keys.last_fix(self._prefix, device_id),
                mapping={"tst": fix.tst, "lat": fix.lat, "lon": fix.lon,
                         "acc": "" if fix.acc is None else fix.acc},
            )
        pipe.execute()

    def touch(self, seen: dict[str, float]) -> None:
        if not seen:
            return
        pipe = self._r.pipeline(transaction=False)
        for device_id, at in seen.items():
            pipe.set(keys.last_seen(self._prefix, device_id), at)
        pipe.execute()

    def last_seen(self, device_id: str) -> float | None:
        value = self._r.get(keys.last_seen(self._prefix, device_id))
        return float(value) if value is not None else None

    def last_seen_many(self, device_ids: list[str]) -> dict[str, float]:
        """Last-seen times of many devices in one round trip per 1,000."""
        found: dict[str, float] = {}
        for start in range(0, len(device_ids), 1_000):
            chunk = device_ids[start:start + 1_000]
            pipe = self._r.pipeline(transaction=False)
            for device_id in chunk:
                pipe.get(keys.last_seen(self._prefix, device_id))
            for device_id, value in zip(chunk, pipe.execute(), strict=True):
                if value is not None:
                    found[device_id] = float(value)
        return found


class PendingState:
    """The ingest worker's view of the state store: fixes accepted in the batch being processed
    are seen at once by later messages of the same batch, but reach the shared store only after
    the batch has committed (`flush`). A crash before the commit leaves the shared store as it
    was, so the redelivered fixes are evaluated again.

    The store is hot state that can always be rebuilt: when it fails (Redis down), reads answer
    "unknown" and writes are dropped, logged, and ingest goes on storing fixes and raising
    alarms."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._pending: dict[str, LastFix] = {}
        self._seen: dict[str, float] = {}
        self._read: dict[str, LastFix | None] = {}  # what `prefetch` read for this batch

    def prefetch(self, device_ids: list[str]) -> None:
        """Read the last fixes of a batch's devices in one round trip."""
        wanted = [d for d in dict.fromkeys(device_ids) if d not in self._read]
        try:
            found = self.store.get_last_fixes(wanted)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): last fixes unknown", type(exc).__name__)
            found = {}
        for device_id in wanted:
            self._read[device_id] = found.get(device_id)

    def get_last_fix(self, device_id: str) -> LastFix | None:
        pending = self._pending.get(device_id)
        if pending is not None:
            return pending
        if device_id in self._read:
            return self._read[device_id]
        try:
            return self.store.get_last_fix(device_id)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): last fix unknown", type(exc).__name__)
            return None

    def get_last_fixes(self, device_ids: list[str]) -> dict[str, LastFix]:
        return {d: f for d in device_ids if (f := self.get_last_fix(d)) is not None}

    def last_seen_many(self, device_ids: list[str]) -> dict[str, float]:
        return {d: t for d in device_ids if (t := self.last_seen(d)) is not None}

    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        self._pending.update(fixes)

    def touch(self, seen: dict[str, float]) -> None:
        self._seen.update(seen)

    def last_seen(self, device_id: str) -> float | None:
        seen = self._seen.get(device_id)
        if seen is not None:
            return seen
        try:
            return self.store.last_seen(device_id)
        except redis.RedisError:
            return None

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        seen, self._seen = self._seen, {}
        self._read = {}
        try:
            self.store.set_last_fixes(pending)
            self.store.touch(seen)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): %d last fixes not kept",
                        type(exc).__name__, len(pending))
