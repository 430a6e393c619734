"""group_health_signals(): bounded desk alerts under a storm; urgent alerts are never grouped."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from backend.supervision import (
    STORM_TYPE,
    DeviceHealth,
    HealthSignal,
    NotGroupable,
    OpenHealthAlert,
    check_device,
    closed_episode,
    group_health_signals,
)

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)
WINDOW = timedelta(minutes=5)


def silent(
    device: str, case: str | None, *, seconds_ago: float = 120, desk: str = "VT4607"
) -> HealthSignal:
    return HealthSignal(
        "device_silent", device, case, NOW - timedelta(seconds=seconds_ago), "silent", desk
    )


def storm_signals(devices: int = 100) -> list[HealthSignal]:
    """100 devices of 50 cases (victim + offender each), over two desks, all gone silent
    together, as after a broker outage: produced by check_device itself."""
    signals = []
    for n in range(devices):
        health = DeviceHealth(
            device_id=f"dev-{n:03d}",
            case_id=f"case-{n // 2:03d}",
            last_seen=NOW - timedelta(seconds=100 + n % 7),
            online=True,
            last_fix_at=NOW - timedelta(seconds=100),
            desk_code="VT4607" if n < 60 else "VT7014",
        )
        signals += check_device(health, NOW)
    return signals


@pytest.mark.parametrize("urgent_type", ["panic", "fall", "tamper", "zone_breach", "proximity"])
def test_urgent_alerts_are_never_grouped(urgent_type: str) -> None:
    panic = HealthSignal(urgent_type, "dev-panic", "case-1", NOW, "button pressed")
    with pytest.raises(NotGroupable):
        group_health_signals([silent("dev-1", "case-1"), panic], [], NOW, WINDOW)


def test_one_alert_per_case_and_type() -> None:
    decision = group_health_signals(
        [
            silent("dev-1", "case-1"),
            silent("dev-2", "case-1", seconds_ago=200),
            silent("dev-3", "case-2"),
            HealthSignal("battery_low", "dev-1", "case-1", None, "battery 9%", "VT4607"),
        ],
        [],
        NOW,
        WINDOW,
    )
    summary = [(a.case_id, a.type, a.device_ids) for a in decision.new]
    assert summary == [
        ("case-1", "battery_low", ("dev-1",)),
        ("case-1", "device_silent", ("dev-1", "dev-2")),
        ("case-2", "device_silent", ("dev-3",)),
    ]
    assert decision.new[1].since == NOW - timedelta(seconds=200)
    assert decision.updates == () and decision.storms == ()


def test_devices_without_a_case_are_grouped_per_device() -> None:
    decision = group_health_signals([silent("a", None), silent("b", None)], [], NOW, WINDOW)
    assert sorted(a.device_ids for a in decision.new) == [("a",), ("b",)]


def test_repeated_signals_in_a_batch_are_suppressed() -> None:
    decision = group_health_signals([silent("dev-1", "case-1")] * 3, [], NOW, WINDOW)
    assert len(decision.new) == 1
    assert decision.suppressed == 2


def test_open_alert_is_updated_not_duplicated() -> None:
    open_alert = OpenHealthAlert("alert-7", "case-1", "device_silent", frozenset({"dev-1"}))
    decision = group_health_signals(
        [silent("dev-1", "case-1"), silent("dev-2", "case-1")], [open_alert], NOW, WINDOW
    )
    assert decision.new == ()
    [update] = decision.updates
    assert (update.alert_id, update.added_device_ids, update.device_ids) == (
        "alert-7",
        ("dev-2",),
        ("dev-1", "dev-2"),
    )


def test_open_alert_with_nothing_new_is_left_alone() -> None:
    open_alert = OpenHealthAlert(
        "alert-7", "case-1", "device_silent", frozenset({"dev-1", "dev-2"})
    )
    decision = group_health_signals([silent("dev-1", "case-1")], [open_alert], NOW, WINDOW)
    assert decision.desk_actions == 0
    assert decision.suppressed == 1


def test_storm_of_100_devices_gives_bounded_grouped_alerts() -> None:
    signals = storm_signals(100)
    assert len(signals) == 100 and {s.type for s in signals} == {"device_silent"}
    decision = group_health_signals(signals, [], NOW, WINDOW, storm_threshold=10)
    assert len(decision.new) == 50  # one per case, not one per device
    assert all(len(a.device_ids) == 2 and a.in_storm for a in decision.new)
    assert [(s.desk_code, s.device_count, s.total_device_count) for s in decision.storms] == [
        ("VT4607", 60, 100),
        ("VT7014", 40, 100),
    ]
    assert decision.desk_actions == 52


def test_storm_repeated_next_cycle_produces_no_new_alerts() -> None:
    signals = storm_signals(100)
    first = group_health_signals(signals, [], NOW, WINDOW)
    open_alerts = [
        OpenHealthAlert(f"a-{i}", a.case_id, a.type, frozenset(a.device_ids), a.desk_code)
        for i, a in enumerate(first.new)
    ] + [
        OpenHealthAlert(f"s-{s.desk_code}", None, STORM_TYPE, frozenset(), s.desk_code)
        for s in first.storms
    ]
    second = group_health_signals(signals, open_alerts, NOW + timedelta(seconds=30), WINDOW)
    assert second.new == ()
    assert second.updates == ()
    assert second.suppressed == 100
    # The storm summaries update the open ones rather than adding new ones.
    assert [s.alert_id for s in second.storms] == ["s-VT4607", "s-VT7014"]


def test_no_storm_at_or_below_the_threshold() -> None:
    signals = [silent(f"d{n}", f"c{n}") for n in range(10)]
    decision = group_health_signals(signals, [], NOW, WINDOW, storm_threshold=10)
    assert decision.storms == ()
    assert not any(a.in_storm for a in decision.new)
    eleven = group_health_signals(
        signals + [silent("d10", "c10")], [], NOW, WINDOW, storm_threshold=10
    )
    assert len(eleven.storms) == 1


def test_only_devices_gone_silent_within_the_window_count_for_a_storm() -> None:
    old = [silent(f"old{n}", f"c{n}", seconds_ago=3600) for n in range(20)]
    decision = group_health_signals(old, [], NOW, WINDOW, storm_threshold=10)
    assert decision.storms == ()
    assert len(decision.new) == 20


def test_a_closed_episode_raises_nothing_until_something_new_is_reported() -> None:
    quiet = replace(silent("dev-1", "case-1"), reported_at=NOW - timedelta(seconds=120))
    closed = {("dev-1", "device_silent"): NOW - timedelta(seconds=20)}
    assert closed_episode(quiet, closed)
    decision = group_health_signals([quiet], [], NOW, WINDOW, closed=closed)
    assert decision.new == () and decision.suppressed == 1
    # Heard after the close, then silent again: a new episode.
    heard = NOW - timedelta(seconds=10)
    again = replace(quiet, since=heard, reported_at=heard)
    assert not closed_episode(again, closed)
    assert [a.device_ids for a in group_health_signals([again], [], NOW, WINDOW,
                                                       closed=closed).new] == [("dev-1",)]
    # A closed alert of another type or device covers nothing; nor does an older close.
    assert not closed_episode(quiet, {("dev-1", "no_fix"): NOW, ("dev-2", "device_silent"): NOW})
    assert not closed_episode(quiet, {("dev-1", "device_silent"): NOW - timedelta(seconds=200)})
    # Unknown: any closed alert covers it.
    assert closed_episode(replace(quiet, reported_at=None), closed)


def test_closed_episodes_still_count_towards_a_storm() -> None:
    signals = [replace(s, reported_at=s.since) for s in storm_signals(100)]
    closed = {(s.device_id, s.type): NOW for s in signals}
    decision = group_health_signals(signals, [], NOW, WINDOW, closed=closed)
    assert decision.new == () and decision.updates == ()
    assert sum(s.device_count for s in decision.storms) == 100


def test_an_open_storm_summary_is_updated_only_when_its_counts_changed() -> None:
    signals = storm_signals(100)

    def open_storm(desk: str, count: int, total: int) -> OpenHealthAlert:
        return OpenHealthAlert(f"s-{desk}", None, STORM_TYPE, frozenset(), desk, count, total)

    same = [open_storm("VT4607", 60, 100), open_storm("VT7014", 40, 100)]
    assert group_health_signals(signals, same, NOW, WINDOW).storms == ()
    grown = [open_storm("VT4607", 59, 99), open_storm("VT7014", 40, 99)]
    assert [(s.alert_id, s.device_count, s.total_device_count)
            for s in group_health_signals(signals, grown, NOW, WINDOW).storms] == [
        ("s-VT4607", 60, 100), ("s-VT7014", 40, 100)
    ]


def test_the_devices_of_exercises_storm_apart_from_the_live_ones() -> None:
    """12 devices of an exercise and 5 live ones fall silent together: the exercise gets a
    summary of its own, the live devices none (5 are no storm), nor are they folded under one."""
    drills = [silent(f"x{n}", f"xc{n}") for n in range(12)]
    live = [silent(f"l{n}", f"lc{n}") for n in range(5)]
    exercise_cases = {f"xc{n}" for n in range(12)}
    decision = group_health_signals(drills + live, [], NOW, WINDOW, storm_threshold=10,
                                    exercise_cases=exercise_cases)
    assert [(s.exercise, s.device_count, s.total_device_count) for s in decision.storms] == [
        (True, 12, 12)
    ]
    assert {a.case_id for a in decision.new if a.in_storm} == exercise_cases
    # 11 live ones too: a live summary counting the live devices only, the exercise's apart.
    live = [silent(f"l{n}", f"lc{n}") for n in range(11)]
    open_drill = OpenHealthAlert("s-x", None, STORM_TYPE, frozenset(), "VT4607", 12, 12,
                                 exercise=True)
    decision = group_health_signals(drills + live, [open_drill], NOW, WINDOW, storm_threshold=10,
                                    exercise_cases=exercise_cases)
    assert [(s.exercise, s.device_count, s.total_device_count, s.alert_id)
            for s in decision.storms] == [(False, 11, 11, None)]
    # A closed exercise summary holds back no live one, and a closed live one no exercise's.
    closed = {("VT4607", True): 12}
    assert [s.exercise for s in group_health_signals(
        drills + live, [], NOW, WINDOW, storm_threshold=10, exercise_cases=exercise_cases,
        closed_storms=closed).storms] == [False]
