"""GeoJSON import and export of measures, and their validation.

A measure is one GeoJSON Feature (RFC 7946, WGS84 lon/lat):

    {"type": "Feature", "id": "m-1",
     "geometry": Polygon | MultiPolygon          (exclusion zone by area)
               | Point                            (circle zone, protected place: radius_m)
               | null,                            (contact ban)
     "properties": {
        "kind": "exclusion_zone" | "protected_place" | "contact_ban",
        "case_id": "c-1", "radius_m": 500, "pre_alert_m": 250,
        "valid_from": "2026-01-01T00:00:00+01:00" (or Unix seconds), "valid_until": ...,
        "time_windows": [{"days": ["mon", "tue"], "start": "08:00", "end": "18:00"}],
        "authority": "Rechtbank Rotterdam", "reference": "C/10/123456",
        "subject_device_ids": ["off-1"], "protected_device_ids": ["vic-1"],
        "exceptions": [{"geometry": Polygon, "valid_from": ..., "valid_until": ...,
                        "reason": "corridor to own address"}]}}

Positions may carry an altitude (`[lon, lat, alt]`); it is dropped, measures are 2D. A position
is an array of two or three finite numbers (not strings), and a measure has at most
`MAX_VERTICES` positions, its exceptions' included. Times lie between 2000-01-01 and
2100-01-01 (UTC): a number is Unix seconds, and one in milliseconds is refused. The
authority is a text of at most 128 characters, the reference of at most 64 (as the record keeps
them), neither with control characters; an exception's reason a text of at most 500 characters,
which may break lines.

`measure_from_feature` parses and validates (raising `InvalidMeasure` with every problem);
`validate_measure` checks a measure built in code; `measure_to_feature` exports;
`home_problems` checks the other way round, a home to register against the measures standing,
with the same rule (`measure_home_problem`).
"""

from __future__ import annotations

import math
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

import shapely
from shapely import force_2d
from shapely.errors import GEOSException
from shapely.geometry import MultiPolygon, Point, Polygon, mapping, shape
from shapely.validation import explain_validity

from geofences.config import GeofenceConfig
from geofences.errors import InvalidMeasure, Problem, without_positions
from geofences.measures import (
    MEASURE_KINDS,
    ContactBan,
    ExclusionZone,
    Exemption,
    Measure,
    ProtectedPlace,
)
from geofences.projection import Projection, projection_for
from geofences.timewindows import TimeWindow

Home = tuple[float, float]  # (lon, lat) of the offender's registered home address
AUTHORITY_MAX = 128  # characters of `properties.authority` (court or office)
REFERENCE_MAX = 64  # characters of `properties.reference` (court / OM reference)
REASON_MAX = 500  # characters of an exception's `reason` (a note: "corridor to own address")
# Positions of a measure, its exceptions' included: each costs time on every fix near the zone
# (about 11 us a fix per 1,000 positions), and a court order's zone needs far fewer.
MAX_VERTICES = 10_000
# Times a measure may carry: what every store and `datetime` holds, and no court order lies
# outside (a time in Unix milliseconds lands in the year 57,000).
TIME_MIN = 946_684_800.0  # 2000-01-01T00:00:00Z
TIME_MAX = 4_102_444_800.0  # 2100-01-01T00:00:00Z
# Nesting depth of the positions of each geometry type (0: one position).
_DEPTH = {"Point": 0, "MultiPoint": 1, "LineString": 1, "MultiLineString": 2, "Polygon": 2,
          "MultiPolygon": 3}


def _time(value: Any, path: str, problems: list[Problem]) -> float | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            problems.append(
                Problem("invalid_field", path, "not an ISO 8601 time")
            )
            return None
        if parsed.tzinfo is None:
            problems.append(
                Problem("invalid_field", path, "time must carry a UTC offset")
            )
            return None
        try:
            return _in_range(parsed.timestamp(), path, problems)
        except (OverflowError, ValueError):  # a UTC offset beyond the first or last year
            return _in_range(math.inf, path, problems)
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        return _in_range(float(value), path, problems)
    problems.append(
        Problem(
            "invalid_field",
            path,
            "expected an ISO 8601 time or Unix seconds",
        )
    )
    return None


