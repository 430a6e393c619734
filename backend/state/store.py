from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

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


@dataclass(frozen=True, slots=True)
class ClockReading:
    """What a device's own clock showed on a message it sent live (not held for a coverage
    gap): when the message was received (server time) and how far the device time it carried
    ran behind that (negative: ahead)."""

    received_at: float
    behind: float


def encode_clock(reading: ClockReading) -> bytes:
    """The stored form of a clock reading: "received_at behind"."""
    return f"{reading.received_at!r} {reading.behind!r}".encode()


def decode_clock(data: bytes | None) -> ClockReading | None:
    """A stored clock reading, or None when absent or unreadable."""
    if not data:
        return None
    try:
        received_at, behind = data.split(b" ")
        return ClockReading(float(received_at), float(behind))
    except ValueError:
        return None


# Geofence states of one device (measure id -> the engine's state as a dict); {} when the device
# is idle everywhere, which removes it from the store.
Zones = dict[str, dict[str, Any]]
# Changed geofence states of one device (`Engine.take_changed`): measure id -> its state now, None
# when it is idle now (removed). A write merges them into the device's stored states, measure by
# measure, so it never takes back what another worker wrote of the device's other measures.
ZoneChanges = dict[str, dict[str, Any] | None]


def merge_zones(states: Zones | None, changes: ZoneChanges) -> Zones:
    """A device's states with these changes applied (a new dict: `states` is left as it is)."""
    merged = dict(states or {})
    for measure_id, state in changes.items():
        if state is None:
            merged.pop(measure_id, None)
        else:
            merged[measure_id] = state
    return merged


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


@dataclass(slots=True)
class Stored:
    """What the store holds of some devices: last fixes, last-seen times, zone states and clock
    readings (a device absent from a dict: nothing known, or idle everywhere for zones). The
    pending view's layers hold zone changes (`ZoneChanges`) instead of zone states."""

    fixes: dict[str, LastFix] = field(default_factory=dict)
    seen: dict[str, float] = field(default_factory=dict)
    zones: dict[str, Zones] = field(default_factory=dict)
    clocks: dict[str, ClockReading] = field(default_factory=dict)

    def update(self, newer: Stored) -> None:
        """Let `newer` override, device by device, and for zone changes measure by measure."""
        self.fixes.update(newer.fixes)
        self.seen.update(newer.seen)
        for device_id, changes in newer.zones.items():
            self.zones[device_id] = {**self.zones.get(device_id, {}), **changes}
        self.clocks.update(newer.clocks)

    def __bool__(self) -> bool:
        return bool(self.fixes or self.seen or self.zones or self.clocks)


class StoredTimes(NamedTuple):
    """What a supervision pass reads of every device (`StateStore.read_times`): when each was
    last heard from and the time of its last fix, in the order asked (None: unknown), and since
    when the store has held them (epoch seconds). A time missing may have been lost with the
    store (Redis restarted without persistence, or flushed) if the device was heard before
    `since`; one heard since then is in the store."""

    seen: list[float | None]
    fixes: list[float | None]
    since: float


class StateStore(Protocol):
    def get_last_fix(self, device_id: str) -> LastFix | None: ...
    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None: ...
    def touch(self, seen: dict[str, float]) -> None: ...
    def last_seen(self, device_id: str) -> float | None: ...
    def get_clock(self, device_id: str) -> ClockReading | None: ...
    def set_clocks(self, clocks: dict[str, ClockReading]) -> None: ...
    def read_many(self, device_ids: list[str]) -> Stored: ...
    def write(self, fixes: dict[str, LastFix], seen: dict[str, float],
              zones: dict[str, ZoneChanges] | None = None,
              clocks: dict[str, ClockReading] | None = None) -> None: ...
    def set_zone_states(self, zones: dict[str, ZoneChanges]) -> None: ...
    def read_times(self, device_ids: list[str]) -> StoredTimes: ...
    def forget_fixes_before(self, cutoff: float) -> int: ...


