"""Run a scenario or a fleet over a transport, with a progress bar and a summary table.

Simulated time is paced against the wall clock: `speed` 1 is real time, 10 is ten times faster,
0 is as fast as the transport takes it. Device timestamps are chosen so that no message claims a
time later than the moment it is published: at speed 1 they are exact; when accelerated the run
is anchored to end "now", so earlier messages look older than they are (a backend may see them
as late).

Given an `AlertSource` (a callable returning the alerts the backend raised so far, e.g. read from
its API), the runner waits for the expected alerts and reports what was raised, what matched, and
the latency from publish to alert: from the start of the publish of the message that made the
alert due to the alert's first sighting outside the backend (`RaisedAlert.seen_at`; with `--api`
its `alert.raised` frame on the console stream). Without a sighting no latency is shown.

`main(argv)` is the command line (`schildwacht simulate ...` delegates to it). With
`--api URL --token TOKEN` (or `$SCHILDWACHT_SIMULATOR_TOKEN`) each scenario, or the fleet, is
first registered with that backend (`simulator.backend`: exercise cases, their devices, a
scenario's measures; ids carry a run id so repeated runs never collide), and its alerts are read
back from the API; at the end its devices are deactivated (`--keep-devices` leaves them active).
Accelerated runs are then anchored on the scenario's alarm (`--anchor alarm`), so a fresh press
looks fresh.
Health alerts (silent, battery) come from the backend's supervision loop on its own schedule:
the scenario's `within_s` allows for its detection time.
"""

from __future__ import annotations

import argparse
import heapq
import math
import os
import queue
import random
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from device_protocol import Channel, Topics
from device_protocol.errors import ProtocolError
from simulator import scenarios
from simulator.device import DeviceSettings, Message, MessageKind, Role, SimulatedDevice
from simulator.errors import SimulatorError, TransportError
from simulator.gps import GpsReceiver
from simulator.movement import Mode, Movement, Stationary, Wander
from simulator.regions import RIJNMOND, load_municipalities, random_point_in
from simulator.scenarios import DeviceInfo, ExpectedAlert
from simulator.transport import PahoTransport, Transport


# -- alerts ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class RaisedAlert:
    """An alert as the backend reports it. `raised_at` is the backend's own time for it (wall
    clock Unix time, if known: the backend takes the time it received the message); `ref` is
    the device message id (alarm id) the alert was raised for, if any; `seen_at` is when the
    alert was first seen raised from outside the backend (the console stream), if it was."""

    type: str
    device_id: str
    raised_at: float | None = None
    flags: tuple[str, ...] = ()
    ref: str | None = None
    alert_id: str | None = None
    seen_at: float | None = None


AlertSource = Callable[[], Sequence[RaisedAlert]]

TOKEN_ENV = "SCHILDWACHT_SIMULATOR_TOKEN"  # bearer token for --api, kept out of the process list


@dataclass(frozen=True, slots=True)
class AlertMatch:
    expected: ExpectedAlert
    raised: tuple[RaisedAlert, ...]
    latency_s: float | None

    @property
    def ok(self) -> bool:
        """As many as expected, each marked with the expected flags."""
        count_ok = self.expected.min_count <= len(self.raised) <= self.expected.max_count
        return count_ok and not self.missing_flags

    @property
    def missing_flags(self) -> tuple[str, ...]:
        """The expected flags some raised alert lacks, in the expected order."""
        have = [set(a.flags) for a in self.raised]
        return tuple(f for f in self.expected.flags if any(f not in h for h in have))


def match_alerts(
    expected: Sequence[ExpectedAlert],
    raised: Iterable[RaisedAlert],
    device_ids: set[str],
    trigger_times: Mapping[int, float],
    ref_times: Mapping[tuple[str, str], float],
) -> tuple[tuple[AlertMatch, ...], tuple[RaisedAlert, ...]]:
    """Pair expected with raised alerts of the run's devices; also return the unexpected ones.

    Latency is from the start of the publish of the message that made the alert due (the alarm
    with the alert's `ref` when known, else the expected alert's trigger message) to the moment
    the alert was first seen raised (`seen_at`); None when either is unknown. The backend's
    `raised_at` is not used: it is the time the backend received the message, before the alert
    was stored and sent on.
    """
    ours = [a for a in raised if a.device_id in device_ids]
    matches = []
    for exp in expected:
        hits = tuple(a for a in ours if a.type == exp.type and a.device_id == exp.device_id)
        latency = None
        seen = [a for a in hits if a.seen_at is not None]
        first = min(seen, key=lambda a: a.seen_at or 0.0) if seen else None
        if first is not None and first.seen_at is not None:
            sent = ref_times.get((first.device_id, first.ref)) if first.ref else None
            if sent is None and exp.trigger is not None:
                sent = trigger_times.get(exp.trigger)
            if sent is not None:
                latency = first.seen_at - sent
        matches.append(AlertMatch(exp, hits, latency))
    known = {(e.type, e.device_id) for e in expected}
    unexpected = tuple(a for a in ours if (a.type, a.device_id) not in known)
    return tuple(matches), unexpected