def _in_range(ts: float, path: str, problems: list[Problem]) -> float | None:
    """`ts` if it lies within TIME_MIN..TIME_MAX, else None with a problem."""
    if TIME_MIN <= ts < TIME_MAX:
        return ts
    problems.append(Problem(
        "invalid_field", path,
        "a time between 2000-01-01 and 2100-01-01 (UTC) is expected, as an ISO 8601 time "
        "or Unix seconds (not milliseconds)",
    ))
    return None


def time_problems(measure: Measure) -> list[Problem]:
    """The times of a measure built in code that lie outside TIME_MIN..TIME_MAX."""
    problems: list[Problem] = []
    times = [("properties.valid_from", measure.valid_from),
             ("properties.valid_until", measure.valid_until)]
    for i, e in enumerate(measure.exceptions):
        path = f"properties.exceptions[{i}]"
        times += [(f"{path}.valid_from", e.valid_from), (f"{path}.valid_until", e.valid_until)]
    for path, ts in times:
        if ts is not None:
            _in_range(ts, path, problems)
    return problems


def _positions(coords: Any, depth: int) -> int | None:
    """How many positions `coords` nests at `depth` (0: one position), None when it is not
    arrays of positions of two or three finite numbers."""
    if not isinstance(coords, list | tuple):
        return None
    if depth == 0:
        ok = 2 <= len(coords) <= 3 and all(
            isinstance(c, int | float) and not isinstance(c, bool) and math.isfinite(c)
            for c in coords)
        return 1 if ok else None
    total = 0
    for part in coords:
        n = _positions(part, depth - 1)
        if n is None:
            return None
        total += n
    return total


def _position_problem(data: Mapping, path: str) -> Problem | None:
    """A problem with the positions of a GeoJSON geometry of a known type, if any: not numbers
    (e.g. strings, which shapely would take), or more than MAX_VERTICES."""
    depth = _DEPTH.get(data.get("type"))  # type: ignore[arg-type]
    if depth is None:
        return None  # another type: refused by shape() or by the type checks that follow
    count = _positions(data.get("coordinates"), depth)
    if count is None:
        return Problem("invalid_geometry", path,
                       "coordinates must be arrays of positions [lon, lat] (numbers)")
    if count > MAX_VERTICES:
        return Problem("absurd_size", path,
                       f"{count} positions exceed {MAX_VERTICES} a measure may have")
    return None


def _geometry(data: Any, path: str, problems: list[Problem]) -> Any:
    if not isinstance(data, Mapping):
        problems.append(
            Problem("invalid_geometry", path, "expected a GeoJSON geometry object")
        )
        return None
    if (problem := _position_problem(data, path)) is not None:
        problems.append(problem)
        return None
    try:
        geom = force_2d(shape(data))  # an altitude on the positions is dropped
    except (
        ValueError,
        TypeError,
        AttributeError,
        KeyError,
        IndexError,
        GEOSException,
    ) as exc:
        problems.append(
            Problem("invalid_geometry", path, f"unreadable geometry: {without_positions(str(exc))}")
        )
        return None
    if geom.is_empty:
        problems.append(Problem("invalid_geometry", path, "empty geometry"))
        return None
    return geom


def _number(
    props: Mapping,
    key: str,
    problems: list[Problem],
    *,
    required: bool,
    default: float = 0.0,
) -> float:
    value = props.get(key)
    if value is None:
        if required:
            problems.append(
                Problem("invalid_field", f"properties.{key}", "required (metres)")
            )
        return default
    if (
        not isinstance(value, int | float)
        or isinstance(value, bool)
        or not math.isfinite(value)
        or value < 0
    ):
        problems.append(
            Problem(
                "invalid_field",
                f"properties.{key}",
                "expected a number >= 0",
            )
        )
        return default
    return float(value)


def _text(props: Mapping, key: str, limit: int, problems: list[Problem]) -> str:
    """A short text property ("" when absent): a string, or an integer as some exports write
    one, of at most `limit` characters without control characters."""
    value = props.get(key)
    if value is None:
        return ""
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or len(value) > limit or not _plain(value):
        problems.append(
            Problem(
                "invalid_field",
                f"properties.{key}",
                f"expected a text of at most {limit} characters without control characters",
            )
        )
        return ""
    return value


