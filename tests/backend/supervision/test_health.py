"""check_device(): EN 50136-style thresholds with a controllable clock."""

from __future__ import annotations

import random
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from backend.supervision import (
    DeviceHealth,
    InvalidThresholds,
    SupervisionThresholds,
    check_device,
    partition_signals,
)
from backend.supervision.health import FleetHealth, check_fleet, from_us, to_us

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
DEFAULTS = SupervisionThresholds()


def ago(seconds: float) -> datetime:
    return NOW - timedelta(seconds=seconds)


def healthy(**changes: object) -> DeviceHealth:
    base = DeviceHealth(
        device_id="dev-1",
        case_id="case-1",
        last_seen=ago(5),
        online=True,
        battery_pct=80,
        last_fix_at=ago(10),
        desk_code="VT4607",
    )
    return replace(base, **changes)  # type: ignore[arg-type]


def types(
    health: DeviceHealth, pursuit: bool = False, thresholds: SupervisionThresholds = DEFAULTS
) -> list[str]:
    return [s.type for s in check_device(health, NOW, thresholds, pursuit)]


def test_healthy_device_has_no_signals() -> None:
    assert types(healthy()) == []


@pytest.mark.parametrize(("age", "silent"), [(89, False), (89.9, False), (90, True), (600, True)])
def test_device_silent_after_90_seconds(age: float, silent: bool) -> None:
    assert ("device_silent" in types(healthy(last_seen=ago(age)))) is silent


@pytest.mark.parametrize(("age", "silent"), [(19, False), (20, True)])
def test_device_silent_after_20_seconds_in_pursuit(age: float, silent: bool) -> None:
    assert ("device_silent" in types(healthy(last_seen=ago(age)), pursuit=True)) is silent
    assert "device_silent" not in types(healthy(last_seen=ago(age)), pursuit=False)


def test_silent_signal_carries_ids_and_since() -> None:
    [signal] = check_device(healthy(last_seen=ago(120), last_fix_at=ago(120)), NOW)
    assert (signal.type, signal.device_id, signal.case_id, signal.desk_code) == (
        "device_silent",
        "dev-1",
        "case-1",
        "VT4607",
    )
    assert signal.since == ago(120)
    assert signal.urgent is False


def test_never_heard_device_is_silent() -> None:
    [signal] = check_device(healthy(last_seen=None, last_fix_at=None), NOW)
    assert signal.type == "device_silent"
    assert signal.since is None


@pytest.mark.parametrize(
    ("battery", "already_open", "low"),
    [
        (15, False, False),  # at the threshold: not yet low
        (14, False, True),
        (14, True, True),
        (18, False, False),  # above low threshold, not open: fine
        (18, True, True),  # open: stays low until it recovers (hysteresis)
        (19, True, True),
        (20, True, False),  # recovered
    ],
)
def test_battery_low_with_hysteresis(battery: int, already_open: bool, low: bool) -> None:
    health = healthy(battery_pct=battery, battery_low_open=already_open)
    assert ("battery_low" in types(health)) is low


def test_battery_low_not_raised_while_charging_or_unknown() -> None:
    assert types(healthy(battery_pct=3, charging=True)) == []
    assert types(healthy(battery_pct=None)) == []


def test_battery_thresholds_are_configurable() -> None:
    strict = SupervisionThresholds(battery_low_pct=30, battery_recover_pct=40)
    assert types(healthy(battery_pct=25), thresholds=strict) == ["battery_low"]


def test_tamper_is_an_urgent_signal() -> None:
    signals = check_device(healthy(tamper=True), NOW)
    assert [s.type for s in signals] == ["tamper"]
    urgent, groupable = partition_signals(signals)
    assert [s.type for s in urgent] == ["tamper"]
    assert groupable == []


@pytest.mark.parametrize(
    ("fix_age", "pursuit", "no_fix"),
    [(299, False, False), (300, False, True), (59, True, False), (60, True, True)],
)
def test_no_fix_thresholds(fix_age: float, pursuit: bool, no_fix: bool) -> None:
    health = healthy(last_fix_at=ago(fix_age))
    assert ("no_fix" in types(health, pursuit=pursuit)) is no_fix


def test_no_fix_only_while_online() -> None:
    assert types(healthy(last_fix_at=None)) == ["no_fix"]
    # Offline (Last Will received) or silent: the silence is the signal, not the missing fix.
    assert types(healthy(last_fix_at=ago(3600), online=False)) == []
    assert types(healthy(last_fix_at=ago(3600), last_seen=ago(100))) == ["device_silent"]


def test_several_conditions_at_once() -> None:
    health = healthy(last_seen=ago(200), battery_pct=5, tamper=True)
    assert types(health) == ["device_silent", "battery_low", "tamper"]


@pytest.mark.parametrize(
    "changes",
    [
        {"silent_after_pursuit_s": 100},
        {"silent_after_pursuit_s": 0},
        {"no_fix_after_pursuit_s": 400},
        {"battery_low_pct": 20, "battery_recover_pct": 20},
    ],
)
def test_contradicting_thresholds_are_rejected(changes: dict) -> None:
    with pytest.raises(InvalidThresholds):
        SupervisionThresholds(**changes)


