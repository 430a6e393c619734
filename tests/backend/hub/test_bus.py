"""The Redis event bus tells its consoles when events may not arrive and when to read again:
against a Redis server of the test's own that hangs, and a publisher whose breaker was open."""

from __future__ import annotations

import asyncio

import orjson
import pytest
import redis

from backend.hub.bus import STREAM_DELAYED, STREAM_RESYNC, RedisBus
from backend.redis_client import connect
from backend.settings import RedisSettings
from loadtests.redis_server import own_redis

pytestmark = pytest.mark.services

EVENT = {"event": "alert.raised", "alert": {"alert_id": "a-1"}}


async def _next(queue: asyncio.Queue[bytes], timeout: float = 5.0) -> dict:
    return orjson.loads(await asyncio.wait_for(queue.get(), timeout))


async def _quiet(queue: asyncio.Queue[bytes], for_s: float) -> bool:
    try:
        await asyncio.wait_for(queue.get(), for_s)
    except TimeoutError:
        return True
    return False


def test_consoles_are_told_when_redis_hangs_and_when_it_answers_again() -> None:
    async def scenario(url: str, server) -> None:
        client = redis.Redis.from_url(url, socket_timeout=0.3)
        bus = RedisBus(client, "swbus", heartbeat_s=0.2, timeout_s=0.3)
        other = RedisBus(redis.Redis.from_url(url, socket_timeout=0.3), "swbus")
        try:
            queue = bus.subscribe()
            await asyncio.sleep(0.3)  # the listener subscribes
            other.publish(EVENT)
            assert await _next(queue) == EVENT
            assert bus.live
            server.hang()
            assert await _next(queue, timeout=3) == STREAM_DELAYED
            assert not bus.live
            server.resume()
            assert await _next(queue, timeout=5) == STREAM_RESYNC
            assert bus.live
            other.publish(EVENT)
            assert await _next(queue) == EVENT
        finally:
            server.resume()
            bus.close()

    with own_redis() as server:
        asyncio.run(scenario(server.url, server))


def test_a_redis_that_answers_its_pings_stays_live() -> None:
    """Pings answered in time: no notice at all, over many heartbeats."""
    async def scenario(url: str) -> None:
        bus = RedisBus(redis.Redis.from_url(url, socket_timeout=0.3), "swbus",
                       heartbeat_s=0.1, timeout_s=0.1)
        try:
            queue = bus.subscribe()
            assert await _quiet(queue, 1.5)
            assert bus.live
        finally:
            bus.close()

    with own_redis() as server:
        asyncio.run(scenario(server.url))


def test_a_publisher_that_lost_events_asks_every_console_to_read_again() -> None:
    """Its events were lost while its breaker was open; the listeners never noticed."""
    async def scenario(url: str) -> None:
        listener = RedisBus(redis.Redis.from_url(url, socket_timeout=0.5), "swbus")
        client, probe = connect(RedisSettings(url=url, retry_after_s=60))
        publisher = RedisBus(client, "swbus")
        try:
            queue = listener.subscribe()
            await asyncio.sleep(0.3)
            client.breaker.trip(redis.ConnectionError("test"))
            client.breaker.close()  # nothing was lost: nothing to read again
            assert await _quiet(queue, 0.5)
            client.breaker.trip(redis.ConnectionError("test"))
            publisher.publish(EVENT)  # fails at once: lost
            client.breaker.close()
            assert await _next(queue) == STREAM_RESYNC
            publisher.publish(EVENT)
            assert await _next(queue) == EVENT
            assert listener.live
        finally:
            listener.close()
            probe.stop()
            client.close()

    with own_redis() as server:
        asyncio.run(scenario(server.url))


def test_the_first_subscriber_gets_an_event_published_right_after_it_subscribed(
        redis_client) -> None:
    """The listener starts with the first subscriber; the subscribe call returns once Redis
    has confirmed its subscription, so an event published at once is not lost."""
    async def scenario() -> None:
        bus = RedisBus(redis_client, "swbus-first")
        try:
            queue = bus.subscribe()
            bus.publish(EVENT)
            assert await _next(queue, timeout=2) == EVENT
        finally:
            bus.close()

    for _ in range(5):  # each a bus of its own: a new listener each time
        asyncio.run(scenario())
