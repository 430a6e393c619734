"""Any sequence of fixes, in any order, with any accuracy, near or on the other side of the
world, one by one or in a batch: the engine never raises, and its events concern only the
measures' own devices, at the times of fixes it was given (one dated more than `max_ahead_s`
after `now`, at `now + max_ahead_s`)."""

from __future__ import annotations

import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from shapely.geometry import Polygon

from geofences import ContactBan, Engine, ExclusionZone, GeofenceConfig
from tests.geofences.places import T0, latlon, square

FIXES = st.lists(
    st.tuples(
        st.sampled_from(["off", "vic", "stranger"]),
        st.floats(-600, 7200),  # seconds after T0: out of order, repeated, after "now"
        st.floats(-20_000, 20_000), st.floats(-20_000, 20_000),  # metres around the zone
        st.one_of(st.none(), st.floats(0, 1e6)),  # accuracy
        st.booleans(),  # far away: near a pole or the date line instead
    ),
    max_size=25,
)


def _engine() -> Engine:
    return Engine([
        ExclusionZone(id="z", case_id="c", subject_device_ids=("off",),
                      area=Polygon(square(0, 0, 500))),
        ContactBan(id="b", case_id="c", subject_device_ids=("off",),
                   protected_device_ids=("vic",), radius_m=500, pre_alert_m=500),
    ], GeofenceConfig())


@settings(max_examples=300, suppress_health_check=list(HealthCheck), deadline=None)
@given(FIXES, st.booleans())
def test_any_fixes_give_only_events_of_the_measures_own_devices(sequence, batch) -> None:
    engine, now = _engine(), T0 + 3600
    fixes = []
    for device, t, dx, dy, acc, far in sequence:
        lat, lon = (math.copysign(89.9, dx), math.copysign(179.9, dy)) if far else latlon(dx, dy)
        fixes.append((device, T0 + t, lat, lon, acc))
    if batch:
        events = engine.on_fixes(fixes, now=now)
    else:
        events = [e for f in fixes for e in engine.on_fix(*f, now=now)]
    times = {min(tst, now + engine.config.max_ahead_s) for _, tst, _, _, _ in fixes}
    for event in events:
        assert (event.measure_id, event.device_id) in {("z", "off"), ("b", "off")}
        assert event.at in times
    engine.snapshot_state()
