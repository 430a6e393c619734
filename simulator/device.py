"""One simulated alarm device (victim) or GPS monitor (offender), speaking protocol v1.

The device lives in simulated time: `advance_to(t)` returns the protocol messages it sends up to
`t` seconds after the start. It reports a fix every report interval, a status heartbeat, drains
its battery, retransmits an unacknowledged alarm with the same id, buffers fixes and alarms while
out of coverage and sends them when coverage returns (the alarm first, then `{"fixes": [...]}`
batches within the size limit), and reads the time from a possibly skewed clock.

Payloads and topics are built only through `device_protocol`. Downlinks (acks and commands) go
in through `handle_downlink`, so a live runner can feed the backend's answers back.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass

from device_protocol import (
    Ack,
    Alarm,
    Channel,
    ConfigCommand,
    Fix,
    Status,
    Topics,
    WarnCommand,
    codec,
)
from device_protocol.errors import ProtocolError
from device_protocol.models import MAX_BATCH_FIXES, MAX_PAYLOAD_BYTES
from simulator.geo import to_wgs84
from simulator.gps import CoverageGaps, DeviceClock, GpsReceiver, Observation
from simulator.movement import Movement, State


class Role(enum.StrEnum):
    VICTIM = "victim"
    OFFENDER = "offender"


class MessageKind(enum.StrEnum):
    FIX = "fix"
    BATCH = "batch"
    STATUS = "status"
    ALARM = "alarm"


@dataclass(frozen=True, slots=True)
class Message:
    """One uplink publish: when (simulated seconds since the start), where, what."""

    t: float
    device_id: str
    kind: MessageKind
    topic: str
    payload: bytes
    qos: int
    ref: str | None = None  # the alarm id, for alarms
    late: bool = False  # buffered during a coverage gap
    attempt: int = 0  # 0 for the first transmission of an alarm, 1.. for retransmissions


@dataclass(frozen=True, slots=True)
class DeviceSettings:
    report_interval_s: float = 30.0
    interval_jitter_s: float = 1.0  # each interval varies by up to this much either way
    first_fix_s: float | None = None  # None: a random phase within the first interval
    heartbeat_interval_s: float = 300.0
    fix_qos: int = 1
    battery_pct: float = 100.0
    battery_drain_per_h: float = 2.0
    fw: str = "sim-1.0"
    alarm_retry_s: float | None = 15.0  # retransmit an unacknowledged alarm after this long
    alarm_retries: int = 1
    buffer_limit: int = 1_000  # fixes kept while out of coverage (oldest dropped)
    movement_step_s: float = 1.0  # sub-step for movements that follow a moving target


@dataclass(slots=True)
class _PendingAlarm:
    at: float
    alarm_id: str
    kind: str
    attempt: int = 0
    payload: bytes | None = None


def split_batches(fixes: list[Fix], max_bytes: int = MAX_PAYLOAD_BYTES) -> list[list[Fix]]:
    """Split fixes (oldest first) into batches whose encoded size stays within `max_bytes`."""
    overhead = len(codec.encode_batch(fixes[:1])) - len(codec.encode(fixes[0])) if fixes else 0
    batches: list[list[Fix]] = []
    current: list[Fix] = []
    size = overhead
    for fix in fixes:
        length = len(codec.encode(fix))
        extra = length + (1 if current else 0)  # the comma between fixes
        if current and (size + extra > max_bytes or len(current) >= MAX_BATCH_FIXES):
            batches.append(current)
            current, size, extra = [], overhead, length
        current.append(fix)
        size += extra
    if current:
        batches.append(current)
    return batches


class SimulatedDevice:
    def __init__(
        self,
        device_id: str,
        role: Role,
        movement: Movement,
        *,
        topics: Topics,
        start_epoch: float,
        rng: random.Random,
        gps: GpsReceiver | None = None,
        settings: DeviceSettings | None = None,
        clock: DeviceClock | None = None,
        coverage: CoverageGaps | None = None,
    ) -> None:
        self.device_id = device_id
        self.role = role
        self.movement = movement
        self.topics = topics
        self.start_epoch = start_epoch
        self.rng = rng
        self.gps = gps if gps is not None else GpsReceiver(rng)
        self.settings = settings if settings is not None else DeviceSettings()
        self.clock = clock if clock is not None else DeviceClock()
        self.coverage = coverage if coverage is not None else CoverageGaps()
        self.report_interval_s = self.settings.report_interval_s
        self.warnings: list[WarnCommand] = []
        self.acked: dict[str, str] = {}  # alarm id -> last ack state
        self.now = 0.0
        self._moved_until = 0.0
        self._alarm_seq = 0
        first = self.settings.first_fix_s
        self._next_fix = rng.uniform(0, self.report_interval_s) if first is None else first
        self._last_fix_t: float | None = None
        self._next_status = 0.0
        self._alarms: list[_PendingAlarm] = []
        self._held_alarms: list[_PendingAlarm] = []  # pressed while out of coverage
        self._buffer: list[Fix] = []
        self._flush_at: float | None = None
        self._silent_from = math.inf
        drain = self.settings.battery_drain_per_h
        if drain > 0:
            self._silent_from = self.settings.battery_pct / drain * 3600.0

    # -- scripting ------------------------------------------------------------------------------
    def press(self, at_s: float, kind: str = "panic") -> str:
        """Schedule a button press (or fall/tamper/test alarm); returns the alarm id."""
        self._alarm_seq += 1
        alarm_id = f"{kind}-{self._alarm_seq:04d}-{self.rng.getrandbits(32):08x}"
        self._alarms.append(_PendingAlarm(at_s, alarm_id, kind))
        self._alarms.sort(key=lambda a: a.at)
        return alarm_id

    def go_silent(self, at_s: float) -> None:
        """From `at_s` on the device sends nothing (switched off, destroyed, shielded)."""
        self._silent_from = min(self._silent_from, at_s)

    @property
    def silent_from(self) -> float:
        return self._silent_from

    def battery_at(self, t: float) -> int:
        level = self.settings.battery_pct - self.settings.battery_drain_per_h * t / 3600.0
        return max(0, min(100, math.floor(level)))

    # -- downlink -------------------------------------------------------------------------------
    def handle_downlink(self, topic: str, payload: bytes) -> None:
        """Feed an ack or command addressed to this device; foreign or invalid input is ignored."""
        try:
            parsed = self.topics.parse(topic)
            if parsed.device_id != self.device_id:
                return
            if parsed.channel is Channel.ACK:
                ack: Ack = codec.decode_ack(payload)
                self.acked[ack.ref] = ack.state
            elif parsed.channel is Channel.CMD:
                command = codec.decode_command(payload)
                if isinstance(command, ConfigCommand):
                    self.set_report_interval(command.report_interval_s)
                else:
                    self.warnings.append(command)
        except ProtocolError:
            return

    def set_report_interval(self, seconds: float) -> None:
        self.report_interval_s = float(seconds)
        base = self._last_fix_t if self._last_fix_t is not None else self.now
        self._next_fix = max(self.now, min(self._next_fix, base + self.report_interval_s))

    # -- time -----------------------------------------------------------------------------------
    def next_time(self) -> float:
        """The simulated time of the next thing this device does (inf when it has gone silent)."""
        candidates = [self._next_fix, self._next_status]
        if self._alarms:
            candidates.append(self._alarms[0].at)
        if self._flush_at is not None:
            candidates.append(self._flush_at)
        t = min(candidates)
        return t if t < self._silent_from else math.inf

    def advance_to(self, t: float) -> list[Message]:
        out: list[Message] = []
        while (due := self.next_time()) <= t:
            self._move_to(due)
            self.now = due
            self._step(due, out)
        self._move_to(t)
        self.now = max(self.now, t)
        return out

    def _move_to(self, t: float) -> None:
        step = self.settings.movement_step_s
        while self._moved_until < t - 1e-9:
            dt = min(step, t - self._moved_until)
            self.movement.advance(dt)
            self._moved_until += dt

    def _step(self, t: float, out: list[Message]) -> None:
        covered = self.coverage.covered(t)
        if self._flush_at is not None and self._flush_at <= t:
            self._flush(t, out)
        elif self._alarms and self._alarms[0].at <= t:
            self._send_alarm(self._alarms.pop(0), t, covered, out)
        elif self._next_fix <= t:
            self._report_fix(t, covered, out)
            jitter = self.settings.interval_jitter_s
            self._last_fix_t = t
            self._next_fix = t + self.report_interval_s + self.rng.uniform(-jitter, jitter)
        else:
            if covered:
                out.append(self._status_message(t))
            self._next_status = t + self.settings.heartbeat_interval_s

    # -- message building -----------------------------------------------------------------------
    def _tst(self, t: float) -> float:
        return round(self.clock.read(self.start_epoch + t, t), 3)

    def _observe(self, t: float) -> Observation:
        s: State = self.movement.state
        return self.gps.observe(t, s.x, s.y, s.speed)

    def _fix(self, t: float) -> Fix:
        obs = self._observe(t)
        lat, lon = to_wgs84(obs.x, obs.y)
        return Fix(
            tst=self._tst(t),
            lat=round(lat, 6),
            lon=round(lon, 6),
            acc=obs.acc,
            vel=obs.vel,
            batt=self.battery_at(t),
        )

    def _hold_until_covered(self, t: float) -> None:
        if self._flush_at is None:
            self._flush_at = self.coverage.gap_end(t)

    def _report_fix(self, t: float, covered: bool, out: list[Message]) -> None:
        fix = self._fix(t)
        if covered:
            topic = self.topics.loc(self.device_id)
            out.append(
                Message(
                    t,
                    self.device_id,
                    MessageKind.FIX,
                    topic,
                    codec.encode(fix),
                    self.settings.fix_qos,
                )
            )
            return
        self._buffer.append(fix)
        del self._buffer[: -self.settings.buffer_limit]
        self._hold_until_covered(t)

    def _alarm_payload(self, alarm: _PendingAlarm, t: float) -> bytes:
        fix = self._fix(t)
        model = Alarm(
            id=alarm.alarm_id,
            kind=alarm.kind,  # type: ignore[arg-type]
            tst=fix.tst,
            lat=fix.lat,
            lon=fix.lon,
            acc=fix.acc,
            batt=fix.batt,
        )
        return codec.encode(model)

    def _send_alarm(
        self, alarm: _PendingAlarm, t: float, covered: bool, out: list[Message]
    ) -> None:
        if alarm.payload is None:
            alarm.payload = self._alarm_payload(alarm, t)
        if alarm.alarm_id in self.acked:
            return
        if not covered:
            self._held_alarms.append(alarm)
            self._hold_until_covered(t)
            return
        out.append(self._alarm_message(alarm, t, late=False))
        self._schedule_retry(alarm, t)

    def _alarm_message(self, alarm: _PendingAlarm, t: float, late: bool) -> Message:
        assert alarm.payload is not None
        topic = self.topics.alarm(self.device_id)
        return Message(
            t,
            self.device_id,
            MessageKind.ALARM,
            topic,
            alarm.payload,
            1,
            ref=alarm.alarm_id,
            late=late,
            attempt=alarm.attempt,
        )

    def _schedule_retry(self, alarm: _PendingAlarm, t: float) -> None:
        retry = self.settings.alarm_retry_s
        if retry is not None and alarm.attempt < self.settings.alarm_retries:
            again = _PendingAlarm(
                t + retry, alarm.alarm_id, alarm.kind, alarm.attempt + 1, alarm.payload
            )
            self._alarms.append(again)
            self._alarms.sort(key=lambda a: a.at)

    def _flush(self, t: float, out: list[Message]) -> None:
        """Coverage is back: held alarms first, then buffered fixes in batches, then status."""
        self._flush_at = None
        for alarm in self._held_alarms:
            out.append(self._alarm_message(alarm, t, late=True))
            self._schedule_retry(alarm, t)
        self._held_alarms.clear()
        fixes = sorted(self._buffer, key=lambda f: f.tst)
        self._buffer.clear()
        topic = self.topics.loc(self.device_id)
        for batch in split_batches(fixes):
            payload = codec.encode_batch(batch)
            out.append(Message(t, self.device_id, MessageKind.BATCH, topic, payload, 1, late=True))
        out.append(self._status_message(t))

    def _status_message(self, t: float) -> Message:
        status = Status(
            tst=self._tst(t),
            online=True,
            batt=self.battery_at(t),
            charging=False,
            rssi=self.rng.randint(-110, -60),
            fw=self.settings.fw,
        )
        topic = self.topics.status(self.device_id)
        return Message(t, self.device_id, MessageKind.STATUS, topic, codec.encode(status), 1)
