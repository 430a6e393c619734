"""The pipeline steps, in the order they run. Each is small and decides one thing."""

from __future__ import annotations

from typing import Protocol

from device_protocol import Channel, ProtocolError, Topics, codec

from backend.devices.directory import DeviceInfo, DeviceLookup
from backend.pipeline.context import AlertDraft, Context, press_digest
from backend.settings import ProtocolSettings
from backend.state.store import ClockReading, LastFix, StateStore


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


def refusal(device: DeviceInfo | None) -> tuple[str, str] | None:
    """Why a message of this device (None: not registered) is not heard, or None. Pure."""
    if device is None:
        return "unknown_device", "device not registered"
    if not device.active:
        return "inactive_device", f"device {device.id} is deactivated"
    return None


class ResolveDevice:
    """Only registered, active devices are heard. The broker's ACLs keep devices on their own
    topics; this step keeps unknown ids out of the database.

    The directory answers from memory, and a change reaches it within about a second, or only
    at its next full reload while Redis is away (`backend.devices.directory`). An alarm is not
    refused on that word: a device re-activated or registered a moment ago would have its
    victim's press acknowledged and dropped. So before an alarm is refused, its device's row is
    read again (`DeviceLookup.reread`, one query on this rare path only); the database away,
    that read's error goes up and the worker waits for the database with the alarm
    unacknowledged, as for any look-up of a device. Fixes and status reports keep the
    directory's word: the next ones are heard once the change arrives."""

    def __init__(self, directory: DeviceLookup) -> None:
        self._directory = directory

    def __call__(self, ctx: Context) -> None:
        t = ctx.topic
        assert t is not None
        if t.channel is Channel.OWNTRACKS:
            device = self._directory.by_owntracks(t.owntracks_user or "", t.owntracks_device or "")
        else:
            device = self._directory.get(t.device_id or "")
        refused = refusal(device)
        if refused is not None and t.channel is Channel.ALARM:
            device = self._directory.reread(t.device_id or "")
            refused = refusal(device)
        if refused is not None:
            ctx.reject(*refused)
        else:
            ctx.device = device


# Keys that identify a payload as belonging to another channel.
_FOREIGN_KEYS = {
    Channel.LOC: ("_type", "id", "kind", "online"),
    Channel.STATUS: ("_type", "id", "kind", "fixes", "lat"),
}
# Fields only a status report has: a body on `status` with one of them is a status report
# whatever position it also carries (ignored); without, a `lat` makes it a fix sent there.
_STATUS_ONLY = ("online", "charging", "tamper", "rssi", "fw")


def foreign_keys(channel: Channel, document: dict) -> list[str]:
    """The fields of another channel's message in a body on `channel` (it is refused)."""
    foreign = [k for k in _FOREIGN_KEYS[channel] if k in document]
    if (channel is Channel.STATUS and foreign == ["lat"]
            and any(k in document for k in _STATUS_ONLY)):
        return []  # a status report that names where the device is: its tamper must count
    return foreign


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
            if foreign := foreign_keys(channel, document):
                ctx.reject("topic_payload_mismatch", f"{channel.value} payload has {foreign}")
                return
            if channel is Channel.LOC:
                ctx.fixes = codec.decode_fixes(payload, self._max)
                ctx.held = "fixes" in document
            else:
                ctx.status = codec.decode_status(payload, self._max)
        except ProtocolError as exc:
            ctx.reject(exc.code, str(exc))


def is_last_will(ctx: Context) -> bool:
    """The broker's Last Will for the device (`{"online": false}`, nothing else): published by
    the broker when the device's connection died, so it is no contact with the device."""
    status = ctx.status
    return status is not None and status.online is False and status.model_dump(
        exclude_none=True) == {"online": False}


def says_online(ctx: Context) -> bool:
    """Whether the message shows the device online: any message from it but one that says it
    is not (its own `"online": false`); never the broker's Last Will."""
    return ctx.device is not None and not (ctx.status is not None and ctx.status.online is False)


def clock_reading(ctx: Context) -> ClockReading | None:
    """What the device's clock showed on a message it sends live: a status report with a time,
    or a single fix on its `loc` topic. Not an alarm (one pressed out of coverage is held), a
    batch of fixes (sent after a gap) nor an OwnTracks fix (the app queues them offline): what
    was held shows how long it was held, not how the clock runs."""
    now = ctx.raw.received_at
    if ctx.status is not None and ctx.status.tst is not None:
        return ClockReading(now, now - ctx.status.tst)
    channel = ctx.topic.channel if ctx.topic else None
    if channel is Channel.LOC and not ctx.held and len(ctx.fixes) == 1:
        return ClockReading(now, now - ctx.fixes[0].tst)
    return None


def wrong_clock(reading: ClockReading | None, now: float, behind: float,
                settings: ProtocolSettings) -> bool:
    """Whether an alarm whose device time runs `behind` server time by more than
    `late_after_s` was sent at once by a device whose clock is wrong ("clock_skew"), rather
    than held while out of coverage ("late").

    Both look the same on the alarm alone; the device's latest clock reading tells them apart
    (`clock_reading`). It comes only from messages a device sends live, never from what is
    delivered after a coverage gap: the broker's Last Will, a reconnect or an earlier held alarm
    say nothing of the clock, a batch of buffered fixes shows how long they were held. So a
    reading received within `in_coverage_s` whose clock ran behind by as much as the alarm's
    (within `late_after_s`) means the device is in coverage and its clock runs behind: the
    alarm is fresh. A device whose clock is right shows about 0 on its live messages, before the
    gap or after it, so its held alarm stays "late". No reading, or an old one: "late" — the
    safe side, which keeps the alarm's old position dated as old instead of passing it for
    current.
    """
    return (reading is not None and now - reading.received_at <= settings.in_coverage_s
            and abs(reading.behind - behind) <= settings.late_after_s)


