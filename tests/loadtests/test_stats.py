from __future__ import annotations

import math

from loadtests.stats import Latency, Verdict, percentile, ratio


def test_percentile_nearest_rank():
    samples = list(range(1, 1001))  # 1..1000
    assert percentile(samples, 50) == 500
    assert percentile(samples, 99) == 990
    assert percentile(samples, 99.9) == 999
    assert percentile(samples, 100) == 1000
    assert percentile([7.0], 99.9) == 7.0
    assert math.isnan(percentile([], 50))


def test_latency_summary_and_empty():
    lat = Latency.of([3.0, 1.0, 2.0])
    assert (lat.n, lat.p50, lat.p99, lat.max) == (3, 2.0, 3.0, 3.0)
    assert math.isnan(Latency.of([]).p99)


def test_verdicts_and_ratio():
    assert Verdict("p99", 4.0, 5.0, "ms").passed
    assert not Verdict("p99", 6.0, 5.0, "ms").passed
    assert Verdict("rate", 6_000, 5_000, "/s", higher_is_better=True).status == "pass"
    assert Verdict("missing", math.nan, 5.0, "ms").status == "FAIL"
    assert ratio(6.0, 2.0) == 3.0
    assert math.isnan(ratio(1.0, 0.0))