class InMemoryState:
    def __init__(self) -> None:
        self._fixes: dict[str, LastFix] = {}
        self._seen: dict[str, float] = {}
        self._zones: dict[str, Zones] = {}
        self._clocks: dict[str, ClockReading] = {}
        self._lock = threading.Lock()
        self._begun = time.time()  # the process's state starts empty

    def get_last_fix(self, device_id: str) -> LastFix | None:
        return self._fixes.get(device_id)

    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        with self._lock:
            self._fixes.update(fixes)

    def touch(self, seen: dict[str, float]) -> None:
        with self._lock:
            self._seen.update(seen)

    def last_seen(self, device_id: str) -> float | None:
        return self._seen.get(device_id)

    def get_clock(self, device_id: str) -> ClockReading | None:
        return self._clocks.get(device_id)

    def set_clocks(self, clocks: dict[str, ClockReading]) -> None:
        self.write({}, {}, None, clocks)

    def read_many(self, device_ids: list[str]) -> Stored:
        with self._lock:
            return Stored({d: self._fixes[d] for d in device_ids if d in self._fixes},
                          {d: self._seen[d] for d in device_ids if d in self._seen},
                          {d: self._zones[d] for d in device_ids if d in self._zones},
                          {d: self._clocks[d] for d in device_ids if d in self._clocks})

    def write(self, fixes: dict[str, LastFix], seen: dict[str, float],
              zones: dict[str, ZoneChanges] | None = None,
              clocks: dict[str, ClockReading] | None = None) -> None:
        """Newest wins and zone changes are merged, as in `RedisState.write`."""
        with self._lock:
            written = set()
            for device_id, fix in fixes.items():
                stored = self._fixes.get(device_id)
                if stored is None or fix.tst >= stored.tst:
                    self._fixes[device_id] = fix
                    written.add(device_id)
            too_late = time.time() + SEEN_AHEAD_S
            for device_id, at in seen.items():
                stored = self._seen.get(device_id, float("-inf"))
                if at > stored or stored > too_late:
                    self._seen[device_id] = at
            for device_id, reading in (clocks or {}).items():
                old = self._clocks.get(device_id)
                if (old is None or reading.received_at > old.received_at
                        or old.received_at > too_late):
                    self._clocks[device_id] = reading
            for device_id, changes in (zones or {}).items():
                if device_id in fixes and device_id not in written:
                    continue
                # A new dict: `read_many` handed out the old one.
                if states := merge_zones(self._zones.get(device_id), changes):
                    self._zones[device_id] = states
                else:
                    self._zones.pop(device_id, None)

    def set_zone_states(self, zones: dict[str, ZoneChanges]) -> None:
        self.write({}, {}, zones)

    def read_times(self, device_ids: list[str]) -> StoredTimes:
        """As `RedisState.read_times`; held since this store was made (the process started)."""
        fixes = [self._fixes.get(d) for d in device_ids]
        return StoredTimes([self._seen.get(d) for d in device_ids],
                           [f.tst if f else None for f in fixes], self._begun)

    def forget_fixes_before(self, cutoff: float) -> int:
        """As `RedisState.forget_fixes_before`."""
        with self._lock:
            old = [d for d, fix in self._fixes.items() if fix.tst < cutoff]
            for device_id in old:
                del self._fixes[device_id]
                self._zones.pop(device_id, None)
                if self._seen.get(device_id, cutoff) < cutoff:
                    del self._seen[device_id]
                reading = self._clocks.get(device_id)
                if reading is not None and reading.received_at < cutoff:
                    del self._clocks[device_id]
            return len(old)


