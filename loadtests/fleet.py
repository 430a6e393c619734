"""A background fleet: a child process that publishes GPS fixes (protocol v1, QoS 1) for many
devices at a fixed total rate, each fix encoded by `device_protocol`."""

from __future__ import annotations

import multiprocessing as mp
import os
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass

from backend.process import set_niceness
from device_protocol import Fix, Topics, codec
from loadtests import mqtt
from loadtests.pacing import ticks
from loadtests.stack import NICE


@dataclass(frozen=True, slots=True)
class FleetDevice:
    device_id: str
    lat: float
    lon: float


class FixMaker:
    """The fleet's next fix, round robin over its devices: GPS noise about each device's place,
    and a fix time after that device's previous one. A late tick sends many fixes at one `now`;
    in a small fleet that is the same device more than once, and fixes with one device and fix
    time are one ping (a redelivery) to the worker: the fleet would have counted fixes that are
    never stored."""

    MIN_STEP_S = 0.001

    def __init__(self, devices: Sequence[FleetDevice], rng: random.Random) -> None:
        self.devices = devices
        self._rng = rng
        self._i = rng.randrange(len(devices))
        self._last = [0.0] * len(devices)

    def next(self, now: float) -> tuple[int, Fix]:
        """(index of the device, its fix) at `now`, epoch seconds."""
        i, rng = self._i, self._rng
        self._i = (i + 1) % len(self.devices)
        d = self.devices[i]
        tst = self._last[i] = max(now, self._last[i] + self.MIN_STEP_S)
        return i, Fix(tst=tst, lat=d.lat + rng.gauss(0, 0.0003),
                      lon=d.lon + rng.gauss(0, 0.0005), acc=rng.choice((5.0, 8.0, 12.0, 25.0)),
                      vel=rng.uniform(0, 2), batt=80)


def _publish_fixes(port: int, root: str, devices: Sequence[FleetDevice], rate: float,
                   duration_s: float, sent, stop, seed: int) -> None:  # pragma: no cover - child
    # Devices are elsewhere in service: their load generator yields the CPU to the alarm path
    # as much as the fix worker does (both at niceness 5, each in a session of its own).
    os.setsid()
    set_niceness(NICE["ingest"])
    maker = FixMaker(devices, random.Random(seed))
    topics = Topics(root)
    loc_topics = [topics.loc(d.device_id) for d in devices]
    client = mqtt.connect(port)
    count = 0
    info = None
    for due in ticks(rate, duration_s):
        if stop.is_set():
            break
        now = time.time()
        for _ in range(due):
            i, fix = maker.next(now)
            info = client.publish(loc_topics[i], codec.encode(fix), qos=1)
            count += 1
        sent.value = count
    if info is not None:
        info.wait_for_publish(10)
    sent.value = count
    mqtt.close(client)


class Fleet:
    """Start with `start()`, wait with `join()`; `sent` is the number of fixes published."""

    def __init__(self, port: int, root: str, devices: Sequence[FleetDevice], rate: float,
                 duration_s: float, processes: int = 1, seed: int = 7) -> None:
        ctx = mp.get_context("fork")
        self._counters = [ctx.Value("q", 0, lock=False) for _ in range(processes)]
        self._stop = ctx.Event()
        share = max(1, len(devices) // processes)
        self._procs = [
            ctx.Process(
                target=_publish_fixes,
                args=(port, root, devices[k * share:(k + 1) * share] or devices, rate / processes,
                      duration_s, self._counters[k], self._stop, seed + k),
                daemon=True,
            )
            for k in range(processes)
        ]
        self.started_at = 0.0

    def start(self) -> Fleet:
        self.started_at = time.perf_counter()
        for p in self._procs:
            p.start()
        return self

    @property
    def sent(self) -> int:
        return sum(int(c.value) for c in self._counters)

    def alive(self) -> bool:
        return any(p.is_alive() for p in self._procs)

    def join(self, timeout_s: float = 30.0) -> None:
        for p in self._procs:
            p.join(timeout_s)
            if p.is_alive():
                p.kill()

    def stop(self) -> None:
        """Stop publishing; every fix counted in `sent` has been handed to the broker."""
        self._stop.set()
        self.join(15.0)
