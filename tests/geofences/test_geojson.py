"""GeoJSON import/export of measures and the validation error tree."""

from __future__ import annotations

from dataclasses import replace

import pytest
from shapely.geometry import Polygon, mapping

from geofences import (
    AbsurdSize,
    Exemption,
    GeofenceConfig,
    HomeInsideZone,
    InvalidField,
    InvalidGeometry,
    InvalidMeasure,
    OutsideProjectionArea,
    home_problems,
    measure_from_feature,
    measure_to_feature,
    validate_measure,
)
from geofences.geojson import MAX_VERTICES, home_problem
from tests.geofences.places import T0, lonlat, square


def feature(geometry, **props):
    base = {"kind": "exclusion_zone", "case_id": "c-1", "subject_device_ids": ["off-1"]}
    base.update(props)
    return {"type": "Feature", "id": "m-1", "geometry": geometry, "properties": base}


def poly(*rings):
    return mapping(Polygon(rings[0], rings[1:]))


def test_round_trip_of_a_zone_with_everything():
    f = feature(
        poly(square(0, 0, 500), square(0, 0, 100)[::-1]),
        pre_alert_m=250,
        valid_from="2026-01-01T00:00:00+01:00",
        valid_until=1_800_000_000,
        time_windows=[
            {"days": ["mon", "tue"], "start": "08:00", "end": "18:00"},
            "Sat 22:00-06:00",
        ],
        authority="Rechtbank Rotterdam",
        reference="C/10/123456",
        exceptions=[
            {
                "geometry": poly(square(400, 0, 50)),
                "valid_until": "2026-02-01T12:00:00Z",
                "reason": "court date",
            }
        ],
    )
    measure = measure_from_feature(f)
    assert measure.kind == "exclusion_zone" and len(measure.area.interiors) == 1
    assert measure.valid_from == 1_767_222_000.0 and len(measure.time_windows) == 2
    again = measure_from_feature(measure_to_feature(measure))
    assert again == measure


def test_round_trip_of_circle_place_and_contact_ban():
    place = measure_from_feature(
        feature(
            {"type": "Point", "coordinates": list(lonlat(0, 0))},
            kind="protected_place",
            radius_m=300,
        )
    )
    assert (
        place.radius_m == 300
        and measure_from_feature(measure_to_feature(place)) == place
    )
    ban = measure_from_feature(
        feature(None, kind="contact_ban", radius_m=1000, protected_device_ids=["vic-1"])
    )
    assert ban.protected_device_ids == ("vic-1",)
    assert measure_from_feature(measure_to_feature(ban)) == ban


def test_self_intersecting_polygon_is_explained():
    a, b, c, d = lonlat(0, 0), lonlat(500, 0), lonlat(0, 500), lonlat(500, 500)
    with pytest.raises(InvalidGeometry) as err:
        measure_from_feature(feature(poly([a, b, c, d, a])))
    assert (
        "Self-intersection" in str(err.value)
        and err.value.problems[0].path == "geometry"
    )


def test_absurd_sizes():
    with pytest.raises(AbsurdSize, match="km²"):
        measure_from_feature(feature(poly(square(0, 0, 30_000))))  # 3,600 km²
    with pytest.raises(AbsurdSize, match="radius"):
        measure_from_feature(
            feature(
                {"type": "Point", "coordinates": list(lonlat(0, 0))}, radius_m=60_000
            )
        )


def test_swapped_coordinates_are_outside_the_projection():
    lon, lat = lonlat(0, 0)
    with pytest.raises(OutsideProjectionArea):
        measure_from_feature(
            feature({"type": "Point", "coordinates": [lat, lon]}, radius_m=300)
        )


def test_home_inside_zone_needs_an_exception():
    home = lonlat(300, 0)
    with pytest.raises(HomeInsideZone, match="home address"):
        measure_from_feature(feature(poly(square(0, 0, 500))), home=home)
    corridor = [
        {"geometry": poly(square(300, 0, 20)), "reason": "corridor to own address"}
    ]
    assert measure_from_feature(
        feature(poly(square(0, 0, 500)), exceptions=corridor), home=home
    )
    assert measure_from_feature(feature(poly(square(0, 0, 500))), home=lonlat(2000, 0))


