"""A Redis client for a server that is not there: every command fails at once (nothing
listens on port 1, and no retries), as the runtime's client fails when Redis is down."""

from __future__ import annotations

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry


def unreachable_redis() -> redis.Redis:
    return redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