class Staleness:
    """Judges device time against server time.

    Alarms: never suppressed. A missing or wild device time (further than `max_clock_skew_s` in
    the future, or older than `max_late_s`) is flagged and server time is used; an old but
    plausible one is flagged "late" (buffered while out of coverage) — unless the device's
    latest live messages showed its clock running behind by as much (`wrong_clock`): then it
    is flagged "clock_skew" and server time is used.
    Fixes: all are stored; only fixes newer than the last accepted one, and not in the future
    beyond the skew bound, drive state (geofences). Shared subscriptions do not keep per-device
    order, so this step is what keeps state monotonic. A fix further ahead than
    `max_fix_ahead_s` drives state as dated that far ahead (stored with its own time): else one
    clock glitch became the newest time, and every real fix until then was taken for an old
    one (a zone visit in between went unseen).
    Every message but the broker's Last Will counts as hearing from the device (`last_seen`,
    which supervision uses for `device_silent`); the live ones note its clock (`clock_reading`).
    A Last Will received before the device was last heard (stored late by a worker sharing the
    subscription) is ignored: the device came back after it.
    """

    def __init__(self, settings: ProtocolSettings, state: StateStore) -> None:
        self._s = settings
        self._state = state

    def __call__(self, ctx: Context) -> None:
        if ctx.raw.retain and ctx.status is not None:
            # The broker's stored copy of a status (a retained Last Will, most often), replayed
            # on every subscribe: it says nothing of the device now.
            ctx.ignored = True
            return
        self._judge(ctx)
        device_id = ctx.device.id  # type: ignore[union-attr]
        if is_last_will(ctx):
            seen = self._state.last_seen(device_id)
            if seen is not None and seen > ctx.raw.received_at:
                ctx.ignored = True  # the device was heard after it: it is back, not offline
            return
        self._state.touch({device_id: ctx.raw.received_at})
        if (reading := clock_reading(ctx)) is not None:
            self._state.set_clocks({device_id: reading})

    def _judge(self, ctx: Context) -> None:
        now = ctx.raw.received_at
        if ctx.alarm is not None:
            tst = ctx.alarm.alarm.tst
            if tst is None:
                ctx.flags.append("no_device_time")
            elif tst - now > self._s.max_clock_skew_s or now - tst > self._s.max_late_s:
                ctx.flags.append("clock_skew")
            elif now - tst > self._s.late_after_s:
                reading = self._state.get_clock(ctx.device.id)  # type: ignore[union-attr]
                skewed = wrong_clock(reading, now, now - tst, self._s)
                ctx.flags.append("clock_skew" if skewed else "late")
            return
        if not ctx.fixes:
            return
        device_id = ctx.device.id  # type: ignore[union-attr]
        last = self._state.get_last_fix(device_id)
        newest = last.tst if last else float("-inf")
        ahead = now + self._s.max_fix_ahead_s
        fresh = []
        for fix in ctx.fixes:  # oldest first
            if fix.tst <= newest:
                continue
            if fix.tst - now > self._s.max_clock_skew_s:
                ctx.flags.append("future_fix")
                continue
            if fix.tst > ahead:
                fix = fix.model_copy(update={"tst": ahead})
                if fix.tst <= newest:
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
            press=press_digest(ctx.raw.payload),
            derived_id=ctx.alarm.derived_id,
            replayed=ctx.raw.retain,
        )
        plausible_time = alarm.tst is not None and "clock_skew" not in flags
        if alarm.has_fix:
            draft.lat, draft.lon, draft.acc = alarm.lat, alarm.lon, alarm.acc
            draft.fix_time = alarm.tst if plausible_time else now
            draft.location_source = "alarm"
        else:
            with_last_known_position(draft, self._state)
        if alarm.kind == "test":
            flags.append("test")
        ctx.alerts.append(draft)


def with_last_known_position(draft: AlertDraft, state: StateStore) -> None:
    """Give a draft without a position of its own the device's last known fix (flagged
    `last_known_position`), or flag `no_fix`: it is routed by where the device was last seen,
    not only by the case's home region."""
    flags = draft.flags
    last = state.get_last_fix(draft.device_id)
    if last is not None:
        draft.lat, draft.lon, draft.acc, draft.fix_time = last.lat, last.lon, last.acc, last.tst
        draft.location_source = "last_known"
        flags.append("last_known_position")
    else:
        flags.append("no_fix")


class DeviceHealth:
    """A status report with `tamper: true` raises a tamper alert (P1 for an offender monitor),
    unless one of the device's is still open: a device reports tamper in every status report
    until it is seen to. A status carries no position: the alert gets the last known one."""

    def __init__(self, state: StateStore) -> None:
        self._state = state

    def __call__(self, ctx: Context) -> None:
        status, device = ctx.status, ctx.device
        if status is None or device is None or not status.tamper:
            return
        tst = status.tst or ctx.raw.received_at
        draft = AlertDraft(
            type="tamper",
            device_id=device.id,
            case_id=device.case_id,
            # One tamper alert per reported tamper time: redeliveries deduplicate (a report
            # without a time, redelivered, is one while the first is open).
            message_id=f"status-tamper-{int(tst)}",
            raised_at=ctx.raw.received_at,
            device_time=status.tst,
            exercise=device.exercise,
            while_none_open=True,
        )
        with_last_known_position(draft, self._state)
        ctx.alerts.append(draft)
