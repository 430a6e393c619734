from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Protocol

import orjson
import redis

from backend.state import keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class LastFix:
    tst: float
    lat: float
    lon: float
    acc: float | None


def encode_fix(fix: LastFix) -> bytes:
    """The stored form of a last fix: "tst lat lon acc" (acc empty when unknown)."""
    acc = "" if fix.acc is None else repr(fix.acc)
    return f"{fix.tst!r} {fix.lat!r} {fix.lon!r} {acc}".encode()


def decode_fix(data: bytes | None) -> LastFix | None:
    """A stored last fix, or None when absent or unreadable (hot state is rebuilt, never
    trusted blindly)."""
    if not data:
        return None
    try:
        tst, lat, lon, acc = data.split(b" ")
        return LastFix(float(tst), float(lat), float(lon), float(acc) if acc else None)
    except ValueError:
        return None


def decode_fix_time(data: bytes | None) -> float | None:
    """The time of a stored last fix, or None as for `decode_fix`; without the rest of it."""
    if not data or data.count(b" ") != 3:
        return None
    try:
        return float(data[:data.index(b" ")])
    except ValueError:
        return None


# Geofence states of one device (measure id -> the engine's state as a dict); {} when the device
# is idle everywhere, which removes it from the store.
Zones = dict[str, dict[str, Any]]


def encode_zones(zones: Zones) -> bytes:
    return orjson.dumps(zones)


def decode_zones(data: bytes | None) -> Zones | None:
    """Stored zone states, or None when absent or unreadable."""
    if not data:
        return None
    try:
        zones = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(zones, dict) or not all(isinstance(s, dict) for s in zones.values()):
        return None
    return zones


class StateStore(Protocol):
    def get_last_fix(self, device_id: str) -> LastFix | None: ...
    def get_last_fixes(self, device_ids: list[str]) -> dict[str, LastFix]: ...
    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None: ...
    def touch(self, seen: dict[str, float]) -> None: ...
    def last_seen(self, device_id: str) -> float | None: ...
    def last_seen_many(self, device_ids: list[str]) -> dict[str, float]: ...
    def read_many(
        self, device_ids: list[str]
    ) -> tuple[dict[str, LastFix], dict[str, float]]: ...
    def write(self, fixes: dict[str, LastFix], seen: dict[str, float],
              zones: dict[str, Zones] | None = None) -> None: ...
    def zone_states(self) -> dict[str, Zones]: ...
    def set_zone_states(self, zones: dict[str, Zones]) -> None: ...
    def read_times(
        self, device_ids: list[str]
    ) -> tuple[list[float | None], list[float | None]]: ...


class InMemoryState:
    def __init__(self) -> None:
        self._fixes: dict[str, LastFix] = {}
        self._seen: dict[str, float] = {}
        self._zones: dict[str, Zones] = {}
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

    def read_many(self, device_ids: list[str]) -> tuple[dict[str, LastFix], dict[str, float]]:
        return self.get_last_fixes(device_ids), self.last_seen_many(device_ids)

    def write(self, fixes: dict[str, LastFix], seen: dict[str, float],
              zones: dict[str, Zones] | None = None) -> None:
        with self._lock:
            self._fixes.update(fixes)
            self._seen.update(seen)
            for device_id, states in (zones or {}).items():
                if states:
                    self._zones[device_id] = states
                else:
                    self._zones.pop(device_id, None)

    def zone_states(self) -> dict[str, Zones]:
        with self._lock:
            return dict(self._zones)

    def set_zone_states(self, zones: dict[str, Zones]) -> None:
        self.write({}, {}, zones)

    def read_times(
        self, device_ids: list[str]
    ) -> tuple[list[float | None], list[float | None]]:
        fixes = [self._fixes.get(d) for d in device_ids]
        return [self._seen.get(d) for d in device_ids], [f.tst if f else None for f in fixes]


