"""Zone tuning: replay recorded or simulated tracks against proposed measures and count the
events they would have raised, per local day, before a measure goes live. Pure: the tracks and
measures come in, a report goes out; the command-line wiring lives in the backend."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from geofences.config import GeofenceConfig
from geofences.engine import Engine
from geofences.events import EVENT_KINDS, GeofenceEvent
from geofences.measures import Measure

ALERT_KINDS = ("zone_breach", "proximity", "approach", "partner_position_unknown")


@dataclass(frozen=True)
class TrackFix:
    """One recorded fix (Unix seconds, WGS84 degrees, accuracy metres)."""

    tst: float
    lat: float
    lon: float
    acc: float | None = None


@dataclass
class ReplayReport:
    """Events of a replay and their counts per local day (config time zone)."""

    events: list[GeofenceEvent] = field(default_factory=list)
    per_day: dict[date, Counter[str]] = field(default_factory=dict)
    first_day: date | None = None
    last_day: date | None = None

    @property
    def days(self) -> int:
        """Days covered by the tracks (first to last fix, inclusive)."""
        if self.first_day is None or self.last_day is None:
            return 0
        return (self.last_day - self.first_day).days + 1

    @property
    def totals(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for counts in self.per_day.values():
            total.update(counts)
        return total

    def alerts_per_day(self) -> float:
        """Mean number of alert-raising events (not clearings) per covered day."""
        if not self.days:
            return 0.0
        totals = self.totals
        return sum(totals[k] for k in ALERT_KINDS) / self.days

    def as_dict(self) -> dict[str, Any]:
        return {
            "days": self.days,
            "alerts_per_day": self.alerts_per_day(),
            "totals": {k: self.totals.get(k, 0) for k in EVENT_KINDS},
            "per_day": {
                d.isoformat(): dict(c) for d, c in sorted(self.per_day.items())
            },
        }


def _as_fix(item: Any) -> TrackFix:
    if isinstance(item, TrackFix):
        return item
    if isinstance(item, Mapping):
        return TrackFix(
            float(item["tst"]), float(item["lat"]), float(item["lon"]), item.get("acc")
        )
    if isinstance(item, tuple | list):
        return TrackFix(*item)
    return TrackFix(
        float(item.tst), float(item.lat), float(item.lon), getattr(item, "acc", None)
    )


def replay(
    tracks: Mapping[str, Iterable[Any]],
    measures: Sequence[Measure],
    config: GeofenceConfig | None = None,
) -> ReplayReport:
    """Feed every device's fixes (TrackFix, (tst, lat, lon, acc) tuples, mappings or objects
    with those attributes), merged in time order, through a fresh engine with `now` = fix time."""
    cfg = config or GeofenceConfig()
    engine = Engine(measures, cfg)
    merged = sorted(
        (
            (fix.tst, device, fix)
            for device, fixes in tracks.items()
            for fix in map(_as_fix, fixes)
        ),
        key=lambda t: (t[0], t[1]),
    )
    report = ReplayReport()
    tz = cfg.tz
    for tst, device, fix in merged:
        day = datetime.fromtimestamp(tst, tz).date()
        if report.first_day is None:
            report.first_day = day
        report.last_day = day
        for event in engine.on_fix(device, fix.tst, fix.lat, fix.lon, fix.acc, now=tst):
            report.events.append(event)
            report.per_day.setdefault(day, Counter())[event.kind] += 1
    return report
