"""The event bus between the alert flow and the console WebSockets.

Not safety-critical by design: the alert is already committed when its event is published, and a
console that (re)connects loads the queue from the API. `InProcessBus` serves one process;
`RedisBus` carries events across processes over Redis pub/sub.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any, Protocol

import orjson
import redis

from backend.state import keys

log = logging.getLogger(__name__)

SUBSCRIBER_QUEUE_MAX = 1_000


class EventBus(Protocol):
    def publish(self, event: dict[str, Any]) -> None: ...
    def subscribe(self) -> asyncio.Queue[bytes]: ...
    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None: ...
    def subscriber_count(self) -> int: ...


class InProcessBus:
    """Fans events out to asyncio queues; publish() is safe from any thread."""

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


class RedisBus:
    """Publishes to a Redis channel; a listener thread feeds this process's subscribers."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._r = client
        self._channel = keys.events_channel(prefix)
        self._local = InProcessBus()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def publish(self, event: dict[str, Any]) -> None:
        try:
            self._r.publish(self._channel, orjson.dumps(event))
        except redis.RedisError as exc:
            log.warning("event publish failed: %s", type(exc).__name__)

    def subscribe(self) -> asyncio.Queue[bytes]:
        self._ensure_listener()
        return self._local.subscribe()

    def unsubscribe(self, queue: asyncio.Queue[bytes]) -> None:
        self._local.unsubscribe(queue)

    def subscriber_count(self) -> int:
        return self._local.subscriber_count()

    def _ensure_listener(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._listen, name="redis-bus", daemon=True)
            self._thread.start()

    def _listen(self) -> None:
        while not self._stop.is_set():
            try:
                pubsub = self._r.pubsub(ignore_subscribe_messages=True)
                pubsub.subscribe(self._channel)
                while not self._stop.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is not None:
                        self._local.publish_raw(message["data"])
            except redis.RedisError as exc:
                log.warning("event listener reconnecting: %s", type(exc).__name__)
                self._stop.wait(1.0)

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)
