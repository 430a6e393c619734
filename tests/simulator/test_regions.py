import math
import random

import pytest
from shapely.geometry import Point

from simulator.errors import RegionNotFound
from simulator.regions import (
    ROTTERDAM,
    load_municipalities,
    municipality,
    point_at_distance,
    random_point_in,
)


def test_rijnmond_has_thirteen_municipalities_in_police_unit_rotterdam() -> None:
    towns = load_municipalities()
    assert len(towns) == 13
    assert {t.police_unit for t in towns.values()} == {"RE07"}
    assert towns[ROTTERDAM].name == "Rotterdam"


def test_areas_are_metric() -> None:
    rotterdam = municipality(ROTTERDAM)
    # Generalised polygon of about 300 km^2 including water.
    assert 150e6 < rotterdam.area.area < 450e6


def test_unknown_municipality() -> None:
    with pytest.raises(RegionNotFound):
        municipality("GM9999")


def test_random_points_are_inside_and_seeded() -> None:
    area = municipality(ROTTERDAM).area
    first = [random_point_in(area, random.Random(7)) for _ in range(3)]
    again = [random_point_in(area, random.Random(7)) for _ in range(3)]
    assert first == again
    rng = random.Random(1)
    for _ in range(50):
        assert area.contains(Point(random_point_in(area, rng)))


def test_point_at_distance() -> None:
    area = municipality(ROTTERDAM).area
    origin = random_point_in(area, random.Random(3))
    target = point_at_distance(origin, 1_000.0, area, random.Random(4))
    assert math.isclose(math.dist(origin, target), 1_000.0, rel_tol=1e-9)
    assert area.contains(Point(target))
