"""The change counter in Redis, and a reader of it: a move since the last read, and after a
read that failed (Redis away), a move whatever the next good read finds; the cases named by the
raises since, when every raise named its cases and is still in the log."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from backend.cases.changes import (
    EVERYTHING,
    LOG_SIZE,
    NOTHING,
    RESTART_BELOW,
    ChangeCounter,
    ChangeReader,
    LocalChangeCounter,
    Moves,
    RedisChangeCounter,
)
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
        redis_client.delete(key, f"{key}:log")


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
        client.delete(key, f"{key}:log")
        client.close()


def test_a_reader_that_never_read_is_unsure_after_a_failed_read_too() -> None:
    counter = FakeCounter()
    counter.broken = True
    reader = ChangeReader(counter)
    assert reader.moved() is None
    counter.broken = False
    assert reader.moved() is True


@pytest.fixture(params=["redis", "local"])
def counter(request, redis_client: redis.Redis) -> Iterator[ChangeCounter]:
    if request.param == "local":
        yield LocalChangeCounter()
        return
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    counter = RedisChangeCounter(redis_client, key)
    counter.bump()  # started (at random) before the readers read it
    yield counter
    redis_client.delete(key, f"{key}:log")


def test_a_reader_is_told_the_cases_of_the_raises_since_its_last_read(counter) -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    reader = ChangeReader(counter)
    assert reader.read() == NOTHING
    counter.bump([a])
    counter.bump([b, a])
    assert reader.read() == Moves(cases=frozenset({a, b}))
    assert reader.read() == NOTHING
    counter.bump([b])
    assert reader.read() == Moves(cases=frozenset({b}))


def test_a_raise_that_names_no_case_moves_everything(counter) -> None:
    reader = ChangeReader(counter)
    reader.read()
    counter.bump([uuid.uuid4()])
    counter.bump()
    assert reader.read() == EVERYTHING
    assert reader.moved() is False


def test_raises_no_longer_in_the_log_move_everything(counter) -> None:
    reader = ChangeReader(counter)
    reader.read()
    for _ in range(LOG_SIZE + 1):
        counter.bump([uuid.uuid4()])
    assert reader.read() == EVERYTHING
    for _ in range(LOG_SIZE):  # exactly what the log holds
        counter.bump([uuid.uuid4()])
    moves = reader.read()
    assert not moves.everything and len(moves.cases) == LOG_SIZE


def test_a_counter_started_anew_moves_everything(redis_client: redis.Redis) -> None:
    """After a flush the counter starts at random; a counter raised by an older release (up
    to 2^62, beyond what a Redis score holds exactly) starts anew below 2^50 too."""
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    counter = RedisChangeCounter(redis_client, key)
    reader = ChangeReader(counter)
    try:
        counter.bump([uuid.uuid4()])
        reader.read()
        redis_client.delete(key, f"{key}:log")  # flushed
        counter.bump([uuid.uuid4()])
        assert reader.read() == EVERYTHING
        redis_client.set(key, 2**62)  # as an older release left it
        reader.read()
        counter.bump([uuid.uuid4()])
        assert counter.current() <= RESTART_BELOW
        assert reader.read() == EVERYTHING
        case = uuid.uuid4()
        counter.bump([case])
        assert reader.read() == Moves(cases=frozenset({case}))
        assert redis_client.zcard(f"{key}:log") == 2  # what came before the restart is gone
        redis_client.delete(key)  # the counter alone lost (evicted): its log goes with it
        counter.bump([case])
        assert redis_client.zcard(f"{key}:log") == 1
    finally:
        redis_client.delete(key, f"{key}:log")


def test_a_failed_read_of_the_log_leaves_the_reader_unsure() -> None:
    counter = FakeCounter()
    reader = ChangeReader(counter)
    reader.read()
    counter.bump([uuid.uuid4()])
    counter.broken = True
    assert reader.read() is None
    counter.broken = False
    assert reader.read() == EVERYTHING


def test_a_log_entry_that_cannot_be_read_moves_everything(redis_client: redis.Redis) -> None:
    """Whatever lies in the log (written by hand, by another release), a reader goes on: it
    reloads everything rather than fail at every read and never reload again."""
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    counter = RedisChangeCounter(redis_client, key)
    reader = ChangeReader(counter)
    try:
        counter.bump()
        reader.read()
        counter.bump([uuid.uuid4()])
        n = counter.current()
        redis_client.zremrangebyscore(f"{key}:log", n, n)  # its entry, replaced by junk
        redis_client.zadd(f"{key}:log", {f"{n} not-a-case-id": n})
        assert reader.read() == EVERYTHING
        counter.bump([uuid.uuid4()])
        assert not reader.read().everything
    finally:
        redis_client.delete(key, f"{key}:log")


def test_a_counter_that_is_no_number_reads_as_unreadable(redis_client: redis.Redis) -> None:
    key = f"swtest{uuid.uuid4().hex[:8]}:case_changes"
    reader = ChangeReader(RedisChangeCounter(redis_client, key))
    try:
        redis_client.set(key, "eleven")
        assert reader.read() is None  # as with Redis away: the periodic reload goes on
        redis_client.set(key, 11)
        assert reader.read() == EVERYTHING
    finally:
        redis_client.delete(key, f"{key}:log")