# `RedisState.write` in one round trip, newest wins: a fix replaces the stored one only if it is
# not older, a last-seen time only if it is later, and the zone changes of a device whose fix is
# in the same write only with that fix (they were evaluated from it); other zone changes (a
# contact-ban partner moved, a measure went away) are written as they come. Zone changes are
# merged into the device's stored states measure by measure, so a write about one measure (a
# contact ban's state, kept under the offender, changed by a fix of the victim) never takes back
# what another worker wrote of another measure of the device (the zone the offender just
# entered). So two fix workers flushing the same device at once leave the newer fix and its
# changes, whichever writes last, and each other's changes of other measures.
# The stored form of a device's states is the JSON object `encode_zones` writes; the script
# takes it apart into each measure's key and value as JSON text (`split_zones`) and puts it
# together again, without decoding a value: numbers keep every digit (cjson would keep 14).
# KEYS: last fixes, last seen, zone states. ARGV: the number of fixes, then per fix its device,
# time and stored form; the number of last-seen times and `SEEN_AHEAD_S`, then per time its
# device and value; the number of zone entries, then per entry its device, "1" when it goes with
# a fix of this write and the number of its changes, then per change the measure id and the
# state as JSON ("" removes: idle); the number of clock readings
# (KEYS[4]), then per reading its device, time received and stored form: a reading replaces the
# stored one only if it was received later. A stored last-seen time (or clock reading) further
# ahead of Redis's clock than `SEEN_AHEAD_S` (written by a node whose clock ran ahead) is
# replaced by the next one written, so that the device is not taken for heard until then.
SEEN_AHEAD_S = 60  # a last-seen time further ahead of the clock is not kept against a later write
WRITE_NEWEST = """
local find, sub = string.find, string.sub
local function string_end(s, i)  -- s[i] is '"': the index of the closing quote
  while true do
    local j = find(s, '["\\\\]', i + 1)
    if not j or sub(s, j, j) == '"' then return j end
    i = j + 1  -- an escape: skip the character after the backslash
  end
end
local function value_end(s, i)  -- the index of the last character of the JSON value at s[i]
  local c = sub(s, i, i)
  if c == '"' then return string_end(s, i) end
  if c ~= '{' and c ~= '[' then
    local j = find(s, '[,}%]]', i)
    return j and j - 1
  end
  if c == '{' then
    -- A flat object (as every state is) is found at once: the first balanced braces, where no
    -- other brace or backslash lies between them and their quotes pair up (so the closing
    -- brace is not in a string). Else the slow way below.
    local _, e = find(s, '^%b{}', i)
    if e and find(s, '[{}\\\\]', i + 1) == e then
      local _, quotes = string.gsub(sub(s, i, e), '"', '')
      if quotes % 2 == 0 then return e end
    end
  end
  local depth = 0
  while true do
    local j = find(s, '["{}%[%]]', i)
    if not j then return nil end
    c = sub(s, j, j)
    if c == '"' then
      j = string_end(s, j)
      if not j then return nil end
    elseif c == '{' or c == '[' then
      depth = depth + 1
    else
      depth = depth - 1
      if depth == 0 then return j end
    end
    i = j + 1
  end
end
-- A stored JSON object of states -> its keys in order and key -> value, both as JSON text; an
-- unreadable one (which a reader takes for none) -> none.
local function split_zones(s)
  local order, values = {}, {}
  if not s or sub(s, 1, 1) ~= '{' or s == '{}' then return order, values end
  local i = 2
  while true do
    local k = sub(s, i, i) == '"' and string_end(s, i)
    local e = k and sub(s, k + 1, k + 1) == ':' and value_end(s, k + 2)
    if not e then return {}, {} end
    local key = sub(s, i, k)
    if not values[key] then order[#order + 1] = key end
    values[key] = sub(s, k + 2, e)
    local c = sub(s, e + 1, e + 1)
    if c == '}' then return order, values end
    if c ~= ',' then return {}, {} end
    i = e + 2
  end
end
local i = 1
local written = {}
local count = tonumber(ARGV[i]); i = i + 1
for _ = 1, count do
  local device, tst, value = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]; i = i + 3
  local stored = redis.call('HGET', KEYS[1], device)
  local stored_tst = stored and tonumber(string.match(stored, '^(%S+) '))
  if not stored_tst or tst >= stored_tst then
    redis.call('HSET', KEYS[1], device, value)
    written[device] = true
  end
end
count = tonumber(ARGV[i]); i = i + 1
local clock = redis.call('TIME')
local too_late = tonumber(clock[1]) + tonumber(ARGV[i]); i = i + 1
for _ = 1, count do
  local device, at = ARGV[i], ARGV[i + 1]; i = i + 2
  local stored = tonumber(redis.call('HGET', KEYS[2], device) or '')
  if not stored or tonumber(at) > stored or stored > too_late then
    redis.call('HSET', KEYS[2], device, at)
  end
end
count = tonumber(ARGV[i]); i = i + 1
for _ = 1, count do
  local device, with_fix, changes = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2]); i = i + 3
  if with_fix ~= '1' or written[device] then
    local order, values = split_zones(redis.call('HGET', KEYS[3], device))
    for _ = 1, changes do
      local key, value = ARGV[i], ARGV[i + 1]; i = i + 2
      if value == '' then
        values[key] = nil
      else
        if not values[key] then order[#order + 1] = key end
        values[key] = value
      end
    end
    local parts = {}
    for _, key in ipairs(order) do
      if values[key] then parts[#parts + 1] = key .. ':' .. values[key] end
    end
    if #parts == 0 then
      redis.call('HDEL', KEYS[3], device)
    else
      redis.call('HSET', KEYS[3], device, '{' .. table.concat(parts, ',') .. '}')
    end
  else
    i = i + 2 * changes
  end
end
count = tonumber(ARGV[i] or '0'); i = i + 1
for _ = 1, count do
  local device, at, value = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]; i = i + 3
  local stored = redis.call('HGET', KEYS[4], device)
  local stored_at = stored and tonumber(string.match(stored, '^(%S+) '))
  if not stored_at or at > stored_at or stored_at > too_late then
    redis.call('HSET', KEYS[4], device, value)
  end
end
return 1
"""


