"""Failed console sign-ins slow down whoever makes them: a password cannot be guessed at speed.

Failures are counted per address and user name, and per address alone (password spraying over
many names). An IPv6 client is counted by its /64, the network one subscriber is given, in which
a host takes any address it likes (one that rotated its address at every try escaped every
count); an IPv4 client by its address, and an IPv4-mapped IPv6 address as the IPv4 address it
carries (`client_subject`).

The first `free` failures of a count cost nothing; each one after that doubles the wait
before the next try may be checked (1 s, 2 s, 4 s, ... up to `max_wait_s`). A count is
forgotten `forget_after_s` after its last failure, and a sign-in that succeeds clears its
address and name's count. A try is counted as a failure the moment its password is to be
checked, in the same step that decides it may be (`LoginThrottle.begin`), and taken back when it
succeeds: tries sent at the same moment do not all see the count from before them. Nothing
locks an account: the desk must be able to sign in from another workstation while someone
hammers at its name from elsewhere, so the counts are kept per address, never per name alone.

The counts live in Redis when it is configured (every API instance sees them) and in the
process otherwise. A Redis that fails lets the sign-in through (the password hash's cost still
bounds the pace): a desk that cannot sign in is the worse outcome. Keys carry a hash of the
address and name, never the name.
"""

from __future__ import annotations

import hashlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import redis

from backend.settings import LoginSettings
from backend.state import keys

log = logging.getLogger(__name__)


IPV6_PREFIX = 64  # an IPv6 client's failures count for every address of its /64


def client_subject(address: str) -> str:
    """What a client's failures are counted under: an IPv4 address as it is, an IPv6 address
    by its /64 (`2001:db8:1:2::/64`), an IPv4-mapped IPv6 address (`::ffff:10.0.0.1`) as its
    IPv4 address; anything that is no address (none known) as given."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        bits = 128 - IPV6_PREFIX
        return str(ipaddress.IPv6Network((int(ip) >> bits << bits, IPV6_PREFIX)))
    return str(ip)


def wait_s(failures: int, free: int, max_wait_s: float) -> float:
    """How long after the last of `failures` failures the next try must wait."""
    if failures < free:
        return 0.0
    return min(max_wait_s, 2.0 ** min(failures - free, 32))


@dataclass(frozen=True, slots=True)
class Count:
    failures: int
    last_at: float


class FailureCounts(Protocol):
    """Counts of failures by key, each forgotten `ttl_s` after its last failure."""

    def get(self, keys: list[str], now: float) -> list[Count | None]: ...
    def take(self, keys: list[str], frees: list[int], max_wait_s: float, now: float,
             ttl_s: float) -> float:
        """In one step: the wait before a try may be checked by the counts of `keys` (each
        with its number of free failures), and when there is none (0) the try counted as a
        failure against every key, so that tries made at the same moment see each other."""
        ...
    def forgive(self, key: str) -> None:
        """Take one failure off the count (a counted try that succeeded)."""
        ...
    def clear(self, key: str) -> None: ...


class MemoryCounts:
    """In this process; the oldest counts go first beyond `max_keys`."""

    def __init__(self, max_keys: int = 100_000) -> None:
        self._counts: dict[str, tuple[Count, float]] = {}  # key -> (count, expires at)
        self._max_keys = max_keys
        self._lock = threading.RLock()  # `take` reads and adds under one hold

    def get(self, keys: list[str], now: float) -> list[Count | None]:
        with self._lock:
            entries = [self._counts.get(k) for k in keys]
        return [e[0] if e is not None and e[1] > now else None for e in entries]

    def _add(self, keys: list[str], now: float, ttl_s: float) -> None:
        with self._lock:
            for key in keys:
                known = self._counts.pop(key, None)
                failures = known[0].failures if known is not None and known[1] > now else 0
                self._counts[key] = (Count(failures + 1, now), now + ttl_s)
            while len(self._counts) > self._max_keys:
                del self._counts[next(iter(self._counts))]

    def take(self, keys: list[str], frees: list[int], max_wait_s: float, now: float,
             ttl_s: float) -> float:
        with self._lock:
            found = self.get(keys, now)
            wait = _wait(found, frees, max_wait_s, now)
            if wait == 0:
                self._add(keys, now, ttl_s)
        return wait

    def forgive(self, key: str) -> None:
        with self._lock:
            known = self._counts.get(key)
            if known is not None and known[0].failures > 0:
                self._counts[key] = (Count(known[0].failures - 1, known[0].last_at), known[1])

    def clear(self, key: str) -> None:
        with self._lock:
            self._counts.pop(key, None)


# `MemoryCounts.take` in Redis, in one step (`wait_s` and `_wait` as Lua). KEYS: the counts;
# ARGV: now, ttl_s, max_wait_s, then the free failures of each key. Returns the wait as text.
TAKE = """
local now, ttl, max_wait = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local wait = 0
for k = 1, #KEYS do
  local failures = tonumber(redis.call('HGET', KEYS[k], 'failures') or '')
  local last_at = tonumber(redis.call('HGET', KEYS[k], 'last_at') or '')
  local free = tonumber(ARGV[3 + k])
  if failures and last_at and failures >= free then
    local w = math.min(max_wait, 2 ^ math.min(failures - free, 32))
    wait = math.max(wait, last_at + w - now)
  end
