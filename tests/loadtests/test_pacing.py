from __future__ import annotations

from loadtests.pacing import paced, ticks


def test_ticks_send_exactly_rate_times_duration():
    assert sum(ticks(2_000, 0.2)) == 400


def test_paced_calls_in_order():
    calls = []
    paced(1_000, 5, calls.append)
    assert calls == [0, 1, 2, 3, 4]
