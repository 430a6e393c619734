"""A change counter (`backend.cases.changes.ChangeCounter`) that tests move by hand and can
break like an unreachable Redis."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.redis_client import Breaker, GuardedRedis


class FakeCounter:
    def __init__(self) -> None:
        self.value = 0
        self.broken = False

    def current(self) -> int:
        if self.broken:
            raise redis.ConnectionError("down")
        return self.value

    def bump(self) -> None:
        if self.broken:
            raise redis.ConnectionError("down")
        self.value += 1


def guarded_redis(url: str) -> GuardedRedis:
    """The runtime's Redis client (`backend.redis_client`) without its probe: the test opens
    the breaker (Redis away, every command fails at once) and closes it (Redis answers)."""
    client = GuardedRedis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    client.breaker = Breaker()
    return client