# Forgets the devices in ARGV[2..] whose newest fix is older than ARGV[1] (epoch seconds): their
# last fix, zone states and, when older too, their last-seen time and clock reading. Checked here
# again, as the devices were found by a scan: one that reported since keeps its state.
FORGET_BEFORE = """
local cutoff = tonumber(ARGV[1])
local forgotten = 0
for i = 2, #ARGV do
  local device = ARGV[i]
  local stored = redis.call('HGET', KEYS[1], device)
  local tst = stored and tonumber(string.match(stored, '^(%S+) '))
  if tst and tst < cutoff then
    redis.call('HDEL', KEYS[1], device)
    redis.call('HDEL', KEYS[3], device)
    local seen = tonumber(redis.call('HGET', KEYS[2], device) or '')
    if seen and seen < cutoff then redis.call('HDEL', KEYS[2], device) end
    local clock = redis.call('HGET', KEYS[4], device)
    local clock_at = clock and tonumber(string.match(clock, '^(%S+) '))
    if clock and (not clock_at or clock_at < cutoff) then redis.call('HDEL', KEYS[4], device) end
    forgotten = forgotten + 1
  end
end
return forgotten
"""

# Carries the three hashes written under earlier names (KEYS[1..3]: last fixes, last seen, zone
# states) over to their names now (KEYS[4..6]), device by device, newest wins as in
# `WRITE_NEWEST`: an old fix, with its zone states (none: idle), where this version holds no fix
# of the device or an older one; old zone states without an old fix where this version holds
# neither; the later last-seen time. A device absent from a zone hash is idle everywhere, so
# states are never taken apart from the fix they were evaluated with. The old hashes go.
CARRY_OVER = """
local function tst(value)
  return value and tonumber(string.match(value, '^(%S+) '))
end
local old = redis.call('HGETALL', KEYS[1])
for i = 1, #old, 2 do
  local device, value = old[i], old[i + 1]
  local stored = tst(redis.call('HGET', KEYS[4], device))
  local mine = tst(value)
  if not stored or (mine and mine > stored) then
    redis.call('HSET', KEYS[4], device, value)
    local zones = redis.call('HGET', KEYS[3], device)
    if zones then
      redis.call('HSET', KEYS[6], device, zones)
    else
      redis.call('HDEL', KEYS[6], device)
    end
  end
end
old = redis.call('HGETALL', KEYS[3])
for i = 1, #old, 2 do
  local device = old[i]
  if redis.call('HEXISTS', KEYS[1], device) == 0 and redis.call('HEXISTS', KEYS[4], device) == 0
      then
    redis.call('HSETNX', KEYS[6], device, old[i + 1])
  end
end
old = redis.call('HGETALL', KEYS[2])
for i = 1, #old, 2 do
  local stored = tonumber(redis.call('HGET', KEYS[5], old[i]) or '')
  local mine = tonumber(old[i + 1])
  if mine and (not stored or mine > stored) then
    redis.call('HSET', KEYS[5], old[i], old[i + 1])
  end
end
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
return 1
"""


