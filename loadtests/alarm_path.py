"""The alarm path, end to end: a victim device publishes panic (QoS 1) -> the ingest worker
commits the alert -> the police MQTT feed, the device ack, the console WebSocket frame (and a
webhook, when that feature exists) arrive here. The sender is a child process; send and receive
times are `time.perf_counter` (CLOCK_MONOTONIC, comparable across processes on Linux)."""

from __future__ import annotations

import math
import multiprocessing as mp
import random
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from backend.process import freeze_loaded
from device_protocol import Alarm, Topics, codec
from loadtests import mqtt
from loadtests.desk import Desk
from loadtests.pacing import paced
from loadtests.stats import Latency

ROTTERDAM = (51.9225, 4.4792)
SLOWEST = 3  # alarms named per run


def _send_alarms(port: int, root: str, devices: Sequence[str], prefix: str, rate: float,
                 count: int, out, seed: int) -> None:  # pragma: no cover - child
    rng = random.Random(seed)
    topics = Topics(root)
    client = mqtt.connect(port)
    sent: list[tuple[str, float]] = []

    def send(i: int) -> None:
        device = devices[i % len(devices)]
        alarm = Alarm(id=f"{prefix}{i:06d}", kind="panic", tst=time.time(),
                      lat=ROTTERDAM[0] + rng.uniform(-0.02, 0.02),
                      lon=ROTTERDAM[1] + rng.uniform(-0.03, 0.03), acc=8.0, batt=90)
        payload = codec.encode(alarm)
        at = time.perf_counter()
        client.publish(topics.alarm(device), payload, qos=1)
        sent.append((alarm.id, at))

    paced(rate, count, send)
    time.sleep(0.2)
    mqtt.close(client)
    out.send(sent)
    out.close()


@dataclass
class Arrivals:
    """First arrival time per alarm message id on one channel, and how often each message came
    (by the receiver's deduplication key; the message id when there is none)."""

    first: dict[str, float] = field(default_factory=dict)
    seen: dict[object, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, message_id: str | None, at: float, prefix: str, key: object = None) -> None:
        if not message_id or not message_id.startswith(prefix):
            return
        key = message_id if key is None else key
        with self.lock:
            self.first.setdefault(message_id, at)
            self.seen[key] = self.seen.get(key, 0) + 1

    def duplicates(self) -> int:
        return sum(n - 1 for n in self.seen.values() if n > 1)


class Probe:
    """Listens on the police feed, the device acks and the console stream."""

    def __init__(self, port: int, root: str, api_url: str | None, token: str | None) -> None:
        self.prefix = "\0"  # nothing matches until `expect` sets the run's prefix
        self.police, self.ack, self.console = Arrivals(), Arrivals(), Arrivals()
        self.webhook: Arrivals | None = None
        # Acknowledges what the console shows, as the desk would (no escalations pile up).
        self.desk = Desk(api_url, token) if api_url and token else None
        topics = Topics(root)
        self._mqtt = mqtt.connect(
            port, subscribe=[topics.police_filter(), f"{topics.root}/dev/+/ack"],
            on_message=self._on_message,
        )
        self._ws_stop = threading.Event()
        self._ws_ready = threading.Event()
        self._ws_thread: threading.Thread | None = None
        if api_url and token:
            url = api_url.replace("http://", "ws://") + "/api/v1/stream"
            self._ws_thread = threading.Thread(target=self._ws_loop, args=(url, token),
                                               name="console", daemon=True)
            self._ws_thread.start()
            self._ws_ready.wait(10)

    def on_webhook(self, message_id: str | None, at: float) -> None:
        if self.webhook is not None:
            self.webhook.note(message_id, at, self.prefix)

    def expect(self, prefix: str) -> None:
        self.prefix = prefix

    def _on_message(self, c, userdata, msg) -> None:
        at = time.perf_counter()
        if msg.topic.endswith("/ack"):
            self.ack.note(codec.decode_ack(msg.payload).ref, at, self.prefix)
        else:
            # Receivers deduplicate the feed by (alert_id, sequence, escalation step)
            # (docs/protocol.md): an escalation to the police unit is a message of its own.
            doc = codec.decode_document(msg.payload)
            key = (doc.get("alert_id"), doc.get("sequence"),
                   (doc.get("escalation") or {}).get("step"))
            self.police.note(doc.get("message_id"), at, self.prefix, key)

    def _ws_loop(self, url: str, token: str) -> None:
        protocols = [Subprotocol("bearer"), Subprotocol(token)]
        with ws_connect(url, subprotocols=protocols, open_timeout=10) as ws:
            self._ws_ready.set()
            while not self._ws_stop.is_set():
                try:
                    frame = ws.recv(timeout=0.5)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                at = time.perf_counter()
                event = orjson.loads(frame)
                if event.get("event") == "alert.raised":
                    alert = event.get("alert", {})
                    self.console.note(alert.get("message_id"), at, self.prefix)
                    if self.desk is not None and alert.get("alert_id"):
                        self.desk.saw(alert["alert_id"])

    @property
    def console_connected(self) -> bool:
        return self._ws_ready.is_set() and self._ws_thread is not None

    def close(self) -> None:
        self._ws_stop.set()
        if self._ws_thread is not None:
            self._ws_thread.join(5)
        if self.desk is not None:
            self.desk.close()
        mqtt.close(self._mqtt)