@pytest.mark.parametrize(("zone", "props", "home_dx", "path"), [
    # The border 20 m from the home: at home with 30 m accuracy, a possible breach (P1).
    (poly(square(0, 0, 500)), {}, 520, "geometry"),
    # A small hole cut around the home: the same.
    (poly(square(0, 0, 500), square(460, 0, 20)[::-1]), {}, 460, "geometry"),
    # Clear of the zone, but in its pre-alert ring: an approach on every return home.
    (poly(square(0, 0, 500)), {"pre_alert_m": 250}, 700, "properties.pre_alert_m"),
])
def test_a_zone_or_ring_reaching_the_home_within_margin_and_accuracy_is_refused(
        zone, props, home_dx, path):
    home = lonlat(home_dx, 0)
    with pytest.raises(HomeInsideZone) as refused:
        measure_from_feature(feature(zone, **props), home=home)
    (problem,) = refused.value.problems
    assert problem.path == path and "home address" in problem.message
    assert not any(f"{c:.3f}" in str(refused.value) for c in home)
    corridor = [{"geometry": poly(square(home_dx, 0, 10)), "reason": "own address"}]
    assert measure_from_feature(feature(zone, exceptions=corridor, **props), home=home)


def test_a_home_clear_of_margin_accuracy_and_ring_is_accepted():
    cfg = GeofenceConfig()
    clear = 500 + cfg.exit_margin_m + cfg.default_accuracy_m + 1
    assert measure_from_feature(feature(poly(square(0, 0, 500))), home=lonlat(clear, 0))
    assert measure_from_feature(feature(poly(square(0, 0, 500)), pre_alert_m=100),
                                home=lonlat(clear + 100, 0))


def test_home_problem_needs_the_home_beyond_exit_margin_plus_default_accuracy():
    cfg = GeofenceConfig(exit_margin_m=25, default_accuracy_m=30)
    assert home_problem(54.9, False, False, 0, cfg).path == "geometry"
    assert home_problem(55, False, False, 0, cfg) is None
    assert home_problem(0, True, False, 0, cfg).code == "home_inside_zone"
    assert home_problem(0, True, True, 0, cfg) is None  # an exception allows it
    assert home_problem(154.9, False, False, 100, cfg).path == "properties.pre_alert_m"
    assert home_problem(155, False, False, 100, cfg) is None


def _stored(measure_id, zone, **props):
    """A measure as it stands stored (validated without a home: none was registered yet)."""
    return replace(measure_from_feature(feature(zone, **props)), id=measure_id)


def test_a_home_registered_after_the_measures_meets_the_same_rule():
    """A home inside a zone, 20 m from its border or in its pre-alert ring is refused as the
    zone would have been, each problem naming its measure and never the home's place."""
    standing = [
        _stored("inside", poly(square(0, 0, 500))),
        _stored("ring", poly(square(1600, 0, 500)), pre_alert_m=250),
        _stored("far", poly(square(-3000, 0, 500))),
        _stored("ban", None, kind="contact_ban", protected_device_ids=["vic-1"], radius_m=500),
    ]
    home = lonlat(400, 0)
    problems = home_problems(standing, home, T0)
    assert [(p.code, p.path) for p in problems] == [
        ("home_inside_zone", "measures[inside].geometry")]
    near_ring = lonlat(820, 0)  # 280 m from the ring's zone: within its 250 m ring + 55 m
    assert [p.path for p in home_problems(standing, near_ring, T0)] == [
        "measures[ring].properties.pre_alert_m"]
    assert [p.path for p in home_problems(standing, lonlat(530, 0), T0)] == [
        "measures[inside].geometry"]  # 30 m beyond its border: a fix at home is a breach
    text = str([p.as_dict() for p in home_problems(standing, near_ring, T0)])
    assert not any(f"{c:.3f}" in text for c in home + near_ring)
    assert home_problems(standing, lonlat(-1500, 0), T0) == []