class RedisState:
    """Redis-backed state: hashes keyed by device id (`keys.last_fixes`, `keys.last_seen`,
    `keys.zone_states`), so a batch of devices costs one command per hash, whatever its size."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._fixes = keys.last_fixes(prefix)
        self._seen = keys.last_seen(prefix)
        self._zones = keys.zone_states(prefix)

    def get_last_fix(self, device_id: str) -> LastFix | None:
        return decode_fix(self._r.hget(self._fixes, device_id))

    def get_last_fixes(self, device_ids: list[str]) -> dict[str, LastFix]:
        return self.read_many(device_ids)[0]

    def last_seen(self, device_id: str) -> float | None:
        return _float(self._r.hget(self._seen, device_id))

    def last_seen_many(self, device_ids: list[str]) -> dict[str, float]:
        return self.read_many(device_ids)[1]

    def _raw(self, device_ids: list[str]) -> Iterator[tuple[list[str], list, list]]:
        """(device ids, stored fixes, last-seen values) of many devices as Redis has them:
        one round trip per 10,000."""
        for start in range(0, len(device_ids), 10_000):
            chunk = device_ids[start:start + 10_000]
            pipe = self._r.pipeline(transaction=False)
            pipe.hmget(self._fixes, chunk)
            pipe.hmget(self._seen, chunk)
            fix_values, seen_values = pipe.execute()
            yield chunk, fix_values, seen_values

    def read_many(self, device_ids: list[str]) -> tuple[dict[str, LastFix], dict[str, float]]:
        """Last fixes and last-seen times of many devices."""
        fixes: dict[str, LastFix] = {}
        seen: dict[str, float] = {}
        for chunk, fix_values, seen_values in self._raw(device_ids):
            for device_id, data, at in zip(chunk, fix_values, seen_values, strict=True):
                if (fix := decode_fix(data)) is not None:
                    fixes[device_id] = fix
                if (t := _float(at)) is not None:
                    seen[device_id] = t
        return fixes, seen

    def read_times(
        self, device_ids: list[str]
    ) -> tuple[list[float | None], list[float | None]]:
        """When each device was last heard from and the time of its last fix (None: unknown),
        in the order of `device_ids`: what a supervision pass reads of every device, so only
        the times are decoded."""
        seen: list[float | None] = []
        fix_times: list[float | None] = []
        for _, fix_values, seen_values in self._raw(device_ids):
            seen += map(_float, seen_values)
            fix_times += map(decode_fix_time, fix_values)
        return seen, fix_times

    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        self.write(fixes, {})

    def touch(self, seen: dict[str, float]) -> None:
        self.write({}, seen)

    def set_zone_states(self, zones: dict[str, Zones]) -> None:
        self.write({}, {}, zones)

    def write(self, fixes: dict[str, LastFix], seen: dict[str, float],
              zones: dict[str, Zones] | None = None) -> None:
        """Store last fixes, last-seen times and changed zone states in one round trip."""
        zones = zones or {}
        if not fixes and not seen and not zones:
            return
        pipe = self._r.pipeline(transaction=False)
        if fixes:
            pipe.hset(self._fixes, mapping={d: encode_fix(f) for d, f in fixes.items()})
        if seen:
            pipe.hset(self._seen, mapping={d: repr(t) for d, t in seen.items()})
        kept = {d: encode_zones(z) for d, z in zones.items() if z}
        if kept:
            pipe.hset(self._zones, mapping=kept)
        if idle := [d for d, z in zones.items() if not z]:
            pipe.hdel(self._zones, *idle)
        pipe.execute()

    def zone_states(self) -> dict[str, Zones]:
        """Every device's stored zone states (read at a worker's start); unreadable ones are
        left out."""
        found: dict[str, Zones] = {}
        for device_id, data in self._r.hscan_iter(self._zones, count=1_000):
            if (zones := decode_zones(data)) is not None:
                found[device_id.decode()] = zones
        return found


def _float(value: bytes | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


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
        self._zones: dict[str, Zones] = {}
        # What `prefetch` read for this batch: last fixes and last-seen times (None: absent).
        self._read: dict[str, LastFix | None] = {}
        self._read_seen: dict[str, float | None] = {}

    def prefetch(self, device_ids: list[str]) -> None:
        """Read the last fixes and last-seen times of a batch's devices in one round trip."""
        wanted = [d for d in dict.fromkeys(device_ids) if d not in self._read]
        if not wanted:
            return
        try:
            fixes, seen = self.store.read_many(wanted)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): last fixes unknown", type(exc).__name__)
            fixes, seen = {}, {}
        for device_id in wanted:
            self._read[device_id] = fixes.get(device_id)
            self._read_seen[device_id] = seen.get(device_id)

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

    def set_zone_states(self, zones: dict[str, Zones]) -> None:
        """Changed zone states (`Engine.take_changed`), stored with the batch on `flush`."""
        self._zones.update(zones)

    def touch(self, seen: dict[str, float]) -> None:
        self._seen.update(seen)

    def last_seen(self, device_id: str) -> float | None:
        seen = self._seen.get(device_id)
        if seen is not None:
            return seen
        if device_id in self._read_seen:
            return self._read_seen[device_id]
        try:
            return self.store.last_seen(device_id)
        except redis.RedisError:
            return None

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        seen, self._seen = self._seen, {}
        zones, self._zones = self._zones, {}
        self._read, self._read_seen = {}, {}
        try:
            self.store.write(pending, seen, zones)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): %d last fixes, %d zone states not kept",
                        type(exc).__name__, len(pending), len(zones))
