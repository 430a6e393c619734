"""A change counter (`backend.cases.changes.ChangeCounter`) that tests move by hand and can
break like an unreachable Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterable

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.cases.changes import LocalChangeCounter
from backend.redis_client import Breaker, GuardedRedis


class FakeCounter(LocalChangeCounter):
    """The in-memory counter, with a switch that makes every call fail as Redis away does."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = False

    @property
    def value(self) -> int:
        return self._value

    def current(self) -> int:
        if self.broken:
            raise redis.ConnectionError("down")
        return super().current()

    def bump(self, case_ids: Iterable[uuid.UUID] | None = None) -> None:
        if self.broken:
            raise redis.ConnectionError("down")
        super().bump(case_ids)

    def cases_between(self, seen: int, current: int) -> frozenset[uuid.UUID] | None:
        if self.broken:
            raise redis.ConnectionError("down")
        return super().cases_between(seen, current)


def guarded_redis(url: str) -> GuardedRedis:
    """The runtime's Redis client (`backend.redis_client`) without its probe: the test opens
    the breaker (Redis away, every command fails at once) and closes it (Redis answers)."""
    client = GuardedRedis.from_url(url, socket_timeout=2, retry=Retry(NoBackoff(), 0))
    client.breaker = Breaker()
    return client