def _reason(value: Any, path: str, problems: list[Problem]) -> str:
    """An exception's reason ("" when absent or null): a text of at most `REASON_MAX`
    characters, which may break lines but carries no other control character."""
    if value is None:
        return ""
    if not isinstance(value, str):
        problems.append(Problem("invalid_field", path, "expected a text"))
    elif len(value) > REASON_MAX:
        problems.append(Problem(
            "invalid_field", path,
            f"a reason has at most {REASON_MAX} characters, this one has {len(value)}"))
    elif not _plain(value.replace("\r\n", "").replace("\n", "").replace("\t", "")):
        problems.append(Problem(
            "invalid_field", path,
            "a reason may contain line breaks and tabs but no other control character"))
    else:
        return value
    return ""


def _plain(text: str) -> bool:
    """Whether a text has no control characters and no lone surrogates (which no database
    stores as text)."""
    return not any(unicodedata.category(c) in ("Cc", "Cs") for c in text)


def _string_list(props: Mapping, key: str, problems: list[Problem]) -> tuple[str, ...]:
    value = props.get(key)
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(v, str) and v for v in value)
    ):
        problems.append(
            Problem(
                "invalid_field",
                f"properties.{key}",
                "expected a non-empty list of device ids",
            )
        )
        return ()
    return tuple(value)


def measure_from_feature(
    feature: Mapping[str, Any],
    *,
    home: Home | None = None,
    config: GeofenceConfig | None = None,
    projection: Projection | None = None,
) -> Measure:
    """Parse and validate one GeoJSON Feature. `home` is the offender's registered home point
    (lon, lat): a zone that contains it without an exception is rejected."""
    problems: list[Problem] = []
    if not isinstance(feature, Mapping) or feature.get("type") != "Feature":
        raise InvalidMeasure.from_problems(
            [Problem("invalid_field", "type", "expected a GeoJSON Feature")]
        )
    props = feature.get("properties")
    if not isinstance(props, Mapping):
        raise InvalidMeasure.from_problems(
            [Problem("invalid_field", "properties", "expected an object")]
        )
    kind = props.get("kind")
    if kind not in MEASURE_KINDS:
        problems.append(
            Problem(
                "invalid_field",
                "properties.kind",
                f"expected one of {', '.join(MEASURE_KINDS)}",
            )
        )
    mid = feature.get("id", props.get("id"))
    if not isinstance(mid, str) or not mid:
        problems.append(Problem("invalid_field", "id", "a measure needs a string id"))
    case_id = props.get("case_id")
    if not isinstance(case_id, str) or not case_id:
        problems.append(
            Problem("invalid_field", "properties.case_id", "a measure needs a case id")
        )
    subjects = _string_list(props, "subject_device_ids", problems)
    windows: list[TimeWindow] = []
    raw_windows = props.get("time_windows") or []
    if not isinstance(raw_windows, list):
        problems.append(
            Problem("invalid_field", "properties.time_windows", "expected a list")
        )
        raw_windows = []
    for i, w in enumerate(raw_windows):
        try:
            windows.append(
                TimeWindow.parse(w)
                if isinstance(w, str)
                else TimeWindow.from_dict(w, f"properties.time_windows[{i}]")
            )
        except InvalidMeasure as exc:
            problems.extend(exc.problems)
    exceptions: list[Exemption] = []
    raw_exceptions = props.get("exceptions") or []
    if not isinstance(raw_exceptions, list):
        problems.append(
            Problem("invalid_field", "properties.exceptions", "expected a list")
        )
        raw_exceptions = []
    for i, e in enumerate(raw_exceptions):
        path = f"properties.exceptions[{i}]"
        if not isinstance(e, Mapping):
            problems.append(Problem("invalid_field", path, "expected an object"))
            continue
        geom = _geometry(e.get("geometry"), f"{path}.geometry", problems)
        if geom is None:
            continue
        if not isinstance(geom, Polygon | MultiPolygon):
            problems.append(
                Problem(
                    "invalid_geometry",
                    f"{path}.geometry",
                    "expected a Polygon or MultiPolygon",
                )
            )
            continue
        try:
            exceptions.append(
                Exemption(
                    geometry=geom,
                    valid_from=_time(
                        e.get("valid_from"), f"{path}.valid_from", problems
                    ),
                    valid_until=_time(
                        e.get("valid_until"), f"{path}.valid_until", problems
                    ),
                    reason=_reason(e.get("reason"), f"{path}.reason", problems),
                )
            )
        except InvalidMeasure as exc:
            problems.extend(
                Problem(p.code, f"{path}.{p.path.split('.')[-1]}", p.message)
                for p in exc.problems
            )
    common = {
        "id": mid,
        "case_id": case_id,
        "subject_device_ids": subjects,
        "pre_alert_m": _number(props, "pre_alert_m", problems, required=False),
        "valid_from": _time(props.get("valid_from"), "properties.valid_from", problems),
        "valid_until": _time(
            props.get("valid_until"), "properties.valid_until", problems
        ),
        "time_windows": tuple(windows),
        "authority": _text(props, "authority", AUTHORITY_MAX, problems),
        "reference": _text(props, "reference", REFERENCE_MAX, problems),
        "exceptions": tuple(exceptions),
    }
    geometry = feature.get("geometry")
    measure: Measure | None = None
    if kind == "contact_ban":
        if geometry is not None:
            problems.append(
                Problem(
                    "invalid_geometry",
                    "geometry",
                    "a contact ban has no geometry (null)",
                )
            )
        protected = _string_list(props, "protected_device_ids", problems)
        radius = _number(props, "radius_m", problems, required=True)
        if not problems:
            measure = _build(
                ContactBan,
                problems,
                protected_device_ids=protected,
                radius_m=radius,
                **common,
            )
    elif kind in ("exclusion_zone", "protected_place"):
        geom = _geometry(geometry, "geometry", problems)
        if isinstance(geom, Point):
            radius = _number(props, "radius_m", problems, required=True)
            if not problems:
                cls = ExclusionZone if kind == "exclusion_zone" else ProtectedPlace
                measure = _build(
                    cls, problems, centre=(geom.x, geom.y), radius_m=radius, **common
                )
        elif geom is not None:
            if kind == "protected_place":
                problems.append(
                    Problem(
                        "invalid_geometry",
                        "geometry",
                        "a protected place is a Point with radius_m",
                    )
                )
            elif not isinstance(geom, Polygon | MultiPolygon):
                problems.append(
                    Problem(
                        "invalid_geometry",
                        "geometry",
                        f"expected a Polygon, MultiPolygon or Point, got {geom.geom_type}",
                    )
                )
            elif not problems:
                measure = _build(ExclusionZone, problems, area=geom, **common)
    if measure is None or problems:
        raise InvalidMeasure.from_problems(
            problems or [Problem("invalid_field", "properties", "not a measure")]
        )
    validate_measure(measure, home=home, config=config, projection=projection)
    return measure