@dataclass
class AlarmRun:
    sent: int
    police: Latency
    ack: Latency
    console: Latency | None
    webhook: Latency | None
    police_missing: int
    police_duplicates: int
    console_missing: int | None
    webhook_missing: int | None
    # The police feed's slowest alarms: (message id, latency ms, wall-clock time it was sent),
    # slowest first, to find them in the processes' logs (SW_BENCH_LOG_DIR).
    slowest: list[tuple[str, float, float]] = field(default_factory=list)


def run_alarms(probe: Probe, port: int, root: str, devices: Sequence[str], prefix: str,
               rate: float, count: int, settle_s: float = 30.0) -> AlarmRun:
    """Send `count` panic alarms at `rate` and collect their latencies on each channel."""
    # The listeners are threads of this interpreter: a full collection of what it holds by
    # now (66-88 ms) must not stop one during the measurement.
    freeze_loaded()
    probe.expect(prefix)
    ctx = mp.get_context("fork")
    receiver, sender_end = ctx.Pipe(duplex=False)
    sender = ctx.Process(target=_send_alarms,
                         args=(port, root, list(devices), prefix, rate, count, sender_end, 11),
                         daemon=True)
    sender.start()
    sender_end.close()
    sent: list[tuple[str, float]] = receiver.recv() if receiver.poll(count / rate + 60) else []
    sender.join(10)
    deadline = time.monotonic() + settle_s
    while time.monotonic() < deadline:
        done = len(probe.police.first) >= len(sent)
        done = done and (not probe.console_connected or len(probe.console.first) >= len(sent))
        if done and (probe.webhook is None or len(probe.webhook.first) >= len(sent)):
            break
        time.sleep(0.1)
    time.sleep(0.5)  # late duplicates
    sent_at = dict(sent)

    def latencies(arrivals: Arrivals) -> list[float]:
        """One sample per alarm sent: an alarm that never arrived counts as infinitely late,
        so a percentile is only finite when enough alarms arrived."""
        return [(arrivals.first[m] - t) * 1e3 if m in arrivals.first else math.inf
                for m, t in sent_at.items()]

    console = Latency.of(latencies(probe.console)) if probe.console_connected else None
    hook = probe.webhook
    wall_offset = time.time() - time.perf_counter()
    police = dict(zip(sent_at, latencies(probe.police), strict=True))
    slowest = sorted(police, key=police.__getitem__, reverse=True)[:SLOWEST]
    return AlarmRun(
        sent=len(sent),
        police=Latency.of(list(police.values())),
        ack=Latency.of(latencies(probe.ack)),
        console=console,
        webhook=Latency.of(latencies(hook)) if hook is not None else None,
        police_missing=sum(1 for m in sent_at if m not in probe.police.first),
        police_duplicates=probe.police.duplicates(),
        console_missing=(sum(1 for m in sent_at if m not in probe.console.first)
                         if probe.console_connected else None),
        webhook_missing=(sum(1 for m in sent_at if m not in hook.first)
                         if hook is not None else None),
        slowest=[(m, police[m], sent_at[m] + wall_offset) for m in slowest],
    )
