"""The Redis client every process uses, with a breaker: Redis holds hot state that can be
rebuilt, so while it is away nothing may wait for it, least of all an alarm.

A Redis that refuses connections fails each command at once. One that hangs (a stopped server,
a network that drops packets) holds each command for the socket timeout (`redis.timeout_s`):
without a breaker, every alarm waited that long once or twice (the console event and the
worker's state), and the alarms behind it waited too. With it, the first command that fails
on the connection (refused or timed out) opens the breaker; from then on every command fails
at once with `RedisAway` (a `redis.ConnectionError`, which every caller already handles) until
a probe in a thread of its own, every `redis.retry_after_s`, finds Redis answering again. No
caller ever waits for the probe.

`pybreaker` was not used: it holds one lock across every call it guards, which would make the
alarm lane wait for the fix lane's round trips. This breaker takes no lock while closed.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from backend.settings import RedisSettings

log = logging.getLogger(__name__)

T = TypeVar("T")


class RedisAway(redis.ConnectionError):
    """Failed at once: the breaker is open (Redis did not answer a moment ago)."""


class Breaker:
    """Open from a connection failure until `close` (the probe found Redis answering)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._opened = threading.Event()  # set while open
        self._on_close: list[Callable[[], None]] = []

    @property
    def is_open(self) -> bool:
        return self._opened.is_set()

    def run(self, call: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        if self._opened.is_set():
            raise RedisAway("Redis away: failing at once until it answers again")
        try:
            return call(*args, **kwargs)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            self.trip(exc)
            raise

    def trip(self, exc: BaseException) -> None:
        with self._lock:
            if self._opened.is_set():
                return
            self._opened.set()
        log.warning("Redis away (%s): its commands fail at once until it answers again",
                    type(exc).__name__)

    def on_close(self, callback: Callable[[], None]) -> None:
        """Call `callback` each time the breaker closes (on the thread that closes it)."""
        self._on_close.append(callback)

    def close(self) -> None:
        self._opened.clear()
        log.info("Redis answers again")
        for callback in self._on_close:
            try:
                callback()
            except Exception:  # noqa: BLE001 - one listener's defect must not stop the probe
                log.exception("breaker close callback failed")


class GuardedRedis(redis.Redis):
    """`redis.Redis` whose commands and pipelines go through a `Breaker` (see the module
    docstring). Build it with `connect`."""

    breaker: Breaker

    def execute_command(self, *args: Any, **options: Any) -> Any:
        return self.breaker.run(super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Any:
        return _GuardedPipeline(super().pipeline(transaction, shard_hint), self.breaker)

    def answers(self) -> bool:
        """PING past the breaker (the probe's question)."""
        try:
            return bool(super().execute_command("PING"))
        except redis.RedisError:
            return False


class _GuardedPipeline:
    """A pipeline whose `execute` (its one round trip) goes through the breaker."""

    def __init__(self, pipe: Any, breaker: Breaker) -> None:
        self._pipe = pipe
        self._breaker = breaker

    def __getattr__(self, name: str) -> Any:
        return getattr(self._pipe, name)

    def __enter__(self) -> _GuardedPipeline:
        return self

    def __exit__(self, *exc: object) -> None:
        self._pipe.reset()

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        return self._breaker.run(self._pipe.execute, raise_on_error)


class Probe:
    """Every `interval_s`, while the breaker is open, asks Redis whether it answers, and closes
    the breaker when it does. A daemon thread, stopped by `stop`."""

    def __init__(self, client: GuardedRedis, interval_s: float) -> None:
        self._client = client
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="redis-probe", daemon=True)

    def start(self) -> Probe:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        breaker = self._client.breaker
        while not self._stop.wait(self._interval_s):
            if breaker.is_open and self._client.answers():
                breaker.close()


def connect(settings: RedisSettings) -> tuple[GuardedRedis, Probe]:
    """The client for `settings.url` with its breaker, and the breaker's probe (started)."""
    assert settings.url is not None
    client = GuardedRedis.from_url(
        settings.url,
        socket_timeout=settings.timeout_s,
        socket_connect_timeout=settings.timeout_s,
        retry_on_timeout=False,
        # No retries of its own, whatever redis-py's default: the breaker decides.
        retry=Retry(NoBackoff(), 0),
    )
    client.breaker = Breaker()
    return client, Probe(client, settings.retry_after_s).start()
