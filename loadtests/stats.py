"""Latency statistics and target verdicts: pure functions."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) by the nearest-rank method; NaN for no samples."""
    if not samples:
        return math.nan
    ordered = sorted(samples)
    rank = max(1, math.ceil(round(q / 100.0 * len(ordered), 9)))
    return ordered[min(rank, len(ordered)) - 1]


@dataclass(frozen=True, slots=True)
class Latency:
    """Latency summary in milliseconds."""

    n: int
    p50: float
    p99: float
    p999: float
    max: float

    @classmethod
    def of(cls, samples_ms: Sequence[float]) -> Latency:
        """Summary of the samples; `math.inf` marks a message that never arrived (counted in
        `n` and in the percentiles, so p99 is infinite when more than 1 % are missing)."""
        return cls(
            n=len(samples_ms),
            p50=percentile(samples_ms, 50),
            p99=percentile(samples_ms, 99),
            p999=percentile(samples_ms, 99.9),
            max=max(samples_ms) if samples_ms else math.nan,
        )

    def as_dict(self) -> dict[str, float]:
        return {"n": self.n, "p50": self.p50, "p99": self.p99, "p999": self.p999, "max": self.max}


@dataclass(frozen=True, slots=True)
class Verdict:
    """One target: what was measured against what limit."""

    target: str
    measured: float
    limit: float
    unit: str
    higher_is_better: bool = False

    @property
    def passed(self) -> bool:
        if math.isnan(self.measured):
            return False
        return self.measured >= self.limit if self.higher_is_better else self.measured <= self.limit

    @property
    def status(self) -> str:
        return "pass" if self.passed else "FAIL"


def ratio(value: float, floor: float) -> float:
    """value / floor, NaN when the floor is unknown or zero."""
    if not floor or math.isnan(floor) or math.isnan(value):
        return math.nan
    return value / floor
