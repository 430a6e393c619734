"""Geofences: protective measures as legal objects, evaluated fast and without false alarms.

Pure code: no network, no database session, no backend imports. The backend stores measures and
state; this package decides.

Measures (`measures`): `ExclusionZone` (polygon/multipolygon with holes, or a circle),
`ProtectedPlace` (circle), `ContactBan` (offender within `radius_m` of the victim's live
position). Each has an id, case id, offender device ids, optional pre-alert ring, validity
period, weekly `TimeWindow`s (Europe/Amsterdam), authority and court/OM reference, and
`Exemption`s (where, and optionally when, the measure does not apply).

GeoJSON (`geojson`): `measure_from_feature(feature, home=(lon, lat)) -> Measure` validates
(invalid or self-intersecting geometry, absurd size, coordinates outside the projection, a zone
or its pre-alert ring within exit margin and default accuracy of the offender's home without an
exception) and raises `InvalidMeasure` carrying every
`Problem`; `measure_to_feature(measure) -> dict`; `validate_measure(measure, home=...)`;
`home_problems(measures, home, now) -> list[Problem]`, the same rule for a home registered or
moved while measures stand (each problem's path names its measure).

Engine (`engine`), the entry point of the ingest pipeline:

    engine = Engine(measures, GeofenceConfig())
    engine.on_fix(device_id, tst, lat, lon, acc, now, behind=None) -> list[GeofenceEvent]
    engine.on_fixes([(device_id, tst, lat, lon, acc), ...], now, behind=None)
    engine.reload(measures)                 # atomic swap of the index; states kept by id
    engine.snapshot_state() -> dict         # plain JSON-able dict (e.g. for Redis)
    engine.restore_state(snapshot)
    engine.adopt(fixes, states)             # take over devices another engine moved on
    engine.last_time(device_id) -> float | None
    engine.take_changed() -> dict           # states changed since the last call, per device
                                            # and measure (None: idle now)
    engine.forget_device(device_id)
    engine.state_of(device_id, measure_id) -> ZoneState
    engine.states_of(device_id) -> dict     # its states not idle, as take_changed gives

All distances are metres in a projected CRS (EPSG:28992 by default, `GeofenceConfig.crs`).
A fix of device D meets only the measures whose offender D is, plus the contact bans
protecting D. Fixes not newer than D's last accepted fix, or dated beyond `now +
max_future_s`, change no state (the caller still stores them); a fix dated beyond `now +
max_ahead_s` (10 s) is evaluated as dated then, so one clock glitch cannot make the real fixes
after it look old.

Contact bans pair the offender's and the victim's fixes on a common time base: each fix's time
plus how far its device's clock runs behind (`behind`, per device id, decided by the caller;
absent: 0), never later than `now + max_ahead_s` (`engine.common_time`). A victim whose clock
runs 150 s behind is so paired with the offender's fixes of the same moment, not of 150 s
before. Their states go by those times; their events carry the later of the pair's own device
times, which no correction changes (a batch evaluated again raises the same events).

Decisions (`transitions`): `step(state, observation, config) -> (state, events)`, a pure
function with the rules listed in its module docstring. Events (`GeofenceEvent`): `kind` in
zone_breach / approach / proximity, their `_cleared` forms, and partner_position_unknown;
`confidence` "possible" or "confirmed"; `basis` says why (fix, segment, repeated, exception,
inactive, partner).

Zone tuning (`replay`): `replay(tracks, measures, config) -> ReplayReport` with events per day.

Index (`index`): `MeasureIndex` with per-device lookup and a shapely STRtree of prepared
projected zones (`query(x, y, within_m)`).

Errors (`errors`): `GeofenceError` > `ConfigError`, `InvalidMeasure` > `InvalidField`,
`InvalidGeometry`, `OutsideProjectionArea`, `AbsurdSize`, `HomeInsideZone`.
"""

from geofences.config import GeofenceConfig
from geofences.engine import Engine
from geofences.errors import (
    AbsurdSize,
    ConfigError,
    GeofenceError,
    HomeInsideZone,
    InvalidField,
    InvalidGeometry,
    InvalidMeasure,
    OutsideProjectionArea,
    Problem,
)
from geofences.events import EVENT_KINDS, GeofenceEvent
from geofences.geojson import (
    home_problems,
    measure_from_feature,
    measure_home_problem,
    measure_problems,
    measure_to_feature,
    validate_measure,
)
from geofences.index import MeasureIndex
from geofences.measures import (
    ContactBan,
    ExclusionZone,
    Exemption,
    Measure,
    ProtectedPlace,
)
from geofences.projection import Projection, projection_for
from geofences.replay import ReplayReport, TrackFix, replay
from geofences.timewindows import TimeWindow
from geofences.transitions import Observation, ZoneState, step

__all__ = [
    "EVENT_KINDS",
    "AbsurdSize",
    "ConfigError",
    "ContactBan",
    "Engine",
    "ExclusionZone",
    "Exemption",
    "GeofenceConfig",
    "GeofenceError",
    "GeofenceEvent",
    "HomeInsideZone",
    "InvalidField",
    "InvalidGeometry",
    "InvalidMeasure",
    "Measure",
    "MeasureIndex",
    "Observation",
    "OutsideProjectionArea",
    "Problem",
    "Projection",
    "ProtectedPlace",
    "ReplayReport",
    "TimeWindow",
    "TrackFix",
    "ZoneState",
    "home_problems",
    "measure_from_feature",
    "measure_home_problem",
    "measure_problems",
    "measure_to_feature",
    "projection_for",
    "replay",
    "step",
    "validate_measure",
]
