from __future__ import annotations

from loadtests.pacing import paced, ticks


def test_ticks_send_exactly_rate_times_duration():
    assert sum(ticks(2_000, 0.2)) == 400


def test_paced_calls_in_order():
    calls = []
    paced(1_000, 5, calls.append)
    assert calls == [0, 1, 2, 3, 4]


def test_ticks_wake_once_per_tick_not_once_per_message():
    sends = list(ticks(2_000, 0.2, tick_s=0.05))
    assert sum(sends) == 400
    assert len(sends) <= 0.2 / 0.05 + 2  # every wake-up is at least a tick after the last
