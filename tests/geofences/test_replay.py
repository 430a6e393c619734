"""Zone tuning: replay counts the events a proposed measure would have raised, per day."""

from __future__ import annotations

from shapely.geometry import Polygon

from geofences import ExclusionZone, TrackFix, replay
from tests.geofences.places import T0, latlon, square


def test_replay_counts_breaches_per_local_day():
    zone = ExclusionZone(
        id="z",
        case_id="c",
        subject_device_ids=("off",),
        area=Polygon(square(0, 0, 500)),
    )
    track = []
    for day in range(3):
        base = T0 + day * 86_400
        # each day: one visit into the zone (two fixes), then away
        for i, dx in enumerate((-3000, 0, 10, 3000)):
            lat, lon = latlon(dx)
            track.append(TrackFix(base + i * 60, lat, lon, 8.0))
    lat, lon = latlon(5000)
    report = replay({"off": track, "bystander": [(T0, lat, lon, 5.0)]}, [zone])
    assert report.days == 3
    assert (
        report.totals["zone_breach"] == 3 and report.totals["zone_breach_cleared"] == 3
    )
    assert report.alerts_per_day() == 1.0
    assert all(c["zone_breach"] == 1 for c in report.per_day.values())
    assert report.as_dict()["totals"]["approach"] == 0