def _build(cls: type, problems: list[Problem], **kwargs: Any) -> Measure | None:
    try:
        return cls(**kwargs)
    except InvalidMeasure as exc:
        problems.extend(exc.problems)
        return None


def measure_problems(
    measure: Measure,
    *,
    home: Home | None = None,
    config: GeofenceConfig | None = None,
    projection: Projection | None = None,
) -> list[Problem]:
    """Every geometric and size problem of a structurally valid measure (empty: acceptable)."""
    cfg = config or GeofenceConfig()
    proj = projection or projection_for(cfg.crs)
    problems: list[Problem] = time_problems(measure)
    vertices = _vertices(measure)
    if vertices > MAX_VERTICES:
        problems.append(Problem(
            "absurd_size", "geometry",
            f"the zone and its exceptions have {vertices} positions, more than the "
            f"{MAX_VERTICES} a measure may have",
        ))
        return problems  # not worth checking further, and costly to
    if measure.pre_alert_m > cfg.max_pre_alert_m:
        problems.append(
            Problem(
                "absurd_size",
                "properties.pre_alert_m",
                f"the pre-alert ring exceeds {cfg.max_pre_alert_m:.0f} m",
            )
        )
    radius = getattr(measure, "radius_m", None)
    if radius is not None and radius > cfg.max_radius_m:
        problems.append(
            Problem(
                "absurd_size",
                "properties.radius_m",
                f"the radius exceeds {cfg.max_radius_m:.0f} m",
            )
        )
    zone = None  # projected zone, for the home check
    if isinstance(measure, ContactBan):
        pass
    elif measure.area is None:
        lon, lat = measure.centre
        if not proj.covers(lon, lat):
            problems.append(
                Problem(
                    "outside_projection_area",
                    "geometry",
                    f"centre lies outside the area of {proj.crs}; is it (lon, lat)?",
                )
            )
        else:
            zone = _projected_zone(measure, proj)
    else:
        zone = _area_problems(measure.area, "geometry", proj, cfg, problems)
    for i, exc in enumerate(measure.exceptions):
        _area_problems(
            exc.geometry, f"properties.exceptions[{i}].geometry", proj, cfg, problems
        )
    if home is not None and zone is not None and not problems:
        problem = measure_home_problem(measure, home, config=cfg, projection=proj, zone=zone)
        if problem is not None:
            problems.append(problem)
    return problems


