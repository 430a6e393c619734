import math

from shapely.geometry import Point

from simulator.geo import (
    distance_m,
    geometry_to_metric,
    geometry_to_wgs84,
    to_metric,
    to_wgs84,
)

ROTTERDAM_CENTRAAL = (51.9244, 4.4690)


def test_round_trip_is_sub_millimetre() -> None:
    x, y = to_metric(*ROTTERDAM_CENTRAAL)
    lat, lon = to_wgs84(x, y)
    assert math.isclose(lat, ROTTERDAM_CENTRAAL[0], abs_tol=1e-8)
    assert math.isclose(lon, ROTTERDAM_CENTRAAL[1], abs_tol=1e-8)


def test_rd_new_coordinates_are_in_the_dutch_grid() -> None:
    x, y = to_metric(*ROTTERDAM_CENTRAAL)
    assert 90_000 < x < 95_000
    assert 436_000 < y < 440_000


def test_distance_in_metres() -> None:
    # One hundredth of a degree of latitude is about 1,113 m.
    north = (ROTTERDAM_CENTRAAL[0] + 0.01, ROTTERDAM_CENTRAAL[1])
    assert 1_100 < distance_m(ROTTERDAM_CENTRAAL, north) < 1_125


def test_geometry_conversion_keeps_shape() -> None:
    x, y = to_metric(*ROTTERDAM_CENTRAAL)
    circle = Point(x, y).buffer(100.0)
    back = geometry_to_metric(geometry_to_wgs84(circle))
    assert math.isclose(back.area, circle.area, rel_tol=1e-6)