# -- summary --------------------------------------------------------------------------------------
@dataclass
class Summary:
    name: str
    seed: int
    devices: int
    simulated_s: float
    wall_s: float = 0.0
    sent_by_kind: Counter[str] = field(default_factory=Counter)
    bytes_sent: int = 0
    publish_failures: int = 0
    expected: tuple[ExpectedAlert, ...] = ()
    matches: tuple[AlertMatch, ...] | None = None  # None: no alert source was given
    unexpected: tuple[RaisedAlert, ...] = ()

    @property
    def messages_sent(self) -> int:
        return sum(self.sent_by_kind.values())

    @property
    def latencies_s(self) -> list[float]:
        return [m.latency_s for m in self.matches or () if m.latency_s is not None]

    @property
    def ok(self) -> bool:
        if self.publish_failures:
            return False
        if self.matches is None:
            return True
        return all(m.ok for m in self.matches) and not self.unexpected


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    rank = max(0, min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1))
    return ordered[rank]


def render_summaries(summaries: Sequence[Summary], console: Console) -> None:
    """Two tables: messages sent per run and kind, then alerts expected, raised and matched."""
    kinds = [k.value for k in MessageKind]
    sent = Table(title="Messages sent")
    sent.add_column("run", no_wrap=True)
    for column in ("devices", "sim s", "wall s", *kinds, "total", "KiB", "failed"):
        sent.add_column(column, justify="right")
    alerts = Table(title="Alerts")
    alerts.add_column("run", no_wrap=True)
    for column in ("expected", "raised", "matched", "unexpected", "p50 ms", "max ms"):
        alerts.add_column(column, justify="right")
    for s in summaries:
        run = f"{s.name} #{s.seed}"
        failed = f"[red]{s.publish_failures}[/red]" if s.publish_failures else "0"
        sent.add_row(
            run,
            str(s.devices),
            f"{s.simulated_s:.0f}",
            f"{s.wall_s:.1f}",
            *(str(s.sent_by_kind.get(k, 0)) for k in kinds),
            str(s.messages_sent),
            f"{s.bytes_sent / 1024:.1f}",
            failed,
        )
        required = sum(1 for e in s.expected if not e.optional)
        if s.matches is None:
            alerts.add_row(run, str(required), "-", "-", "-", "-", "-")
            continue
        raised = sum(len(m.raised) for m in s.matches) + len(s.unexpected)
        matched = f"{sum(1 for m in s.matches if m.ok and m.raised)}/{required}"
        if not s.ok:
            matched = f"[red]{matched}[/red]"
        lat = s.latencies_s
        p50 = f"{_percentile(lat, 50) * 1000:.1f}" if lat else "-"
        worst = f"{max(lat) * 1000:.1f}" if lat else "-"
        alerts.add_row(run, str(required), str(raised), matched, str(len(s.unexpected)), p50, worst)
    alerts.caption = "latency: from the publish that made the alert due to its first sighting"
    console.print(sent)
    console.print(alerts)
    for s in summaries:
        for m in s.matches or ():
            if not m.ok or m.missing_flags:
                console.print(
                    f"[yellow]{s.name}[/yellow]: {m.expected.type} for {m.expected.device_id}: "
                    f"expected {m.expected.min_count}..{m.expected.max_count}, "
                    f"raised {len(m.raised)}"
                    + (f", missing flags {', '.join(m.missing_flags)}" if m.missing_flags else "")
                )
        for a in s.unexpected:
            console.print(f"[yellow]{s.name}[/yellow]: unexpected {a.type} for {a.device_id}")


