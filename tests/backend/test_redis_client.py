"""The Redis client's breaker: while Redis is away its commands fail at once, and it closes
again when Redis answers (pure, then against a Redis server of the test's own that hangs)."""

from __future__ import annotations

import pytest
import redis

from backend.redis_client import Breaker, RedisAway, connect
from backend.settings import RedisSettings
from loadtests.redis_server import own_redis
from tests.support.waiting import wait_until


class Calls:
    def __init__(self, error: Exception | None = None) -> None:
        self.count = 0
        self.error = error

    def __call__(self) -> str:
        self.count += 1
        if self.error is not None:
            raise self.error
        return "PONG"


def test_a_connection_failure_opens_the_breaker_until_it_is_closed() -> None:
    breaker = Breaker()
    assert breaker.run(Calls()) == "PONG"
    failing = Calls(redis.TimeoutError("no answer"))
    with pytest.raises(redis.TimeoutError):
        breaker.run(failing)
    assert breaker.is_open
    with pytest.raises(RedisAway):  # at once: not even tried
        breaker.run(failing)
    assert failing.count == 1
    breaker.close()
    assert breaker.run(Calls()) == "PONG" and not breaker.is_open


def test_closing_calls_back_each_listener_even_after_one_fails() -> None:
    breaker = Breaker()
    called: list[str] = []

    def failing() -> None:
        called.append("failing")
        raise RuntimeError("a listener's defect")

    breaker.on_close(failing)
    breaker.on_close(lambda: called.append("next"))
    breaker.trip(redis.ConnectionError("away"))
    breaker.close()
    assert called == ["failing", "next"] and not breaker.is_open


def test_a_command_error_is_not_a_connection_failure() -> None:
    breaker = Breaker()
    with pytest.raises(redis.ResponseError):
        breaker.run(Calls(redis.ResponseError("WRONGTYPE")))
    assert not breaker.is_open


@pytest.mark.services
def test_a_hanging_redis_fails_at_once_after_the_first_timeout_and_is_used_again() -> None:
    with own_redis() as server:
        client, probe = connect(RedisSettings(url=server.url, timeout_s=0.2, retry_after_s=0.1))
        try:
            client.set("k", "1")
            server.hang()
            with pytest.raises(redis.TimeoutError):  # the one command that waits
                client.get("k")
            with pytest.raises(RedisAway):
                client.get("k")
            pipe = client.pipeline(transaction=False)
            pipe.get("k")
            with pytest.raises(RedisAway):
                pipe.execute()
            server.resume()
            assert wait_until(lambda: not client.breaker.is_open, timeout=5)
            assert client.get("k") == b"1"
        finally:
            probe.stop()
            client.close()
