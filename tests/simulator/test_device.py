import itertools
import random

import pytest

from device_protocol import Channel, ConfigCommand, Topics, WarnCommand, codec
from device_protocol.models import Ack, Fix
from simulator.device import (
    DeviceSettings,
    MessageKind,
    Role,
    SimulatedDevice,
    split_batches,
)
from simulator.geo import to_metric
from simulator.gps import CoverageGaps, DeviceClock, GpsReceiver
from simulator.movement import Stationary

START = 1_800_000_000.0
HOME = to_metric(51.9244, 4.4690)
TOPICS = Topics()


def _device(**kwargs) -> SimulatedDevice:
    settings = kwargs.pop("settings", DeviceSettings(report_interval_s=30, first_fix_s=0))
    return SimulatedDevice(
        "dev-001",
        kwargs.pop("role", Role.VICTIM),
        Stationary(HOME),
        topics=TOPICS,
        start_epoch=START,
        rng=random.Random(1),
        gps=GpsReceiver(random.Random(2)),
        settings=settings,
        **kwargs,
    )


def _kinds(messages) -> list[str]:
    return [m.kind.value for m in messages]


def test_fixes_every_report_interval_with_jitter() -> None:
    device = _device()
    fixes = [m for m in device.advance_to(600) if m.kind is MessageKind.FIX]
    times = [codec.decode_fixes(m.payload)[0].tst - START for m in fixes]
    assert 19 <= len(fixes) <= 21
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert all(29.0 - 1e-6 <= g <= 31.0 + 1e-6 for g in gaps)
    assert all(m.topic == TOPICS.loc("dev-001") and m.qos == 1 for m in fixes)


def test_status_heartbeat_and_first_status_online() -> None:
    device = _device(settings=DeviceSettings(first_fix_s=0, heartbeat_interval_s=60))
    statuses = [m for m in device.advance_to(300) if m.kind is MessageKind.STATUS]
    assert [m.t for m in statuses] == [0, 60, 120, 180, 240, 300]
    status = codec.decode_status(statuses[0].payload)
    assert status.online is True and status.fw == "sim-1.0" and status.batt == 100


def test_fix_payload_is_a_protocol_fix() -> None:
    message = next(m for m in _device().advance_to(60) if m.kind is MessageKind.FIX)
    fix = codec.decode_fixes(message.payload)[0]
    assert fix.acc is not None and 3 <= fix.acc <= 150
    assert fix.batt == 100
    assert 51.9 < fix.lat < 51.95 and 4.44 < fix.lon < 4.5


def test_battery_drains_and_the_device_dies() -> None:
    device = _device(
        settings=DeviceSettings(
            first_fix_s=0, heartbeat_interval_s=60, battery_pct=10, battery_drain_per_h=60
        )
    )
    messages = device.advance_to(3_600)
    levels = [codec.decode_status(m.payload).batt for m in messages if m.kind is MessageKind.STATUS]
    assert levels[0] == 10 and levels == sorted(levels, reverse=True)
    assert max(m.t for m in messages) < 600  # empty after ten minutes
    assert device.next_time() == float("inf")


def test_go_silent_stops_everything() -> None:
    device = _device()
    device.go_silent(100)
    messages = device.advance_to(1_000)
    assert messages and max(m.t for m in messages) < 100


def test_panic_is_retransmitted_with_the_same_id() -> None:
    device = _device(settings=DeviceSettings(first_fix_s=0, alarm_retry_s=10, alarm_retries=2))
    alarm_id = device.press(50)
    alarms = [m for m in device.advance_to(200) if m.kind is MessageKind.ALARM]
    assert [m.t for m in alarms] == [50, 60, 70]
    assert [m.attempt for m in alarms] == [0, 1, 2]
    decoded = [codec.decode_alarm(m.payload) for m in alarms]
    assert {a.id for a in decoded} == {alarm_id}
    assert decoded[0].kind == "panic" and decoded[0].has_fix
    assert all(m.qos == 1 and m.topic == TOPICS.alarm("dev-001") for m in alarms)


def test_alarm_ids_are_unique_per_press() -> None:
    device = _device()
    ids = {device.press(t) for t in range(10, 200, 10)}
    assert len(ids) == 19


def test_ack_stops_retransmission() -> None:
    device = _device(settings=DeviceSettings(first_fix_s=0, alarm_retry_s=10, alarm_retries=3))
    alarm_id = device.press(50)
    first = [m for m in device.advance_to(55) if m.kind is MessageKind.ALARM]
    ack = codec.encode(Ack(ref=alarm_id, state="received", tst=START + 55))
    device.handle_downlink(TOPICS.ack("dev-001"), ack)
    later = [m for m in device.advance_to(200) if m.kind is MessageKind.ALARM]
    assert len(first) == 1 and later == []
    assert device.acked[alarm_id] == "received"