def test_a_home_meets_the_measures_to_come_not_the_ended_ones():
    zone = poly(square(0, 0, 500))
    ended = _stored("ended", zone, valid_until=T0 - 1)
    ends_now = _stored("ends-now", zone, valid_until=T0)
    to_come = _stored("to-come", zone, valid_from=T0 + 86_400)
    in_force = _stored("in-force", zone, valid_from=T0 - 86_400, valid_until=T0 + 1)
    assert [p.path.split("]")[0] for p in home_problems(
        [ended, ends_now, to_come, in_force], lonlat(0, 0), T0)] == [
            "measures[to-come", "measures[in-force"]


def test_a_home_an_exception_contains_meets_no_problem():
    corridor = [{"geometry": poly(square(300, 0, 10)), "reason": "own address"}]
    standing = [_stored("zone", poly(square(0, 0, 500)), exceptions=corridor)]
    assert home_problems(standing, lonlat(300, 0), T0) == []
    assert [p.path for p in home_problems(standing, lonlat(200, 0), T0)] == [
        "measures[zone].geometry"]


def test_an_exceptions_reason_is_a_bounded_text():
    def exception(reason):
        return {"geometry": poly(square(300, 0, 20)), "reason": reason}

    kept = measure_from_feature(feature(poly(square(0, 0, 500)), exceptions=[
        exception("R" * 500), exception("court date\r\nroom 3\tfloor 2"), exception(None),
        {"geometry": poly(square(300, 0, 20))}]))
    assert [e.reason for e in kept.exceptions] == [
        "R" * 500, "court date\r\nroom 3\tfloor 2", "", ""]
    with pytest.raises(InvalidField) as err:
        measure_from_feature(feature(poly(square(0, 0, 500)), exceptions=[
            exception("R" * 501), exception("bell\x07"), exception("\ud800"),
            exception({"text": "x"}), exception("fine")]))
    assert [(p.path, p.message) for p in err.value.problems] == [
        ("properties.exceptions[0].reason", "a reason has at most 500 characters, this one "
                                            "has 501"),
        ("properties.exceptions[1].reason",
         "a reason may contain line breaks and tabs but no other control character"),
        ("properties.exceptions[2].reason",
         "a reason may contain line breaks and tabs but no other control character"),
        ("properties.exceptions[3].reason", "expected a text"),
    ]


def test_every_field_problem_is_reported_at_once():
    f = feature(
        poly(square(0, 0, 500)),
        case_id="",
        subject_device_ids=[],
        valid_from="yesterday",
        time_windows=[{"days": ["funday"], "start": "8", "end": "18:00"}],
        pre_alert_m=-5,
    )
    with pytest.raises(InvalidField) as err:
        measure_from_feature(f)
    paths = {p.path for p in err.value.problems}
    assert {
        "properties.case_id",
        "properties.subject_device_ids",
        "properties.valid_from",
        "properties.pre_alert_m",
    } <= paths
    assert any(p.startswith("properties.time_windows[0]") for p in paths)


def test_wrong_kinds_of_geometry():
    line = {
        "type": "LineString",
        "coordinates": [list(lonlat(0, 0)), list(lonlat(100, 0))],
    }
    with pytest.raises(InvalidGeometry):
        measure_from_feature(feature(line))
    with pytest.raises(InvalidGeometry):
        measure_from_feature(feature({"type": "Polygon", "coordinates": [[[1, 2]]]}))
    with pytest.raises(InvalidMeasure):
        measure_from_feature(
            feature(
                None, kind="contact_ban", radius_m=500, protected_device_ids=["off-1"]
            )
        )
    with pytest.raises(InvalidMeasure):
        measure_from_feature({"type": "FeatureCollection"})