# -- pacing and publishing ------------------------------------------------------------------------
class Pacer:
    """Maps simulated seconds to wall time at `speed` (0: no waiting)."""

    def __init__(
        self,
        speed: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if speed < 0:
            raise ValueError("speed must be >= 0")
        self.speed = speed
        self._clock = clock
        self._sleep = sleep
        self._t0 = clock()

    def wait_until(self, sim_t: float) -> None:
        if self.speed == 0:
            return
        delay = self._t0 + sim_t / self.speed - self._clock()
        if delay > 0:
            self._sleep(delay)


def replay_speed(speed: float, max_speed: float | None) -> float:
    """The speed a scenario is replayed at: as asked, but never faster than the scenario's
    `max_speed` (0, as fast as possible, counts as faster)."""
    if max_speed is None:
        return speed
    return max_speed if speed == 0 or speed > max_speed else speed


def start_epoch_for(
    duration_s: float, speed: float, now: float, anchor_s: float | None = None
) -> float:
    """Anchor device time so that the message sent at simulated `anchor_s` (default: the end of
    the run) is stamped with its wall-clock publish time. With the default no message is stamped
    later than its publish; with an earlier anchor later messages run ahead of the wall clock by
    at most `(duration_s - anchor_s)` seconds."""
    anchor = duration_s if anchor_s is None else anchor_s
    if speed <= 0:
        return now - anchor
    return now - anchor * max(0.0, 1.0 - 1.0 / speed)


# A backend ignores device times further ahead than its clock-skew bound (300 s by default);
# anchoring on an alarm is only done when the rest of the run stays well within it.
MAX_AHEAD_S = 240.0
Anchor = Literal["end", "alarm"]


def anchor_time(scenario: scenarios.Scenario, anchor: Anchor) -> float:
    """The simulated time to stamp as "now" when the run is accelerated.

    "end": the end of the run (nothing is ever stamped in the future, but an accelerated alarm
    looks older than it is and a backend may flag it "late"). "alarm": the first alarm's publish,
    so a fresh alarm looks fresh and a buffered one exactly as late as it was held — unless the
    run continues more than `MAX_AHEAD_S` after it, then "end".
    """
    if anchor == "alarm":
        alarm = next((m for m in scenario.messages if m.kind is MessageKind.ALARM), None)
        if alarm is not None and scenario.duration_s - alarm.t <= MAX_AHEAD_S:
            return alarm.t
    return scenario.duration_s


@dataclass
class _Publisher:
    """Publishes and notes when each message was handed to the transport: the start of an
    alert's latency (taken before the publish, which waits for the broker's PUBACK: taken
    after, the backend could have the message before the clock started)."""

    transport: Transport
    summary: Summary
    trigger_times: dict[int, float] = field(default_factory=dict)
    ref_times: dict[tuple[str, str], float] = field(default_factory=dict)
    clock: Callable[[], float] = time.time

    def send(self, message: Message, index: int | None = None) -> None:
        started = self.clock()
        try:
            self.transport.publish(message.topic, message.payload, message.qos)
        except TransportError:
            self.summary.publish_failures += 1
            return
        if index is not None:
            self.trigger_times[index] = started
        if message.ref is not None:
            self.ref_times.setdefault((message.device_id, message.ref), started)
        self.summary.sent_by_kind[message.kind.value] += 1
        self.summary.bytes_sent += len(message.payload)


def _progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        transient=False,
    )


def _await_alerts(
    summary: Summary,
    devices: set[str],
    alert_source: AlertSource,
    publisher: _Publisher,
    wait_s: float,
    poll_s: float = 0.25,
) -> None:
    deadline = time.monotonic() + wait_s
    while True:
        raised = list(alert_source())
        matches, unexpected = match_alerts(
            summary.expected, raised, devices, publisher.trigger_times, publisher.ref_times
        )
        summary.matches, summary.unexpected = matches, unexpected
        if (
            all(len(m.raised) >= m.expected.min_count for m in matches)
            or time.monotonic() >= deadline
        ):
            return
        time.sleep(poll_s)