def _random_device(rng: random.Random, i: int) -> DeviceHealth:
    def some_time() -> datetime | None:
        # Around every threshold, now and then exactly on one, sometimes unknown or ahead.
        if rng.random() < 0.1:
            return None
        return ago(rng.choice([0, 5, 19, 20, 59, 60, 89, 90, 299, 300, 1000, -30, -60, -61,
                               -3600, rng.uniform(0, 400)]))

    return DeviceHealth(
        device_id=f"dev-{i}", case_id=rng.choice([None, f"case-{i % 7}"]),
        last_seen=some_time(), last_fix_at=some_time(),
        online=rng.choice([None, True, False]),
        battery_pct=rng.choice([None, 0, 14, 15, 16, 19, 20, 21, 80]),
        charging=rng.random() < 0.2, tamper=rng.random() < 0.1,
        battery_low_open=rng.random() < 0.3, desk_code=rng.choice([None, "VT4607"]),
    )


def _reference(h: DeviceHealth, now: datetime, t: SupervisionThresholds,
               pursuit: bool) -> list[tuple[str, datetime | None, str]]:
    """The rules of the module's docstring, one device at a time over datetimes."""
    out = []
    tolerance = timedelta(seconds=t.clock_tolerance_s)
    seen_ahead = h.last_seen is not None and h.last_seen - now > tolerance
    last_seen = None if seen_ahead else h.last_seen
    silent_after = timedelta(seconds=t.silent_after_pursuit_s if pursuit else t.silent_after_s)
    silent = last_seen is None or now - last_seen >= silent_after
    if seen_ahead:
        ahead = int((h.last_seen - now).total_seconds())
        out.append(("device_silent", None, f"last seen {ahead} s ahead of the clock: not trusted"))
    elif silent:
        out.append(("device_silent", last_seen, "never heard" if last_seen is None else
                    f"silent for {int((now - last_seen).total_seconds())} s"))
    limit = t.battery_recover_pct if h.battery_low_open else t.battery_low_pct
    if h.battery_pct is not None and not h.charging and h.battery_pct < limit:
        out.append(("battery_low", None, f"battery {h.battery_pct}%"))
    if h.tamper:
        out.append(("tamper", None, "tamper reported"))
    no_fix_after = timedelta(seconds=t.no_fix_after_pursuit_s if pursuit else t.no_fix_after_s)
    if not silent and h.online is not False:
        if h.last_fix_at is not None and h.last_fix_at - now > tolerance:
            out.append(("no_fix", None, f"last fix {int((h.last_fix_at - now).total_seconds())}"
                        " s ahead of the clock: not trusted"))
        elif h.last_fix_at is None:
            out.append(("no_fix", None, "no fix yet"))
        elif now - h.last_fix_at >= no_fix_after:
            out.append(("no_fix", h.last_fix_at,
                        f"last fix {int((now - h.last_fix_at).total_seconds())} s ago"))
    return out


def test_a_fleet_gets_each_devices_own_signals_in_order() -> None:
    rng = random.Random(7)
    healths = [_random_device(rng, i) for i in range(2_000)]
    pursuit = [rng.random() < 0.3 for _ in healths]
    strict = SupervisionThresholds(silent_after_s=60.5, no_fix_after_s=299.0,
                                   battery_low_pct=14, battery_recover_pct=21,
                                   clock_tolerance_s=30.0)
    for thresholds in (DEFAULTS, strict):
        got = check_fleet(FleetHealth.of(healths), NOW, thresholds, np.array(pursuit))
        assert got == [s for h, p in zip(healths, pursuit, strict=True)
                       for s in check_device(h, NOW, thresholds, p)]
        assert [(s.device_id, s.type, s.since, s.detail, s.case_id, s.desk_code)
                for s in got] == [
            (h.device_id, kind, since, detail, h.case_id, h.desk_code)
            for h, p in zip(healths, pursuit, strict=True)
            for kind, since, detail in _reference(h, NOW, thresholds, p)
        ]
        assert len({s.type for s in got}) == 4  # every kind of signal was exercised


def test_an_empty_fleet_has_no_signals() -> None:
    assert check_fleet(FleetHealth.of([]), NOW) == []


def test_times_as_microseconds_are_exact() -> None:
    at = datetime(2026, 3, 1, 12, 0, 0, 123457, tzinfo=UTC)
    assert to_us(at) == 1_772_366_400_123_457
    assert from_us(to_us(at)) == at
    assert from_us(to_us(None)) is None


def test_signals_carry_the_report_they_rest_on() -> None:
    health = healthy(last_seen=ago(200), last_fix_at=ago(400), battery_pct=5, tamper=True,
                     last_status_at=ago(150))
    reported = {s.type: s.reported_at for s in check_device(health, NOW)}
    assert reported == {"device_silent": ago(200), "battery_low": ago(150), "tamper": ago(150)}
    fixless = {s.type: s.reported_at for s in check_device(healthy(last_fix_at=ago(400)), NOW)}
    assert fixless == {"no_fix": ago(400)}


def test_a_time_ahead_of_the_clock_is_not_trusted() -> None:
    # A clock that ran ahead an hour: the device is not hidden until real time catches up.
    [silent] = check_device(healthy(last_seen=ago(-3600)), NOW)
    assert (silent.type, silent.since, silent.reported_at) == ("device_silent", None, None)
    assert silent.detail == "last seen 3600 s ahead of the clock: not trusted"
    # Within the tolerance (60 s) it is a time like any other.
    assert check_device(healthy(last_seen=ago(-60), last_fix_at=ago(-60)), NOW) == []
    [no_fix] = check_device(healthy(last_fix_at=ago(-61)), NOW)
    assert (no_fix.type, no_fix.since) == ("no_fix", None)
    [tamper] = check_device(healthy(tamper=True, last_status_at=ago(-3600)), NOW)
    assert tamper.reported_at is None
    assert check_device(healthy(last_seen=ago(-3600)), NOW,
                        SupervisionThresholds(clock_tolerance_s=7200)) == []