def _projected_zone(measure: Measure, proj: Projection) -> Any:
    """The measure's zone in the metric projection (a circle as a 128-gon); None for a contact
    ban, which has no place."""
    if isinstance(measure, ContactBan):
        return None
    if measure.area is None:
        return Point(*proj.forward(*measure.centre)).buffer(measure.radius_m, quad_segs=32)
    return proj.geometry(measure.area)


def measure_home_problem(
    measure: Measure,
    home: Home,
    *,
    config: GeofenceConfig | None = None,
    projection: Projection | None = None,
    zone: Any = None,
) -> Problem | None:
    """`home_problem` of one measure and the offender's registered home (lon, lat): the one
    check of both ways the two meet, a measure imported or replaced while a home is registered
    (`measure_problems`) and a home registered or moved while measures stand (`home_problems`).
    `zone` is the measure's zone projected already, if the caller has it. A contact ban has no
    place, so no problem; an exception contains the home whatever its own validity, as when
    the measure is imported."""
    cfg = config or GeofenceConfig()
    proj = projection or projection_for(cfg.crs)
    if zone is None:
        zone = _projected_zone(measure, proj)
        if zone is None:
            return None
    home_point = Point(*proj.forward(*home))
    exempt = any(proj.geometry(e.geometry).contains(home_point) for e in measure.exceptions)
    return home_problem(zone.distance(home_point), zone.contains(home_point), exempt,
                        measure.pre_alert_m, cfg)


def home_problems(
    measures: Iterable[Measure],
    home: Home,
    now: float,
    *,
    config: GeofenceConfig | None = None,
    projection: Projection | None = None,
) -> list[Problem]:
    """Why the offender's home may not be registered (or moved) at `home` while `measures`
    stand (empty: it may). Every measure not ended at `now` counts, the ones in force and the
    ones still to come (ended: its `valid_until` passed; a measure deactivated is the caller's
    to leave out): a home too close to one would raise a possible breach, or an approach, on
    every return home. Each problem's path starts with `measures[<id>].`, so the answer names
    the measure; like every home problem it names no position and no distance of the home."""
    cfg = config or GeofenceConfig()
    proj = projection or projection_for(cfg.crs)
    problems = []
    for measure in measures:
        if measure.ended_by(now):
            continue
        problem = measure_home_problem(measure, home, config=cfg, projection=proj)
        if problem is not None:
            problems.append(Problem(problem.code, f"measures[{measure.id}].{problem.path}",
                                    problem.message))
    return problems


def home_problem(
    distance_m: float, inside: bool, exempt: bool, pre_alert_m: float, cfg: GeofenceConfig
) -> Problem | None:
    """The problem of a zone `distance_m` from the offender's registered home (0: on its
    border or `inside` it), unless an exception contains the home (`exempt`). A fix at home,
    of the accuracy a fix without one is taken to have (`default_accuracy_m`), must lie clearly
    outside the zone (by `exit_margin_m`) and its pre-alert ring: else the offender raised a
    possible breach (P1), or an approach, every time he came home. The message names no
    position and no distance of the home, only the clearance it needs."""
    reach = cfg.exit_margin_m + cfg.default_accuracy_m
    fix = "add an exception (e.g. a corridor to the address) or change the zone"
    if exempt:
        return None
    if inside:
        return Problem(
            "home_inside_zone", "geometry",
            "the zone contains the offender's registered home address and no exception "
            f"allows it; {fix}",
        )
    if distance_m < reach:
        return Problem(
            "home_inside_zone", "geometry",
            f"the zone passes within {reach:.0f} m (exit margin and the accuracy of a fix) "
            "of the offender's registered home address and no exception allows it: a fix at "
            f"home would raise a possible breach; {fix}",
        )
    if pre_alert_m > 0 and distance_m < pre_alert_m + reach:
        return Problem(
            "home_inside_zone", "properties.pre_alert_m",
            f"the pre-alert ring and {reach:.0f} m beyond it (exit margin and the accuracy "
            "of a fix) reach the offender's registered home address and no exception allows "
            "it: a fix at home would raise an approach; shorten the ring, add an exception "
            "or change the zone",
        )
    return None