T_MS = 1_767_261_600_000  # 2026-01-01 11:00 in Unix milliseconds: the year 57972 in seconds


@pytest.mark.parametrize("value", [T_MS, -1, 0, 4_102_444_800, "2101-01-01T00:00:00+00:00",
                                   "0001-01-01T00:00:00+01:00", "1999-12-31T23:59:59+00:00"])
def test_a_time_outside_2000_to_2100_is_refused_naming_its_field(value):
    corridor = {"geometry": poly(square(0, 0, 10)), "valid_from": value}
    with pytest.raises(InvalidField) as caught:
        measure_from_feature(feature(poly(square(0, 0, 200)), valid_until=value,
                                     exceptions=[corridor]))
    paths = [p.path for p in caught.value.problems]
    assert paths == ["properties.exceptions[0].valid_from", "properties.valid_until"]
    assert "milliseconds" in caught.value.problems[0].message


def test_times_within_the_range_are_taken():
    m = measure_from_feature(feature(poly(square(0, 0, 200)), valid_from=T_MS / 1000,
                                     valid_until="2099-12-31T23:59:59+00:00"))
    assert m.valid_from == T_MS / 1000 and m.valid_until == 4_102_444_799


def test_a_measure_built_in_code_with_a_time_in_milliseconds_is_refused():
    m = measure_from_feature(feature(poly(square(0, 0, 200))))
    with pytest.raises(InvalidField) as caught:
        validate_measure(replace(m, valid_from=T_MS))
    assert [p.path for p in caught.value.problems] == ["properties.valid_from"]


def test_an_export_never_fails_on_a_time_stored_before_times_were_checked():
    corridor = Exemption(geometry=Polygon(square(0, 0, 10)), valid_from=T_MS)
    m = measure_from_feature(feature(poly(square(0, 0, 200))))
    exported = measure_to_feature(replace(m, exceptions=(corridor,)))
    assert exported["properties"]["exceptions"][0]["valid_from"] == T_MS


@pytest.mark.parametrize("position", [["4.47", "51.92"], [4.47], [4.47, 51.92, 1.0, 2.0],
                                      [True, 51.92], [float("nan"), 51.92], "4.47,51.92"])
def test_positions_must_be_two_or_three_numbers(position):
    ring = [list(p) for p in square(0, 0, 200)]
    ring[1] = position
    with pytest.raises(InvalidGeometry) as caught:
        measure_from_feature(feature({"type": "Polygon", "coordinates": [ring]}))
    assert [p.path for p in caught.value.problems] == ["geometry"]
    with pytest.raises(InvalidGeometry):
        measure_from_feature(feature({"type": "Point", "coordinates": position}, radius_m=50))


def _ring(n: int, half: float = 200.0) -> list[list[float]]:
    """A closed ring of `n` positions (n - 1 distinct) along a square's border."""
    corners = square(0, 0, half)
    points = []
    for i in range(n - 1):
        side, f = divmod(4 * i / (n - 1), 1)
        (ax, ay), (bx, by) = corners[int(side)], corners[int(side) + 1]
        points.append([ax + f * (bx - ax), ay + f * (by - ay)])
    return points + [points[0]]


def test_a_measure_has_at_most_max_vertices_positions():
    measure_from_feature(feature({"type": "Polygon", "coordinates": [_ring(MAX_VERTICES)]}))
    with pytest.raises(AbsurdSize) as caught:
        measure_from_feature(
            feature({"type": "Polygon", "coordinates": [_ring(MAX_VERTICES + 1)]}))
    assert [p.path for p in caught.value.problems] == ["geometry"]
    # the exceptions count with the zone
    half = MAX_VERTICES // 2
    corridor = {"geometry": {"type": "Polygon", "coordinates": [_ring(half + 1, 100)]}}
    with pytest.raises(AbsurdSize) as caught:
        measure_from_feature(feature({"type": "Polygon", "coordinates": [_ring(half)]},
                                     exceptions=[corridor]))
    assert "positions" in caught.value.problems[0].message