class RedisState:
    """Redis-backed state: hashes keyed by device id (`keys.last_fixes`, `keys.last_seen`,
    `keys.zone_states`), so a batch of devices costs one round trip, whatever its size. A
    write keeps the newest of what concurrent writers store (`WRITE_NEWEST`)."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._fixes = keys.last_fixes(prefix)
        self._seen = keys.last_seen(prefix)
        self._zones = keys.zone_states(prefix)
        self._clocks = keys.clock_readings(prefix)
        self._write_newest = client.register_script(WRITE_NEWEST)
        self._forget_before = client.register_script(FORGET_BEFORE)
        self._prefix = prefix

    def carry_over(self) -> list[str]:
        """Take over the hashes an earlier version wrote under other names (`keys.untagged`),
        so that an upgrade keeps every device's last fix and zone states instead of starting
        them idle as after a flush. Safe to run in every process at once; on a Redis that
        fails, logged and left for the next start (hot state: the worker goes on without it).
        Returns the names carried over. Each old name is looked for alone first: on Redis
        Cluster, where the old and new names lie in different slots, the earlier version's
        script never ran, so there is nothing to carry and the six-key script is not sent."""
        carried: list[str] = []
        names = keys.untagged(self._prefix)
        try:
            present = [old for old in names if self._r.exists(old)]
            if present:
                self._r.eval(CARRY_OVER, 6, *names, *names.values())
                carried = present
        except redis.RedisError as exc:
            log.warning("state store not carried over from earlier key names: %s",
                        type(exc).__name__)
        if carried:
            log.info("state store carried over from earlier key names keys=%s",
                     ",".join(carried))
        return carried

    def get_last_fix(self, device_id: str) -> LastFix | None:
        return decode_fix(self._r.hget(self._fixes, device_id))

    def last_seen(self, device_id: str) -> float | None:
        return _float(self._r.hget(self._seen, device_id))

    def get_clock(self, device_id: str) -> ClockReading | None:
        return decode_clock(self._r.hget(self._clocks, device_id))

    def set_clocks(self, clocks: dict[str, ClockReading]) -> None:
        self.write({}, {}, None, clocks)

    def _raw(self, device_ids: list[str]
             ) -> Iterator[tuple[list[str], list, list, list, list]]:
        """(device ids, stored fixes, last-seen values, zone states and clock readings) of many
        devices as Redis has them: one round trip per 10,000."""
        for start in range(0, len(device_ids), 10_000):
            chunk = device_ids[start:start + 10_000]
            pipe = self._r.pipeline(transaction=False)
            pipe.hmget(self._fixes, chunk)
            pipe.hmget(self._seen, chunk)
            pipe.hmget(self._zones, chunk)
            pipe.hmget(self._clocks, chunk)
            yield chunk, *pipe.execute()

    def read_many(self, device_ids: list[str]) -> Stored:
        """Last fixes, last-seen times, zone states and clock readings of many devices
        (unreadable ones are left out)."""
        found = Stored()
        for chunk, fix_values, seen_values, zone_values, clock_values in self._raw(device_ids):
            for device_id, data, at, states, clock in zip(
                    chunk, fix_values, seen_values, zone_values, clock_values, strict=True):
                if (fix := decode_fix(data)) is not None:
                    found.fixes[device_id] = fix
                if (t := _float(at)) is not None:
                    found.seen[device_id] = t
                if (zones := decode_zones(states)) is not None:
                    found.zones[device_id] = zones
                if (reading := decode_clock(clock)) is not None:
                    found.clocks[device_id] = reading
        return found

    def read_times(self, device_ids: list[str]) -> StoredTimes:
        """When each device was last heard from and the time of its last fix (None: unknown),
        in the order of `device_ids`: what a supervision pass reads of every device, so only
        the times are decoded. And since when the store holds them: the later of the two
        hashes' `keys.BEGUN` fields, each set to this process's clock where it is absent (a
        hash that was lost, or never written), in the first round trip, which it adds nothing
        to; one round trip per 10,000 devices, as before."""
        seen: list[float | None] = []
        fix_times: list[float | None] = []
        at = time.time()
        begun: list[float | None] = []
        for start in range(0, max(len(device_ids), 1), 10_000):
            chunk = device_ids[start:start + 10_000]
            pipe = self._r.pipeline(transaction=False)
            if start == 0:
                for key in (self._seen, self._fixes):
                    pipe.hsetnx(key, keys.BEGUN, repr(at))
                    pipe.hget(key, keys.BEGUN)
            if chunk:
                pipe.hmget(self._seen, chunk)
                pipe.hmget(self._fixes, chunk)
            answers = pipe.execute()
            if start == 0:
                begun, answers = [_float(a) for a in answers[1:4:2]], answers[4:]
            if chunk:
                seen += map(_float, answers[0])
                fix_times += map(decode_fix_time, answers[1])
        return StoredTimes(seen, fix_times, max((b for b in begun if b is not None), default=at))

    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        self.write(fixes, {})

    def touch(self, seen: dict[str, float]) -> None:
        self.write({}, seen)

    def forget_fixes_before(self, cutoff: float) -> int:
        """Forget where the devices whose newest fix is older than `cutoff` (epoch seconds) last
        were: their last fix and zone states (and their last-seen time, when older too), as
        the pings' retention deletes their stored fixes. Scanned in steps of 1,000, so Redis
        is never held for long; returns how many devices were forgotten."""
        keys_ = [self._fixes, self._seen, self._zones, self._clocks]
        forgotten, cursor = 0, 0
        while True:
            cursor, entries = self._r.hscan(self._fixes, cursor, count=1_000)
            old = [device for device, data in entries.items()
                   if (tst := decode_fix_time(data)) is not None and tst < cutoff]
            if old:
                forgotten += self._forget_before(keys=keys_, args=[repr(cutoff), *old])
            if cursor == 0:
                return forgotten

    def set_zone_states(self, zones: dict[str, ZoneChanges]) -> None:
        self.write({}, {}, zones)

    def write(self, fixes: dict[str, LastFix], seen: dict[str, float],
              zones: dict[str, ZoneChanges] | None = None,
              clocks: dict[str, ClockReading] | None = None) -> None:
        """Store last fixes, last-seen times, zone changes and clock readings in one round
        trip, newest wins and zone changes merged measure by measure (`WRITE_NEWEST`)."""
        zones, clocks = zones or {}, clocks or {}
        if not fixes and not seen and not zones and not clocks:
            return
        args: list[Any] = [len(fixes)]
        for d, f in fixes.items():
            args += (d, repr(f.tst), encode_fix(f))
        args += (len(seen), SEEN_AHEAD_S)
        for d, t in seen.items():
            args += (d, repr(t))
        args.append(len(zones))
        dumps = orjson.dumps
        for d, changes in zones.items():
            args += (d, b"1" if d in fixes else b"", len(changes))
            for m, state in changes.items():
                args += (dumps(m), b"" if state is None else dumps(state))
        args.append(len(clocks))
        for d, c in clocks.items():
            args += (d, repr(c.received_at), encode_clock(c))
        self._write_newest(keys=[self._fixes, self._seen, self._zones, self._clocks],
                           args=args)


def _float(value: bytes | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


class PendingState:
    """The ingest worker's view of the state store: fixes accepted in the batch being processed
    are seen at once by later messages of the same batch, but reach the shared store only after
    the batch has committed (`flush`). A crash before the commit leaves the shared store as it
    was, so the redelivered fixes are evaluated again; so does a batch that is handled again
    after a failure (`begin` forgets what it left).

    The store is hot state that can always be rebuilt: when it fails (Redis down), reads answer
    "unknown" and ingest goes on storing fixes and raising alarms. What a flush could not write
    is kept (the newest per device, so at most one entry per device) and written with the next
    flush; until then this view answers with it."""

    def __init__(self, store: StateStore) -> None:
        self.store = store
        self._batch = Stored()  # written by the batch being handled
        self._unwritten = Stored()  # of earlier batches, which a failed flush could not write
        # What was read from the store for this batch (a device absent: not read yet).
        self._read: dict[
            str, tuple[LastFix | None, float | None, Zones | None, ClockReading | None]] = {}

    def begin(self) -> None:
        """Start a batch: forget what a batch that was not stored wrote and what was read."""
        self._batch = Stored()
        self._read = {}

    def prefetch(self, device_ids: list[str]) -> None:
        """Read the state of a batch's devices in one round trip; with the store away, they
        are read (and found unknown) one by one later."""
        try:
            self._fetch(device_ids)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): last fixes unknown", type(exc).__name__)

    def _fetch(self, device_ids: list[str]) -> None:
        wanted = [d for d in dict.fromkeys(device_ids) if d not in self._read]
        if wanted:
            found = self.store.read_many(wanted)
            for d in wanted:
                self._read[d] = (found.fixes.get(d), found.seen.get(d), found.zones.get(d),
                                 found.clocks.get(d))

    def read_many(self, device_ids: list[str]) -> Stored:
        """The state of these devices as this view sees it: this batch's writes, then those
        not yet written, then the store's. Raises `redis.RedisError` when the store cannot be
        read (a caller that must tell "unknown" from "absent")."""
        self._fetch(device_ids)
        found = Stored()
        for d in dict.fromkeys(device_ids):
            fix, seen, zones, clock = self._read[d]
            if fix is not None:
                found.fixes[d] = fix
            if seen is not None:
                found.seen[d] = seen
            if zones:
                found.zones[d] = zones
            if clock is not None:
                found.clocks[d] = clock
        for layer in (self._unwritten, self._batch):
            found.fixes.update((d, layer.fixes[d]) for d in device_ids if d in layer.fixes)
            found.seen.update((d, layer.seen[d]) for d in device_ids if d in layer.seen)
            found.clocks.update((d, layer.clocks[d]) for d in device_ids if d in layer.clocks)
            for d in device_ids:
                if d in layer.zones:
                    if states := merge_zones(found.zones.get(d), layer.zones[d]):
                        found.zones[d] = states
                    else:
                        found.zones.pop(d, None)
        return found

    def _layered(self, device_id: str, field: str, read_at: int, stored: Callable[[str], Any]
                 ) -> Any:
        """A device's value of `field` as the batch sees it: written in this batch or not yet
        flushed, else as prefetched (`read_at` in the prefetched tuple), else from the store
        (None while it is away)."""
        for layer in (self._batch, self._unwritten):
            if (value := getattr(layer, field).get(device_id)) is not None:
                return value
        if device_id in self._read:
            return self._read[device_id][read_at]
        try:
            return stored(device_id)
        except redis.RedisError as exc:
            log.warning("state store unavailable (%s): %s unknown", type(exc).__name__, field)
            return None

    def get_last_fix(self, device_id: str) -> LastFix | None:
        return self._layered(device_id, "fixes", 0, self.store.get_last_fix)

    def last_seen(self, device_id: str) -> float | None:
        return self._layered(device_id, "seen", 1, self.store.last_seen)

    def get_clock(self, device_id: str) -> ClockReading | None:
        return self._layered(device_id, "clocks", 3, self.store.get_clock)

    def set_clocks(self, clocks: dict[str, ClockReading]) -> None:
        self._batch.clocks.update(clocks)

    def set_last_fixes(self, fixes: dict[str, LastFix]) -> None:
        self._batch.fixes.update(fixes)

    def touch(self, seen: dict[str, float]) -> None:
        self._batch.seen.update(seen)

    def set_zone_states(self, zones: dict[str, ZoneChanges]) -> None:
        """Changed zone states (`Engine.take_changed`), stored with the batch on `flush`."""
        batch = self._batch.zones
        for device_id, changes in zones.items():
            batch[device_id] = {**batch.get(device_id, {}), **changes}

    def flush(self) -> None:
        """Write the batch (after its commit), with what earlier flushes could not write."""
        writes, self._unwritten = self._unwritten, Stored()
        writes.update(self._batch)
        self._batch, self._read = Stored(), {}
        if not writes:
            return
        try:
            self.store.write(writes.fixes, writes.seen, writes.zones, writes.clocks)
        except redis.RedisError as exc:
            self._unwritten = writes
            log.warning("state store unavailable (%s): %d last fixes, %d zone states kept "
                        "for the next batch", type(exc).__name__, len(writes.fixes),
                        len(writes.zones))
