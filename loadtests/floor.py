"""The floor of any alarm path here: paho -> Mosquitto -> paho, one hop and two hops through an
empty relay process (subscribe, republish), QoS 1; and two hops through a relay that commits
each message to PostgreSQL before it republishes it, the floor of any path that stores an alarm
before it forwards it. The payload carries the send time (`time.perf_counter`,
CLOCK_MONOTONIC: comparable across processes on Linux)."""

from __future__ import annotations

import multiprocessing as mp
import struct
import threading
import time
import uuid

import psycopg

from backend.process import freeze_loaded
from loadtests import mqtt
from loadtests.pacing import paced
from loadtests.stats import Latency

_STAMP = struct.Struct("<dI")


def _relay(port: int, source: str, target: str, ready, stop,
           commit_dsn: str | None = None) -> None:  # pragma: no cover - child
    """One client that republishes every message from its own network thread (no hand-off
    between threads), auto-acknowledging the inbound QoS 1 message. With `commit_dsn` it first
    stores the message durably: one prepared INSERT of the payload, autocommitted (its own
    transaction, flushed to the WAL before it returns), as any path that stores before it
    forwards must at least do."""
    conn = None
    if commit_dsn is not None:
        conn = psycopg.connect(commit_dsn, autocommit=True, prepare_threshold=0)

    def on_message(c, userdata, msg) -> None:
        if conn is not None:
            conn.execute(_INSERT, (msg.payload,))
        c.publish(target, msg.payload, qos=1)

    client = mqtt.connect(port, subscribe=[source], on_message=on_message)
    ready.set()
    stop.wait()
    mqtt.close(client)
    if conn is not None:
        conn.close()


_TABLE = "bench_floor_commits"
_INSERT = f"INSERT INTO {_TABLE} (payload) VALUES (%s)"


def _ensure_table(dsn: str) -> None:
    """A plain (logged) table: its inserts are flushed to the WAL at commit like the alerts'."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS {_TABLE} "
                     "(id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, payload bytea)")
        conn.execute(f"TRUNCATE {_TABLE}")


class _Receiver:
    def __init__(self, port: int, topic: str, expected: int) -> None:
        self.latencies_ms: list[float] = []
        self._expected = expected
        self.done = threading.Event()
        self.client = mqtt.connect(port, subscribe=[topic], on_message=self._on_message)

    def _on_message(self, c, userdata, msg) -> None:
        sent, seq = _STAMP.unpack_from(msg.payload)
        if seq >= WARMUP_SEQ:
            self.latencies_ms.append((time.perf_counter() - sent) * 1e3)
        if len(self.latencies_ms) >= self._expected:
            self.done.set()


WARMUP_SEQ = 1_000_000


def stamp_sequence(payload: bytes) -> int:
    """The sequence number a message of `_send` carries (warm-up from 0, measured from
    `WARMUP_SEQ`)."""
    return _STAMP.unpack_from(payload)[1]


def _send(port: int, topic: str, rate_per_s: float, count: int,
          warmup: int) -> None:  # pragma: no cover - child
    sender = mqtt.connect(port)
    padding = b"x" * 150  # about the size of a fix
    def send(seq: int) -> None:
        sender.publish(topic, _STAMP.pack(time.perf_counter(), seq) + padding, qos=1)

    paced(rate_per_s, warmup, send)
    time.sleep(0.3)
    paced(rate_per_s, count, lambda i: send(WARMUP_SEQ + i))
    time.sleep(0.5)
    mqtt.close(sender)


def measure(port: int, rate_per_s: float, count: int, hops: int,
            commit_dsn: str | None = None) -> Latency:
    """A sender process publishes `count` stamped messages at `rate_per_s` (after a short
    warm-up); the latency is taken at the final subscriber in this process. With `commit_dsn`
    (two hops only) the relay commits each message to PostgreSQL before it republishes it."""
    # The listeners are threads of this interpreter: a full collection of what it holds by
    # now (66-88 ms) must not stop one during the measurement.
    freeze_loaded()
    base = f"bench/floor/{uuid.uuid4().hex[:8]}"
    first, last = f"{base}/a", f"{base}/b" if hops == 2 else f"{base}/a"
    ctx = mp.get_context("fork")
    relay = None
    stop = ctx.Event()
    if hops == 2:
        if commit_dsn is not None:
            _ensure_table(commit_dsn)
        ready = ctx.Event()
        relay = ctx.Process(target=_relay, args=(port, first, last, ready, stop, commit_dsn),
                            daemon=True)
        relay.start()
        ready.wait(10)
    receiver = _Receiver(port, last, count)
    sender = ctx.Process(target=_send, args=(port, first, rate_per_s, count, min(200, count // 5)),
                         daemon=True)
    sender.start()
    receiver.done.wait(count / rate_per_s + 15)
    sender.join(10)
    mqtt.close(receiver.client)
    if relay is not None:
        stop.set()
        relay.join(5)
        if relay.is_alive():
            relay.kill()
    return Latency.of(receiver.latencies_ms)


def subscriber_ceiling(port: int, count: int = 100_000, publishers: int = 2) -> float:
    """Messages/s one bare paho subscriber process takes in (QoS 1, auto-ack).

    The subscriber's persistent session is filled while it is offline, then it reconnects and
    drains the queue: the publishers' speed does not enter the number."""
    topic = f"bench/ceiling/{uuid.uuid4().hex[:8]}"
    client_id = f"bench-ceiling-{uuid.uuid4().hex[:8]}"
    received = 0
    first_at = last_at = 0.0
    done = threading.Event()

    def on_message(c, userdata, msg) -> None:
        nonlocal received, first_at, last_at
        now = time.perf_counter()
        if received == 0:
            first_at = now
        received += 1
        last_at = now
        if received >= count:
            done.set()

    mqtt.close(mqtt.connect(port, client_id=client_id, subscribe=[topic], persistent=True))
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_flood, args=(port, topic, count // publishers), daemon=True)
             for _ in range(publishers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    sub = mqtt.connect(port, client_id=client_id, persistent=True, on_message=on_message)
    done.wait(60)
    mqtt.close(sub)
    if received < 2 or last_at <= first_at:
        return 0.0
    return (received - 1) / (last_at - first_at)


def _flood(port: int, topic: str, count: int) -> None:  # pragma: no cover - child
    client = mqtt.connect(port)
    payload = b"x" * 160
    for i in range(count):
        info = client.publish(topic, payload, qos=1)
        if i % 2000 == 1999:
            info.wait_for_publish(10)  # bounded in-flight: do not outrun the broker's memory
    info.wait_for_publish(10)
    mqtt.close(client)