def run_scenario(
    name: str,
    transport: Transport,
    topics: Topics | None = None,
    seed: int = 0,
    speed: float = 0.0,
    alert_source: AlertSource | None = None,
    *,
    start_epoch: float | None = None,
    console: Console | None = None,
    alert_wait_s: float | None = None,
    run_id: str = "",
    anchor: Anchor = "end",
    prepare: Callable[[scenarios.Scenario], None] | None = None,
) -> Summary:
    """Publish one scenario's timeline and, with an alert source, check its expected alerts.

    `run_id` suffixes the scenario's device and measure ids; `anchor` chooses which message is
    stamped "now" when accelerated (see `anchor_time`); `prepare` is called with the built
    scenario before the first publish (e.g. to register its devices and measures).
    """
    console = console or Console()
    topics = topics or Topics()
    probe = scenarios.build(name, seed, scenarios.DEFAULT_START, topics, run_id)
    speed = replay_speed(speed, probe.max_speed)
    if start_epoch is None:
        start_epoch = start_epoch_for(
            probe.duration_s, speed, time.time(), anchor_time(probe, anchor)
        )
    scenario = scenarios.build(name, seed, start_epoch, topics, run_id)
    if prepare is not None:
        prepare(scenario)
    summary = Summary(
        name, seed, len(scenario.devices), scenario.duration_s, expected=scenario.expected
    )
    publisher = _Publisher(transport, summary)
    wall0 = time.monotonic()
    pacer = Pacer(speed)
    with _progress(console) as progress:
        task = progress.add_task(name, total=len(scenario.messages))
        for index, message in enumerate(scenario.messages):
            pacer.wait_until(message.t)
            publisher.send(message, index)
            progress.advance(task)
        pacer.wait_until(scenario.duration_s)
    summary.wall_s = time.monotonic() - wall0
    if alert_source is not None:
        wait = alert_wait_s
        if wait is None:
            wait = max([0.5] + [e.within_s for e in scenario.expected])
        device_ids = {d.device_id for d in scenario.devices}
        _await_alerts(summary, device_ids, alert_source, publisher, wait)
    return summary


# -- fleets ---------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class Fleet:
    devices: tuple[SimulatedDevice, ...]
    infos: tuple[DeviceInfo, ...]
    expected: tuple[ExpectedAlert, ...]


_VICTIM_MODES = (Mode.STILL, Mode.STILL, Mode.WALK, Mode.WALK, Mode.CYCLE)
_OFFENDER_MODES = (Mode.STILL, Mode.WALK, Mode.CYCLE, Mode.DRIVE, Mode.DRIVE)


def build_fleet(
    *,
    seed: int,
    victims: int,
    offenders: int,
    duration_s: float,
    start_epoch: float,
    topics: Topics,
    region_file: Path = RIJNMOND,
    panic_per_device_hour: float = 0.0,
    victim_interval_s: float = 60.0,
    offender_interval_s: float = 30.0,
    run_id: str = "",
) -> Fleet:
    """Victims and offenders spread over the municipalities of a region file, seeded.

    Victims press panic at Poisson-distributed times (`panic_per_device_hour`); each press is an
    expected `panic` alert. Other alerts are not predicted for a random fleet. A `run_id` is
    appended to every device id (it changes nothing else).
    """
    towns = list(load_municipalities(region_file).values())
    devices: list[SimulatedDevice] = []
    infos: list[DeviceInfo] = []
    presses: Counter[str] = Counter()
    for role, count, modes, interval in (
        (Role.VICTIM, victims, _VICTIM_MODES, victim_interval_s),
        (Role.OFFENDER, offenders, _OFFENDER_MODES, offender_interval_s),
    ):
        for i in range(count):
            tag = f"{role.value[0]}{i:05d}"
            rng = random.Random(f"fleet:{seed}:{tag}")
            town = rng.choice(towns)
            home = random_point_in(town.area, rng)
            mode = rng.choice(modes)
            movement: Movement = (
                Stationary(home) if mode is Mode.STILL else Wander(home, town.area, mode, rng)
            )
            device_id = f"sim-fleet-{seed}-{tag}" + (f"-{run_id}" if run_id else "")
            device = SimulatedDevice(
                device_id,
                role,
                movement,
                topics=topics,
                start_epoch=start_epoch,
                rng=rng,
                gps=GpsReceiver(random.Random(f"fleet:{seed}:{tag}:gps")),
                settings=DeviceSettings(
                    report_interval_s=interval,
                    battery_pct=rng.uniform(40, 100),
                    movement_step_s=5.0,
                ),
            )
            if role is Role.VICTIM and panic_per_device_hour > 0:
                t = rng.expovariate(panic_per_device_hour / 3600.0)
                while t < duration_s:
                    device.press(t)
                    presses[device_id] += 1
                    t += rng.expovariate(panic_per_device_hour / 3600.0)
            devices.append(device)
            infos.append(DeviceInfo(device_id, role, town.code, town.name, town.police_unit))
    expected = tuple(
        ExpectedAlert("panic", device_id, min_count=n, max_count=n)
        for device_id, n in presses.items()
    )
    return Fleet(tuple(devices), tuple(infos), expected)


