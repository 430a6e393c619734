"""The change counter in Redis, and a reader of it: a move since the last read, and after a
read that failed (Redis away), a move whatever the next good read finds."""

from __future__ import annotations

import uuid

import redis

from backend.cases.changes import ChangeReader, RedisChangeCounter
from tests.conftest import REDIS_URL
from tests.support.changes import FakeCounter, guarded_redis


def test_the_redis_counter_is_shared_and_starts_anew_at_random(
        redis_client: redis.Redis) -> None:
    """After a flush or a restart of Redis the counter starts from a random value: a worker
    that read n before must not read n again after n changes."""
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    a, b = RedisChangeCounter(redis_client, key), RedisChangeCounter(redis_client, key)
    try:
        assert a.current() == 0
        b.bump()
        first = a.current()
        assert first > 1
        b.bump()
        assert a.current() == first + 1
        redis_client.delete(key)  # flushed
        b.bump()
        assert a.current() not in (0, first, first + 1)
    finally:
        redis_client.delete(key)


def test_a_reader_sees_each_move_once() -> None:
    counter = FakeCounter()
    reader = ChangeReader(counter)
    assert reader.moved() is False  # the first read: nothing to compare with
    assert reader.moved() is False
    counter.bump()
    assert reader.moved() is True
    assert reader.moved() is False


def test_after_a_failed_read_the_next_good_read_is_a_move() -> None:
    """Redis away, then back: another process may have changed something meanwhile without
    being able to raise the counter (real Redis, the runtime's client with its breaker)."""
    client = guarded_redis(REDIS_URL)
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    reader = ChangeReader(RedisChangeCounter(client, key))
    try:
        assert reader.moved() is False
        client.breaker.trip(redis.ConnectionError("away"))
        assert reader.moved() is None
        client.breaker.close()
        assert reader.moved() is True  # the counter did not move, but a change may be missed
        assert reader.moved() is False
    finally:
        client.delete(key)
        client.close()


def test_a_reader_that_never_read_is_unsure_after_a_failed_read_too() -> None:
    counter = FakeCounter()
    counter.broken = True
    reader = ChangeReader(counter)
    assert reader.moved() is None
    counter.broken = False
    assert reader.moved() is True