def _vertices(measure: Measure) -> int:
    """Positions of a measure's zone and exceptions (as GeoJSON writes them: rings closed)."""
    area = getattr(measure, "area", None)
    count = 0 if area is None else int(shapely.get_num_coordinates(area))
    return count + sum(int(shapely.get_num_coordinates(e.geometry)) for e in measure.exceptions)


def _area_problems(
    geom: Any, path: str, proj: Projection, cfg: GeofenceConfig, problems: list[Problem]
) -> Any:
    if not isinstance(geom, Polygon | MultiPolygon):
        problems.append(
            Problem("invalid_geometry", path, "expected a Polygon or MultiPolygon")
        )
        return None
    if geom.is_empty:
        problems.append(Problem("invalid_geometry", path, "empty geometry"))
        return None
    if not geom.is_valid:
        problems.append(
            Problem(
                "invalid_geometry",
                path,
                f"geometry is not valid: {without_positions(explain_validity(geom))}",
            )
        )
        return None
    minx, miny, maxx, maxy = geom.bounds
    if not (proj.covers(minx, miny) and proj.covers(maxx, maxy)):
        problems.append(
            Problem(
                "outside_projection_area",
                path,
                f"geometry lies outside the area of {proj.crs}; are coordinates (lon, lat)?",
            )
        )
        return None
    projected = proj.geometry(geom)
    if not projected.is_valid:
        problems.append(
            Problem(
                "invalid_geometry",
                path,
                f"geometry is not valid: {without_positions(explain_validity(projected))}",
            )
        )
        return None
    area_km2 = projected.area / 1e6
    if area_km2 > cfg.max_area_km2:
        problems.append(
            Problem(
                "absurd_size",
                path,
                f"area of {area_km2:.0f} km² exceeds {cfg.max_area_km2:.0f} km²",
            )
        )
    return projected


def validate_measure(
    measure: Measure,
    *,
    home: Home | None = None,
    config: GeofenceConfig | None = None,
    projection: Projection | None = None,
) -> None:
    """Raise `InvalidMeasure` (as the class of the first problem) if the measure is unacceptable."""
    problems = measure_problems(
        measure, home=home, config=config, projection=projection
    )
    if problems:
        raise InvalidMeasure.from_problems(problems)


def _iso(value: float | None) -> str | float | None:
    """A time as ISO 8601 in UTC; one no `datetime` holds (stored before times were checked)
    as the number it is, so an export never fails on it."""
    if value is None:
        return None
    try:
        return datetime.fromtimestamp(value, tz=UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return value


def measure_to_feature(measure: Measure) -> dict[str, Any]:
    """Export a measure as a GeoJSON Feature (times as ISO 8601 in UTC)."""
    props: dict[str, Any] = {
        "kind": measure.kind,
        "case_id": measure.case_id,
        "subject_device_ids": list(measure.subject_device_ids),
        "pre_alert_m": measure.pre_alert_m,
        "valid_from": _iso(measure.valid_from),
        "valid_until": _iso(measure.valid_until),
        "time_windows": [w.as_dict() for w in measure.time_windows],
        "authority": measure.authority,
        "reference": measure.reference,
        "exceptions": [
            {
                "geometry": mapping(e.geometry),
                "valid_from": _iso(e.valid_from),
                "valid_until": _iso(e.valid_until),
                "reason": e.reason,
            }
            for e in measure.exceptions
        ],
    }
    geometry: Any
    if isinstance(measure, ContactBan):
        geometry = None
        props["protected_device_ids"] = list(measure.protected_device_ids)
        props["radius_m"] = measure.radius_m
    elif measure.area is None:
        geometry = {
            "type": "Point",
            "coordinates": [measure.centre[0], measure.centre[1]],
        }
        props["radius_m"] = measure.radius_m
    else:
        geometry = mapping(measure.area)
    return {
        "type": "Feature",
        "id": measure.id,
        "geometry": geometry,
        "properties": props,
    }
