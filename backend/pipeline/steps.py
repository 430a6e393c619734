"""The pipeline steps, in the order they run. Each is small and decides one thing."""

from __future__ import annotations

from typing import Protocol

from device_protocol import Channel, ProtocolError, Topics, codec

from backend.devices.directory import DeviceLookup
from backend.pipeline.context import AlertDraft, Context
from backend.settings import ProtocolSettings
from backend.state.store import LastFix, StateStore


class Step(Protocol):
    def __call__(self, ctx: Context) -> None: ...


class ParseTopic:
    def __init__(self, topics: Topics) -> None:
        self._topics = topics

    def __call__(self, ctx: Context) -> None:
        try:
            ctx.topic = self._topics.parse(ctx.raw.topic)
        except ProtocolError as exc:
            ctx.reject(exc.code, str(exc))
            return
        if ctx.topic.channel not in (Channel.ALARM, Channel.LOC, Channel.STATUS, Channel.OWNTRACKS):
            ctx.reject("invalid_topic", "not an uplink channel")


class ResolveDevice:
    """Only registered, active devices are heard. The broker's ACLs keep devices on their own
    topics; this step keeps unknown ids out of the database."""

    def __init__(self, directory: DeviceLookup) -> None:
        self._directory = directory

    def __call__(self, ctx: Context) -> None:
        t = ctx.topic
        assert t is not None
        if t.channel is Channel.OWNTRACKS:
            device = self._directory.by_owntracks(t.owntracks_user or "", t.owntracks_device or "")
        else:
            device = self._directory.get(t.device_id or "")
        if device is None:
            ctx.reject("unknown_device", "device not registered")
        elif not device.active:
            ctx.reject("inactive_device", f"device {device.id} is deactivated")
        else:
            ctx.device = device


# Keys that identify a payload as belonging to another channel.
_FOREIGN_KEYS = {
    Channel.LOC: ("_type", "id", "kind", "online"),
    Channel.STATUS: ("_type", "id", "kind", "fixes", "lat"),
}


class Decode:
    """Decodes the payload for its channel. Alarms are decoded leniently: an alarm from a
    registered device is raised whatever its body (safety invariant 2)."""

    def __init__(self, settings: ProtocolSettings) -> None:
        self._max = settings.max_payload_bytes

    def __call__(self, ctx: Context) -> None:
        channel = ctx.topic.channel  # type: ignore[union-attr]
        payload = ctx.raw.payload
        if channel is Channel.ALARM:
            ctx.alarm = codec.decode_alarm_lenient(payload, self._max)
            ctx.flags.extend(ctx.alarm.issues)
            return
        try:
            if channel is Channel.OWNTRACKS:
                fix = codec.decode_owntracks(payload, self._max)
                if fix is None:
                    ctx.ignored = True
                else:
                    ctx.fixes = [fix]
                return
            document = codec.decode_document(payload, self._max)
            foreign = [k for k in _FOREIGN_KEYS[channel] if k in document]
            if foreign:
                ctx.reject("topic_payload_mismatch", f"{channel.value} payload has {foreign}")
                return
            if channel is Channel.LOC:
                ctx.fixes = codec.decode_fixes(payload, self._max)
            else:
                ctx.status = codec.decode_status(payload, self._max)
        except ProtocolError as exc:
            ctx.reject(exc.code, str(exc))