class _Downlinks:
    """Acks and commands from the broker, queued on paho's thread and applied on ours."""

    def __init__(self, devices: Sequence[SimulatedDevice], topics: Topics) -> None:
        self._by_id = {d.device_id: d for d in devices}
        self._topics = topics
        self._queue: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()

    def receive(self, topic: str, payload: bytes) -> None:
        self._queue.put((topic, payload))

    def apply(self) -> None:
        while True:
            try:
                topic, payload = self._queue.get_nowait()
            except queue.Empty:
                return
            try:
                device_id = self._topics.parse(topic).device_id
            except ProtocolError:
                continue
            device = self._by_id.get(device_id or "")
            if device is not None:
                device.handle_downlink(topic, payload)


def _downlink_filter(topics: Topics, channel: Channel) -> str:
    """`{root}/dev/+/{channel}`. The one topic string built here: `Topics` offers filters for
    uplinks only; this belongs in `device_protocol.topics` as soon as it has downlink filters."""
    return f"{topics.root}/dev/+/{channel.value}"


def run_fleet(
    transport: Transport,
    topics: Topics | None = None,
    *,
    seed: int = 0,
    victims: int = 10,
    offenders: int = 10,
    duration_s: float = 60.0,
    speed: float = 1.0,
    alert_source: AlertSource | None = None,
    panic_per_device_hour: float = 0.0,
    region_file: Path = RIJNMOND,
    console: Console | None = None,
    alert_wait_s: float = 10.0,
    run_id: str = "",
    prepare: Callable[[Fleet], None] | None = None,
) -> Summary:
    """Run N victims and M offenders for `duration_s` simulated seconds over the transport.

    When the transport can subscribe (paho), acks and `config` commands from the backend are fed
    back to the devices: an acked alarm is not retransmitted, pursuit mode changes the interval.
    `run_id` suffixes the device ids; `prepare` is called with the built fleet before the first
    publish (e.g. to register its devices).
    """
    console = console or Console()
    topics = topics or Topics()
    fleet = build_fleet(
        seed=seed,
        victims=victims,
        offenders=offenders,
        duration_s=duration_s,
        start_epoch=start_epoch_for(duration_s, speed, time.time()),
        topics=topics,
        region_file=region_file,
        panic_per_device_hour=panic_per_device_hour,
        run_id=run_id,
    )
    if prepare is not None:
        prepare(fleet)
    summary = Summary("fleet", seed, len(fleet.devices), duration_s, expected=fleet.expected)
    publisher = _Publisher(transport, summary)
    downlinks = _Downlinks(fleet.devices, topics)
    subscribe = getattr(transport, "subscribe", None)
    if callable(subscribe):
        for channel in (Channel.ACK, Channel.CMD):
            subscribe(_downlink_filter(topics, channel), downlinks.receive)
    heap = [(d.next_time(), i) for i, d in enumerate(fleet.devices)]
    heapq.heapify(heap)
    wall0 = time.monotonic()
    pacer = Pacer(speed)
    with _progress(console) as progress:
        task = progress.add_task("fleet (simulated s)", total=int(duration_s))
        while heap and heap[0][0] <= duration_s:
            t, i = heapq.heappop(heap)
            pacer.wait_until(t)
            downlinks.apply()
            for message in fleet.devices[i].advance_to(t):
                publisher.send(message)
            heapq.heappush(heap, (fleet.devices[i].next_time(), i))
            progress.update(task, completed=int(t))
        pacer.wait_until(duration_s)
        progress.update(task, completed=int(duration_s))
    summary.wall_s = time.monotonic() - wall0
    if alert_source is not None:
        device_ids = {d.device_id for d in fleet.devices}
        _await_alerts(summary, device_ids, alert_source, publisher, alert_wait_s)
    return summary


# -- command line ---------------------------------------------------------------------------------
TransportFactory = Callable[[argparse.Namespace], Transport]


def _paho_from_args(args: argparse.Namespace) -> Transport:
    return PahoTransport(args.host, args.port, version=args.mqtt_version, inflight=args.inflight)


