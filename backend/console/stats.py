"""Per-region service figures for the regions page (pure): time to acknowledge, time to
dispatch, false-alarm rate and device uptime, so that unequal protection becomes visible."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from statistics import median

CLOSED_FOR_RATE = frozenset({"resolved", "false_alarm"})


@dataclass(frozen=True, slots=True)
class AlertRow:
    vr_code: str
    raised_at: datetime
    acknowledged_at: datetime | None
    dispatched_at: datetime | None
    state: str
    exercise: bool = False


@dataclass(frozen=True, slots=True)
class DeviceRow:
    vr_code: str
    online: bool | None


@dataclass(frozen=True, slots=True)
class RegionFigures:
    vr_code: str
    alerts: int
    median_ack_s: float | None
    median_dispatch_s: float | None
    false_alarm_pct: float | None
    uptime_pct: float | None


def region_figures(alerts: Iterable[AlertRow], devices: Iterable[DeviceRow]) -> list[RegionFigures]:
    ack: dict[str, list[float]] = defaultdict(list)
    dispatch: dict[str, list[float]] = defaultdict(list)
    closed: dict[str, int] = defaultdict(int)
    false: dict[str, int] = defaultdict(int)
    count: dict[str, int] = defaultdict(int)
    for a in alerts:
        if a.exercise:
            continue
        count[a.vr_code] += 1
        if a.acknowledged_at is not None:
            ack[a.vr_code].append((a.acknowledged_at - a.raised_at).total_seconds())
        if a.dispatched_at is not None:
            dispatch[a.vr_code].append((a.dispatched_at - a.raised_at).total_seconds())
        if a.state in CLOSED_FOR_RATE:
            closed[a.vr_code] += 1
            false[a.vr_code] += a.state == "false_alarm"
    seen: dict[str, int] = defaultdict(int)
    up: dict[str, int] = defaultdict(int)
    for d in devices:
        if d.online is None:
            continue
        seen[d.vr_code] += 1
        up[d.vr_code] += bool(d.online)
    codes = sorted(set(count) | set(seen))
    return [
        RegionFigures(
            vr_code=code,
            alerts=count[code],
            median_ack_s=round(median(ack[code]), 1) if ack[code] else None,
            median_dispatch_s=round(median(dispatch[code]), 1) if dispatch[code] else None,
            false_alarm_pct=round(100 * false[code] / closed[code], 1) if closed[code] else None,
            uptime_pct=round(100 * up[code] / seen[code], 1) if seen[code] else None,
        )
        for code in codes
    ]