class Staleness:
    """Judges device time against server time.

    Alarms: never suppressed. A missing or wild device time (further than `max_clock_skew_s` in
    the future, or older than `max_late_s`) is flagged and server time is used; an old but
    plausible one is flagged "late" (buffered while out of coverage) — unless the device was
    heard recently and its newest fix ran behind by the same amount: then the device is in
    coverage and its clock is wrong, so it is flagged "clock_skew" and server time is used.
    Fixes: all are stored; only fixes newer than the last accepted one, and not in the future
    beyond the skew bound, drive state (geofences). Shared subscriptions do not keep per-device
    order, so this step is what keeps state monotonic.
    """

    def __init__(self, settings: ProtocolSettings, state: StateStore) -> None:
        self._s = settings
        self._state = state

    def _clock_behind(self, device_id: str, now: float) -> float | None:
        """How far the device's clock ran behind on its newest fix, if it was heard recently
        (so it is in coverage, not buffering); None when that cannot be told."""
        seen = self._state.last_seen(device_id)
        last = self._state.get_last_fix(device_id)
        if seen is None or last is None or now - seen > self._s.in_coverage_s:
            return None
        return seen - last.tst

    def __call__(self, ctx: Context) -> None:
        self._judge(ctx)
        self._state.touch({ctx.device.id: ctx.raw.received_at})  # type: ignore[union-attr]

    def _judge(self, ctx: Context) -> None:
        now = ctx.raw.received_at
        if ctx.alarm is not None:
            tst = ctx.alarm.alarm.tst
            if tst is None:
                ctx.flags.append("no_device_time")
            elif tst - now > self._s.max_clock_skew_s or now - tst > self._s.max_late_s:
                ctx.flags.append("clock_skew")
            elif now - tst > self._s.late_after_s:
                behind = self._clock_behind(ctx.device.id, now)  # type: ignore[union-attr]
                skewed = behind is not None and abs(behind - (now - tst)) <= self._s.late_after_s
                ctx.flags.append("clock_skew" if skewed else "late")
            return
        if not ctx.fixes:
            return
        device_id = ctx.device.id  # type: ignore[union-attr]
        last = self._state.get_last_fix(device_id)
        newest = last.tst if last else float("-inf")
        fresh = []
        for fix in ctx.fixes:  # oldest first
            if fix.tst <= newest:
                continue
            if fix.tst - now > self._s.max_clock_skew_s:
                ctx.flags.append("future_fix")
                continue
            fresh.append(fix)
            newest = fix.tst
        ctx.fresh_fixes = fresh
        if fresh:
            f = fresh[-1]
            self._state.set_last_fixes({device_id: LastFix(f.tst, f.lat, f.lon, f.acc)})


ALARM_ALERT_TYPES = {"panic": "panic", "fall": "fall", "tamper": "tamper", "test": "test"}


class DeviceAlarms:
    """Turns an alarm into an alert draft, with the alarm's own fix or the last known one."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def __call__(self, ctx: Context) -> None:
        if ctx.alarm is None:
            return
        alarm, device = ctx.alarm.alarm, ctx.device
        assert device is not None
        now = ctx.raw.received_at
        flags = list(ctx.flags)
        if ctx.alarm.unreadable:
            flags.append("unreadable")
        draft = AlertDraft(
            type=ALARM_ALERT_TYPES[alarm.kind],
            device_id=device.id,
            case_id=device.case_id,
            message_id=alarm.id,
            raised_at=now,
            device_time=alarm.tst,
            flags=flags,
            exercise=device.exercise,
            from_alarm=True,
        )
        plausible_time = alarm.tst is not None and "clock_skew" not in flags
        if alarm.has_fix:
            draft.lat, draft.lon, draft.acc = alarm.lat, alarm.lon, alarm.acc
            draft.fix_time = alarm.tst if plausible_time else now
            draft.location_source = "alarm"
        else:
            last = self._state.get_last_fix(device.id)
            if last is not None:
                draft.lat, draft.lon, draft.acc, draft.fix_time = last.lat, last.lon, last.acc, last.tst
                draft.location_source = "last_known"
                flags.append("last_known_position")
            else:
                flags.append("no_fix")
        if alarm.kind == "test":
            flags.append("test")
        ctx.alerts.append(draft)


class DeviceHealth:
    """A status report with `tamper: true` raises a tamper alert (P1 for an offender monitor),
    unless one of the device's is still open: a device reports tamper in every status report
    until it is seen to."""

    def __call__(self, ctx: Context) -> None:
        status, device = ctx.status, ctx.device
        if status is None or device is None or not status.tamper:
            return
        tst = status.tst or ctx.raw.received_at
        ctx.alerts.append(
            AlertDraft(
                type="tamper",
                device_id=device.id,
                case_id=device.case_id,
                # One tamper alert per reported tamper time: redeliveries deduplicate (a
                # report without a time, redelivered, is one while the first is open).
                message_id=f"status-tamper-{int(tst)}",
                raised_at=ctx.raw.received_at,
                device_time=status.tst,
                exercise=device.exercise,
                while_none_open=True,
            )
        )