# What one run may send: a bounded fleet for a bounded time (scenarios are bounded by their
# own timelines).
MAX_FLEET_DEVICES = 5_000
MAX_DURATION_S = 86_400.0  # a simulated day
MAX_PANIC_RATE = 60.0  # presses per victim per hour
MAX_INFLIGHT = 1_000
MAX_ALERT_WAIT_S = 600.0


def bounds_problem(args: argparse.Namespace) -> str | None:
    """What is out of bounds in the command line's numbers, or None."""
    if not args.speed >= 0:
        return "--speed must be >= 0"
    if not 0 <= args.devices <= MAX_FLEET_DEVICES:
        return f"--devices must be 0..{MAX_FLEET_DEVICES}"
    if not 0 < args.duration <= MAX_DURATION_S:
        return f"--duration must be > 0 and at most {MAX_DURATION_S:.0f} s"
    if not 0 <= args.panic_rate <= MAX_PANIC_RATE:
        return f"--panic-rate must be 0..{MAX_PANIC_RATE:.0f} per hour"
    if not 1 <= args.inflight <= MAX_INFLIGHT:
        return f"--inflight must be 1..{MAX_INFLIGHT}"
    if args.alert_wait is not None and not 0 <= args.alert_wait <= MAX_ALERT_WAIT_S:
        return f"--alert-wait must be 0..{MAX_ALERT_WAIT_S:.0f} s"
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="schildwacht simulate",
        description="Simulated victim and offender devices speaking device protocol v1 over MQTT.",
    )
    parser.add_argument(
        "--scenario",
        metavar="NAME|all",
        help=f"run a scenario ({', '.join(scenarios.SCENARIOS)}) or all; without it a fleet runs",
    )
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--host", default="127.0.0.1", help="the broker (default: this machine's loopback)"
    )
    parser.add_argument("--port", type=int, default=1883)
    parser.add_argument("--mqtt-version", choices=("5", "3.1.1"), default="5")
    parser.add_argument(
        "--inflight",
        type=int,
        default=1,
        help="QoS 1 publishes outstanding before waiting for a PUBACK",
    )
    parser.add_argument("--topic-root", default="sd/v1")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--speed",
        type=float,
        default=1.0,
        help="simulated seconds per wall second; 0 = as fast as possible",
    )
    parser.add_argument(
        "--devices",
        type=int,
        default=20,
        help=f"fleet size (half victims), at most {MAX_FLEET_DEVICES}",
    )
    parser.add_argument(
        "--duration",
        type=float,
        default=60.0,
        help=f"fleet run, simulated seconds (at most {MAX_DURATION_S:.0f})",
    )
    parser.add_argument(
        "--alert-wait",
        type=float,
        default=None,
        help="seconds to wait for expected alerts after a run "
        "(default: per scenario, 10 s for a fleet)",
    )
    parser.add_argument(
        "--panic-rate", type=float, default=0.0, help="fleet: panic presses per victim per hour"
    )
    parser.add_argument(
        "--api",
        metavar="URL",
        default=None,
        help="a running backend: register each scenario's case, devices and measures (or the "
        "fleet's cases and devices) there first, then compare its alerts with the expected ones",
    )
    parser.add_argument(
        "--token",
        default=os.environ.get(TOKEN_ENV),
        help=f"bearer token for --api (admin or case director; default: ${TOKEN_ENV})",
    )
    parser.add_argument(
        "--run-id",
        default=None,
        help="suffix for device, measure and case ids (default: random, so runs never collide)",
    )
    parser.add_argument(
        "--measures-wait",
        type=float,
        default=3.0,
        help="with --api: seconds to wait after importing a scenario's measures before its "
        "first message, so that every worker has loaded them (a worker looks for changed "
        "measures every geofence.reload_poll_s, 2 s by default)",
    )
    parser.add_argument(
        "--keep-devices",
        action="store_true",
        help="with --api: leave the devices registered active after the run (by default they "
        "are deactivated, so that they do not fall silent and raise alerts later)",
    )
    parser.add_argument(
        "--anchor",
        choices=("alarm", "end"),
        default="alarm",
        help="when accelerated, stamp the first alarm (or the end of the run) as now",
    )
    return parser


def _retire(backend, device_ids: list[str], console: Console) -> None:
    from simulator.backend import retire_devices

    left = retire_devices(backend, device_ids)
    console.print(f"deactivated {len(device_ids) - len(left)} of {len(device_ids)} devices")
    if left:
        console.print(f"[yellow]still active (deactivate them by hand): {', '.join(left)}[/yellow]")


