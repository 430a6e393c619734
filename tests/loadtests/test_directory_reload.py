"""`python -m loadtests.directory_reload` on a small directory (devices, case snapshots or
measures): it loads, reloads and reports (the numbers themselves are in docs/benchmarks.md,
never asserted here)."""

from __future__ import annotations

import math

import pytest

from loadtests.directory_reload import measure


@pytest.mark.parametrize("what", ["directory", "cases", "measures"])
def test_it_reloads_and_reports_how_late_the_other_thread_was(loadtest_db_url, what) -> None:
    result = measure(loadtest_db_url, devices=1_500, reloads=2, what=what)
    assert result.devices >= 1_500
    assert len(result.reload_ms) == 2 and all(ms > 0 for ms in result.reload_ms)
    for late in (result.idle, result.reloading):
        assert not math.isnan(late.p50_ms) and late.p50_ms <= late.p99_ms <= late.max_ms


@pytest.mark.parametrize("what", ["directory", "cases"])
def test_one_case_read_again_reports_the_whole_held(loadtest_db_url, what) -> None:
    result = measure(loadtest_db_url, devices=1_500, reloads=2, what=what, one_case=True)
    assert result.devices >= 1_500  # held; each reload read one case
    assert len(result.reload_ms) == 2 and all(ms > 0 for ms in result.reload_ms)