end
if wait > 0 then return tostring(wait) end
for k = 1, #KEYS do
  redis.call('HINCRBY', KEYS[k], 'failures', 1)
  redis.call('HSET', KEYS[k], 'last_at', ARGV[1])
  redis.call('EXPIRE', KEYS[k], ttl)
end
return '0'
"""


class RedisCounts:
    """A hash per count (`failures`, `last_at`) that Redis expires with it."""

    def __init__(self, client: redis.Redis) -> None:
        self._r = client
        self._take = client.register_script(TAKE)

    def get(self, keys: list[str], now: float) -> list[Count | None]:
        pipe = self._r.pipeline(transaction=False)
        for key in keys:
            pipe.hmget(key, "failures", "last_at")
        found = []
        for failures, last_at in pipe.execute():
            found.append(Count(int(failures), float(last_at))
                         if failures is not None and last_at is not None else None)
        return found

    def take(self, keys: list[str], frees: list[int], max_wait_s: float, now: float,
             ttl_s: float) -> float:
        args = [repr(now), max(1, int(ttl_s)), repr(max_wait_s), *frees]
        return max(0.0, float(self._take(keys=keys, args=args)))

    def forgive(self, key: str) -> None:
        self._r.hincrby(key, "failures", -1)

    def clear(self, key: str) -> None:
        self._r.delete(key)


class LoginThrottle:
    def __init__(self, counts: FailureCounts, settings: LoginSettings, prefix: str = "sw",
                 clock: Callable[[], float] = time.time) -> None:
        self._counts = counts
        self._settings = settings
        self._prefix = prefix
        self._clock = clock

    def _keys(self, address: str, username: str) -> tuple[str, str]:
        name, client = username.strip().lower(), client_subject(address)
        return (self._key("name", f"{client}\n{name}"), self._key("address", client))

    def _key(self, kind: str, subject: str) -> str:
        return keys.login_failures(self._prefix, kind,
                                   hashlib.sha256(subject.encode()).hexdigest()[:32])

    def wait_s(self, address: str, username: str) -> float:
        """Seconds until a sign-in of `username` from `address` may be checked (0: now)."""
        s, now = self._settings, self._clock()
        try:
            found = self._counts.get(list(self._keys(address, username)), now)
        except redis.RedisError as exc:
            log.warning("sign-in failures not read (%s): not throttled", type(exc).__name__)
            return 0.0
        return _wait(found, self._frees(), s.max_wait_s, now)

    def begin(self, address: str, username: str) -> float:
        """A try to sign in: the seconds it must wait before its password may be checked, or 0,
        and then it is counted as a failure already (`succeeded` takes that back): tries sent
        at the same moment are checked one by one, as the count allows, not all at once."""
        s = self._settings
        try:
            return self._counts.take(list(self._keys(address, username)), self._frees(),
                                     s.max_wait_s, self._clock(), s.forget_after_s)
        except redis.RedisError as exc:
            log.warning("sign-in failures not read (%s): not throttled", type(exc).__name__)
            return 0.0

    def _frees(self) -> list[int]:
        return [self._settings.free_failures, self._settings.free_failures_per_address]

    def succeeded(self, address: str, username: str) -> None:
        """A sign-in that succeeded: its address and name's count is cleared, and the try
        `begin` counted is taken off its address's."""
        pair, alone = self._keys(address, username)
        try:
            self._counts.clear(pair)
            self._counts.forgive(alone)
        except redis.RedisError as exc:
            log.warning("sign-in failures not cleared (%s)", type(exc).__name__)


def _wait(found: list[Count | None], frees: list[int], max_wait_s: float, now: float) -> float:
    """The wait the counts found impose, each with its number of free failures."""
    waits = [c.last_at + wait_s(c.failures, free, max_wait_s) - now
             for c, free in zip(found, frees, strict=True) if c is not None]
    return max([0.0, *waits])
