"""What a GPS receiver reports: noisy positions with accuracy values, clock skew, coverage gaps.

Accuracy follows the Android / OwnTracks convention: `acc` is the radius, in metres, of the 68%
confidence circle. For a circular Gaussian error that is 1.51 times the per-axis standard
deviation, so the noise drawn here has `sigma = acc / 1.51` and about 68% of the fixes land within
`acc` of the truth. The error is correlated in time (a Gauss-Markov process with a time constant
of tens of seconds), as real receivers drift rather than jump, and is clipped at a few sigma so
that a "typical" fix never lies wildly. Urban-canyon outliers report a large accuracy (50-150 m)
with an error drawn to match it.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

# acc = ACC_PER_SIGMA * sigma: the 68% radius of a circular Gaussian, sqrt(-2 ln 0.32).
ACC_PER_SIGMA = math.sqrt(-2.0 * math.log(1.0 - 0.68))


@dataclass(frozen=True, slots=True)
class GpsProfile:
    acc_median_m: float = 8.0
    acc_spread: float = 0.45  # sigma of log(acc)
    acc_min_m: float = 3.0
    acc_max_m: float = 30.0
    outlier_rate: float = 0.02
    outlier_acc_m: tuple[float, float] = (50.0, 150.0)
    correlation_s: float = 20.0  # time constant of the error process
    clip_sigmas: float = 2.5  # no error beyond this many sigma
    speed_noise_mps: float = 0.3


OPEN_SKY = GpsProfile(acc_median_m=5.0, outlier_rate=0.0, acc_max_m=15.0)
URBAN = GpsProfile()


@dataclass(frozen=True, slots=True)
class Observation:
    """A reported position in RD New metres, accuracy in metres, speed in m/s."""

    x: float
    y: float
    acc: float
    vel: float
    outlier: bool


class GpsReceiver:
    """Turns true positions into observations, consistent with the reported accuracy."""

    def __init__(self, rng: random.Random, profile: GpsProfile = URBAN) -> None:
        self.rng = rng
        self.profile = profile
        self._u = (rng.gauss(0, 1), rng.gauss(0, 1))  # unit-variance latent error
        self._last_t: float | None = None

    def draw_accuracy(self) -> tuple[float, bool]:
        p = self.profile
        if p.outlier_rate > 0 and self.rng.random() < p.outlier_rate:
            return self.rng.uniform(*p.outlier_acc_m), True
        acc = math.exp(self.rng.gauss(math.log(p.acc_median_m), p.acc_spread))
        return min(p.acc_max_m, max(p.acc_min_m, acc)), False

    def observe(self, t: float, x: float, y: float, speed: float) -> Observation:
        p = self.profile
        dt = math.inf if self._last_t is None else max(0.0, t - self._last_t)
        self._last_t = t
        rho = math.exp(-dt / p.correlation_s) if p.correlation_s > 0 else 0.0
        keep = math.sqrt(max(0.0, 1.0 - rho * rho))
        self._u = (
            rho * self._u[0] + keep * self.rng.gauss(0, 1),
            rho * self._u[1] + keep * self.rng.gauss(0, 1),
        )
        acc, outlier = self.draw_accuracy()
        acc = round(acc, 1)  # as reported; the noise matches the reported value
        ux, uy = self._u if not outlier else (self.rng.gauss(0, 1), self.rng.gauss(0, 1))
        norm = math.hypot(ux, uy)
        if norm > p.clip_sigmas:
            ux, uy = ux / norm * p.clip_sigmas, uy / norm * p.clip_sigmas
        sigma = acc / ACC_PER_SIGMA
        vel = max(0.0, speed + self.rng.gauss(0, p.speed_noise_mps)) if speed > 0 else 0.0
        return Observation(x + ux * sigma, y + uy * sigma, acc, round(vel, 1), outlier)


@dataclass(frozen=True, slots=True)
class DeviceClock:
    """A device's clock: a fixed offset plus a drift in parts per million of elapsed time."""

    offset_s: float = 0.0
    drift_ppm: float = 0.0

    def read(self, true_epoch: float, elapsed_s: float) -> float:
        return true_epoch + self.offset_s + elapsed_s * self.drift_ppm * 1e-6

    @property
    def skewed(self) -> bool:
        return self.offset_s != 0.0 or self.drift_ppm != 0.0


@dataclass(frozen=True, slots=True)
class CoverageGaps:
    """Intervals of simulated time `[start, end)` without mobile coverage."""

    intervals: tuple[tuple[float, float], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        for start, end in self.intervals:
            if end <= start:
                raise ValueError("a coverage gap must end after it starts")

    def covered(self, t: float) -> bool:
        return not any(start <= t < end for start, end in self.intervals)

    def gap_end(self, t: float) -> float | None:
        """The end of the gap containing `t`, or None when covered."""
        for start, end in self.intervals:
            if start <= t < end:
                return end
        return None

    @staticmethod
    def random(
        rng: random.Random, duration_s: float, gaps_per_hour: float, mean_gap_s: float
    ) -> CoverageGaps:
        """Poisson-distributed gaps with exponential lengths over `[0, duration_s)`."""
        intervals: list[tuple[float, float]] = []
        if gaps_per_hour <= 0:
            return CoverageGaps()
        t = rng.expovariate(gaps_per_hour / 3600.0)
        while t < duration_s:
            length = max(1.0, rng.expovariate(1.0 / mean_gap_s))
            intervals.append((t, t + length))
            t += length + rng.expovariate(gaps_per_hour / 3600.0)
        return CoverageGaps(tuple(intervals))
