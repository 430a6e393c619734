import itertools
import math
import random

import pytest

from simulator.gps import (
    ACC_PER_SIGMA,
    CoverageGaps,
    DeviceClock,
    GpsProfile,
    GpsReceiver,
)


def _observations(profile: GpsProfile, n: int = 4_000, dt: float = 60.0, seed: int = 1):
    gps = GpsReceiver(random.Random(seed), profile)
    return [gps.observe(i * dt, 0.0, 0.0, 1.4) for i in range(n)]


def test_acc_is_the_68_percent_radius() -> None:
    assert ACC_PER_SIGMA == pytest.approx(1.5096, abs=1e-4)
    obs = [o for o in _observations(GpsProfile(outlier_rate=0.0))]
    within = sum(1 for o in obs if math.hypot(o.x, o.y) <= o.acc) / len(obs)
    assert 0.62 < within < 0.74


def test_typical_accuracy_is_3_to_30_m() -> None:
    obs = _observations(GpsProfile(outlier_rate=0.0))
    accs = sorted(o.acc for o in obs)
    assert accs[0] >= 3.0 and accs[-1] <= 30.0
    assert 6.0 < accs[len(accs) // 2] < 10.0


def test_urban_canyon_outliers() -> None:
    obs = _observations(GpsProfile(outlier_rate=0.05))
    outliers = [o for o in obs if o.outlier]
    assert 0.03 < len(outliers) / len(obs) < 0.07
    assert all(50.0 <= o.acc <= 150.0 for o in outliers)
    assert all(not o.outlier for o in obs if o.acc <= 30.0)
    # Outlier errors are drawn to match their large accuracy.
    assert max(math.hypot(o.x, o.y) for o in outliers) > 50.0


def test_error_is_clipped() -> None:
    profile = GpsProfile(outlier_rate=0.0, clip_sigmas=2.0)
    for o in _observations(profile):
        assert math.hypot(o.x, o.y) <= 2.0 * o.acc / ACC_PER_SIGMA + 1e-6


def test_error_is_correlated_in_time() -> None:
    profile = GpsProfile(outlier_rate=0.0, acc_spread=0.0)
    close = _observations(profile, n=500, dt=1.0)
    far = _observations(profile, n=500, dt=300.0)

    def mean_jump(obs) -> float:
        return sum(math.dist((a.x, a.y), (b.x, b.y)) for a, b in itertools.pairwise(obs)) / (
            len(obs) - 1
        )

    assert mean_jump(close) < mean_jump(far) / 3


def test_speed_noise_is_never_negative() -> None:
    gps = GpsReceiver(random.Random(4))
    assert all(gps.observe(i, 0, 0, 0.1).vel >= 0 for i in range(500))
    assert gps.observe(600, 0, 0, 0.0).vel == 0.0


def test_same_seed_same_observations() -> None:
    assert _observations(GpsProfile(), n=50) == _observations(GpsProfile(), n=50)


def test_clock_offset_and_drift() -> None:
    assert DeviceClock().read(1_800_000_000.0, 10.0) == 1_800_000_000.0
    assert not DeviceClock().skewed
    clock = DeviceClock(offset_s=-7_200.0, drift_ppm=100.0)
    assert clock.skewed
    assert clock.read(1_800_000_000.0, 10_000.0) == pytest.approx(1_800_000_000.0 - 7_200.0 + 1.0)


def test_coverage_gaps() -> None:
    gaps = CoverageGaps(((10.0, 20.0), (30.0, 31.0)))
    assert gaps.covered(9.9) and not gaps.covered(10.0) and gaps.covered(20.0)
    assert gaps.gap_end(15.0) == 20.0
    assert gaps.gap_end(25.0) is None
    with pytest.raises(ValueError):
        CoverageGaps(((5.0, 5.0),))


def test_random_gaps_are_ordered_and_within_the_run() -> None:
    gaps = CoverageGaps.random(random.Random(3), 36_000.0, gaps_per_hour=2.0, mean_gap_s=300.0)
    assert 5 <= len(gaps.intervals) <= 40
    ends = [e for _, e in gaps.intervals]
    starts = [s for s, _ in gaps.intervals]
    assert all(s < 36_000.0 for s in starts)
    assert all(e <= s for e, s in zip(ends, starts[1:]))
    assert CoverageGaps.random(random.Random(3), 100.0, 0.0, 10.0).intervals == ()