def main(
    argv: Sequence[str] | None = None,
    *,
    transport_factory: TransportFactory = _paho_from_args,
    alert_source: AlertSource | None = None,
    console: Console | None = None,
) -> int:
    """Command line entry point; returns the exit code (0: every run ok)."""
    args = build_parser().parse_args(argv)
    console = console or Console()
    if args.list:
        for name in scenarios.SCENARIOS:
            console.print(f"[bold]{name}[/bold]: {scenarios.build(name).description}")
        return 0
    problem = bounds_problem(args)
    if problem is not None:
        console.print(f"[red]{problem}[/red]")
        return 2
    names: list[str] = []
    if args.scenario:
        names = list(scenarios.SCENARIOS) if args.scenario == "all" else [args.scenario]
        unknown = [n for n in names if n not in scenarios.SCENARIOS]
        if unknown:
            console.print(f"[red]unknown scenario {unknown[0]!r}[/red]; see --list")
            return 2
    topics = Topics(args.topic_root)
    if args.api and not args.token:
        console.print(f"[red]--api needs --token or ${TOKEN_ENV}[/red]")
        return 2
    if args.run_id is not None and not scenarios.RUN_ID.match(args.run_id):
        console.print("[red]--run-id: 1-12 letters or digits[/red]")
        return 2
    prepare = None
    prepare_fleet = None
    backend = None
    stream = None
    registered: list[str] = []  # device ids registered with the backend in this run
    if args.api:
        # simulator.backend imports this module: keep it out of import time.
        from simulator import backend as api

        backend = api.BackendClient(args.api, args.token)
        run_id = args.run_id or api.new_run_id()
        if alert_source is None:
            try:
                stream = api.AlertStream(args.api, args.token)
            except SimulatorError as exc:
                console.print(f"[yellow]{exc}: latencies are not measured[/yellow]")
            alert_source = api.BackendAlertSource(backend, stream=stream)
        client = backend

        def prepare(scenario: scenarios.Scenario) -> None:
            done = api.register_scenario(client, scenario, run_id)
            registered.extend(done.device_ids)
            console.print(
                f"registered {scenario.name}: case {done.case_reference}, "
                f"{len(done.device_ids)} devices, {len(done.measure_ids)} measures"
            )
            if done.measure_ids and args.measures_wait > 0:
                console.print(f"waiting {args.measures_wait:g} s for the workers to load them")
                time.sleep(args.measures_wait)

        def prepare_fleet(fleet: Fleet) -> None:
            cases = api.register_fleet(client, fleet.infos, run_id)
            registered.extend(d.device_id for d in fleet.infos)
            console.print(f"registered the fleet: {len(cases)} cases, {len(fleet.infos)} devices")
    else:
        run_id = args.run_id or ""
    try:
        transport = transport_factory(args)
    except SimulatorError as exc:
        console.print(f"[red]{exc}[/red]")
        if stream is not None:
            stream.close()
        if backend is not None:
            backend.close()
        return 1
    try:
        if names:
            summaries = [
                run_scenario(
                    n,
                    transport,
                    topics,
                    args.seed,
                    args.speed,
                    alert_source,
                    console=console,
                    alert_wait_s=args.alert_wait,
                    run_id=run_id,
                    anchor=args.anchor,
                    prepare=prepare,
                )
                for n in names
            ]
        else:
            victims = args.devices // 2
            summaries = [
                run_fleet(
                    transport,
                    topics,
                    seed=args.seed,
                    victims=victims,
                    offenders=args.devices - victims,
                    duration_s=args.duration,
                    speed=args.speed,
                    alert_source=alert_source,
                    panic_per_device_hour=args.panic_rate,
                    console=console,
                    alert_wait_s=10.0 if args.alert_wait is None else args.alert_wait,
                    run_id=run_id,
                    prepare=prepare_fleet,
                )
            ]
    except SimulatorError as exc:
        console.print(f"[red]{exc}[/red]")
        return 1
    finally:
        transport.close()
        if stream is not None:
            stream.close()
        if backend is not None:
            if registered and not args.keep_devices:
                _retire(backend, registered, console)
            backend.close()
    render_summaries(summaries, console)
    return 0 if all(s.ok for s in summaries) else 1


if __name__ == "__main__":
    sys.exit(main())