def test_config_command_changes_the_report_interval() -> None:
    device = _device(
        settings=DeviceSettings(report_interval_s=60, first_fix_s=0, interval_jitter_s=0)
    )
    device.advance_to(100)
    command = codec.encode(ConfigCommand(report_interval_s=5))
    device.handle_downlink(TOPICS.cmd("dev-001"), command)
    fixes = [m for m in device.advance_to(160) if m.kind is MessageKind.FIX]
    assert device.report_interval_s == 5
    assert [m.t for m in fixes][:3] == [100, 105, 110]


def test_warn_command_is_recorded_and_foreign_downlinks_are_ignored() -> None:
    device = _device()
    warn = codec.encode(WarnCommand(reason="proximity", ref="alert-1"))
    device.handle_downlink(TOPICS.cmd("dev-001"), warn)
    device.handle_downlink(TOPICS.cmd("other-device"), warn)
    device.handle_downlink(TOPICS.cmd("dev-001"), b"not json")
    device.handle_downlink("elsewhere/dev-001/cmd", warn)
    assert [w.ref for w in device.warnings] == ["alert-1"]


def test_coverage_gap_buffers_fixes_then_sends_alarm_batches_and_status() -> None:
    device = _device(
        settings=DeviceSettings(report_interval_s=10, first_fix_s=0, interval_jitter_s=0),
        coverage=CoverageGaps(((100.0, 1_900.0),)),
    )
    alarm_id = device.press(500)
    messages = device.advance_to(2_000)
    assert all(not (100 <= m.t < 1_900) for m in messages)
    at_end = [m for m in messages if m.t == 1_900]
    assert _kinds(at_end)[0] == "alarm" and at_end[0].late and at_end[0].ref == alarm_id
    flushed = [k for k in _kinds(at_end) if k != "fix"]  # a regular fix may fall due at 1,900 too
    assert flushed == ["alarm"] + ["batch"] * (len(flushed) - 2) + ["status"]
    batches = [m for m in at_end if m.kind is MessageKind.BATCH]
    assert len(batches) >= 2
    fixes = [f for m in batches for f in codec.decode_fixes(m.payload)]
    assert len(fixes) == 180
    assert [f.tst for f in fixes] == sorted(f.tst for f in fixes)
    assert all(len(m.payload) <= 8 * 1024 for m in batches)
    alarm = codec.decode_alarm(at_end[0].payload)
    assert alarm.tst == pytest.approx(START + 500, abs=0.01)  # the press time, not the send time


def test_clock_skew_shows_in_every_timestamp() -> None:
    device = _device(clock=DeviceClock(offset_s=-7_200))
    device.press(30)
    messages = device.advance_to(100)
    stamps = []
    for m in messages:
        if m.kind is MessageKind.ALARM:
            stamps.append(codec.decode_alarm(m.payload).tst)
        elif m.kind is MessageKind.STATUS:
            stamps.append(codec.decode_status(m.payload).tst)
        else:
            stamps.extend(f.tst for f in codec.decode_fixes(m.payload))
    assert stamps and all(START - 7_200 <= s <= START - 7_100 for s in stamps)


def test_topics_parse_as_uplinks() -> None:
    device = _device()
    device.press(10)
    for m in device.advance_to(400):
        parsed = TOPICS.parse(m.topic)
        assert parsed.device_id == "dev-001"
        assert parsed.channel in (Channel.ALARM, Channel.LOC, Channel.STATUS)


def test_split_batches_respects_size_and_count_limits() -> None:
    fixes = [
        Fix(tst=START + i, lat=51.123456, lon=4.123456, acc=12.3, vel=1.4, batt=88)
        for i in range(500)
    ]
    batches = split_batches(fixes)
    assert [f for b in batches for f in b] == fixes
    assert all(len(codec.encode_batch(b)) <= 8 * 1024 for b in batches)
    assert all(len(b) <= 200 for b in batches)
    # Greedy: every batch but the last is full (one more fix would not fit).
    for batch, following in itertools.pairwise(batches):
        assert len(codec.encode_batch(batch + following[:1])) > 8 * 1024 or len(batch) == 200
    assert split_batches([]) == []
    tiny = split_batches(fixes[:10], max_bytes=300)
    assert all(len(codec.encode_batch(b)) <= 300 for b in tiny)
