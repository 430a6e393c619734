"""The event bus between the alert flow and the console WebSockets.

Not safety-critical by design: the alert is already committed when its event is published, and a
console that (re)connects loads the queue from the API. `InProcessBus` serves one process;
`RedisBus` carries events across processes over Redis pub/sub.

An event lost on the way (Redis away) is not sent again; the consoles are told instead, with two
events about the stream itself that carry nothing and reach every console (`STREAM_NOTICES`):
`stream.delayed` (events may not arrive now: read the queue more often) and `stream.resync`
(they flow again, and some may have been lost meanwhile: read the queue now).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from typing import Any, Protocol

import orjson
import redis

from backend import metrics
from backend.state import keys

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_MAX = 1_000

STREAM_DELAYED: dict[str, Any] = {"event": "stream.delayed"}
STREAM_RESYNC: dict[str, Any] = {"event": "stream.resync"}
STREAM_NOTICES = frozenset({STREAM_DELAYED["event"], STREAM_RESYNC["event"]})


class EventBus(Protocol):
    @property
    def live(self) -> bool:
        """False while events published elsewhere may not reach this process's subscribers."""
        ...

    def publish(self, event: dict[str, Any]) -> None: ...
    def subscribe(self) -> asyncio.Queue[bytes]: ...
    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None: ...
    def subscriber_count(self) -> int: ...


class InProcessBus:
    """Fans events out to asyncio queues; publish() is safe from any thread."""

    live = True

    def __init__(self) -> None:
        self._subscribers: dict[asyncio.Queue[bytes], asyncio.AbstractEventLoop] = {}
        self._lock = threading.Lock()

    def subscribe(self) -> asyncio.Queue[bytes]:
        queue: asyncio.Queue[bytes] = asyncio.Queue(SUBSCRIBER_QUEUE_MAX)
        with self._lock:
            self._subscribers[queue] = asyncio.get_running_loop()
        return queue

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        with self._lock:
            self._subscribers.pop(queue, None)

    def subscriber_count(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, event: dict[str, Any]) -> None:
        self.publish_raw(orjson.dumps(event))

    def publish_raw(self, data: bytes) -> None:
        with self._lock:
            targets = list(self._subscribers.items())
        for queue, loop in targets:
            try:
                loop.call_soon_threadsafe(_offer, queue, data)
            except RuntimeError:  # loop closed: the subscriber is gone
                self.unsubscribe(queue)


def _offer(queue: asyncio.Queue[bytes], data: bytes) -> None:
    try:
        queue.put_nowait(data)
    except asyncio.QueueFull:
        log.warning("console subscriber too slow: event dropped (it reloads on reconnect)")


class RedisSilent(redis.ConnectionError):
    """The listener's connection gave no answer to its pings: the server or the network hangs."""


class RedisBus:
    """Publishes to a Redis channel; a listener thread feeds this process's subscribers.

    The listener pings Redis after `heartbeat_s` without a message. When its connection fails,
    or a ping has no answer within `timeout_s`, it tells this process's subscribers
    `stream.delayed` and connects again; when it hears from Redis again, `stream.resync`. A
    publish that fails is not retried (the alert is stored; consoles read it): once the
    client's breaker closes again (`backend.redis_client`), the bus publishes `stream.resync`,
    so the consoles of every process read what they may have missed, also when their own
    listener never noticed the outage."""

    def __init__(self, client: redis.Redis, prefix: str, heartbeat_s: float = 1.0,
                 timeout_s: float = 0.5) -> None:
        self._r = client
        self._channel = keys.events_channel(prefix)
        self._heartbeat_s = heartbeat_s
        self._timeout_s = timeout_s
        self._local = InProcessBus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._live = True  # until the listener finds otherwise
        self._missed = threading.Event()  # a publish failed since the breaker last closed
        self._listening = threading.Event()  # the listener's subscription is confirmed
        breaker = getattr(client, "breaker", None)
        if breaker is not None:
            breaker.on_close(self._after_outage)

    @property
    def live(self) -> bool:
        return self._live

    def publish(self, event: dict[str, Any]) -> None:
        try:
            self._r.publish(self._channel, orjson.dumps(event))
        except redis.RedisError as exc:
            self._missed.set()
            log.warning("event publish failed: %s", type(exc).__name__)

    def _after_outage(self) -> None:
        if self._missed.is_set():
            self._missed.clear()
            self.publish(STREAM_RESYNC)

    def subscribe(self) -> asyncio.Queue[bytes]:
        self._ensure_listener()
        return self._local.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._local.unsubscribe(queue)

    def subscriber_count(self) -> int:
        return self._local.subscriber_count()

    def _ensure_listener(self) -> None:
        """Start the listener with the first subscriber, and give it `timeout_s` to subscribe:
        an event published before Redis confirmed the subscription would not reach it."""
        if self._thread is None:
            metrics.CONSOLE_EVENTS_LIVE.set(1)
            self._thread = threading.Thread(target=self._listen, name="redis-bus", daemon=True)
            self._thread.start()
            self._listening.wait(self._timeout_s)

    def _listen(self) -> None:
        after_gap = False
        while not self._stop.is_set():
            pubsub = self._r.pubsub()
            try:
                pubsub.subscribe(self._channel)
                self._follow(pubsub, after_gap)
            except redis.RedisError as exc:
                log.warning("console events away (%s): connecting again", type(exc).__name__)
            finally:
                _close_quietly(pubsub)
            after_gap = True
            self._set_live(False)
            self._stop.wait(self._heartbeat_s)

    def _follow(self, pubsub: redis.client.PubSub, after_gap: bool) -> None:
        """Hand the channel's events to the subscribers until stopped; raises when the
        connection fails or stays silent."""
        heard = time.monotonic()
        pinged: float | None = None  # when the ping still unanswered was sent
        while not self._stop.is_set():
            message = pubsub.get_message(timeout=min(0.2, self._heartbeat_s))
            now = time.monotonic()
            if message is not None:  # the subscription's confirmation, a pong or an event
                heard, pinged = now, None
                self._listening.set()
                if after_gap:  # the first answer after a gap
                    self._set_live(True, resync=True)
                    after_gap = False
                if message["type"] == "message":
                    self._local.publish_raw(message["data"])
            elif pinged is not None and now - pinged > self._timeout_s:
                raise RedisSilent(f"no answer to a ping for {now - pinged:.1f} s")
            if pinged is None and now - heard >= self._heartbeat_s:
                pubsub.ping()
                pinged = now

    def _set_live(self, live: bool, resync: bool = False) -> None:
        """Tell the subscribers that events may not arrive (once per gap), or, `resync`, that
        they flow again and what they show should be read again."""
        was, self._live = self._live, live
        metrics.CONSOLE_EVENTS_LIVE.set(1 if live else 0)
        if resync:
            log.info("console events flow again: consoles read their queue again")
            self._local.publish(STREAM_RESYNC)
        elif was and not live:
            self._local.publish(STREAM_DELAYED)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)


def _close_quietly(pubsub: redis.client.PubSub) -> None:
    try:
        pubsub.close()
    except redis.RedisError:
        pass
