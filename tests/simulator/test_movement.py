import itertools
import math
import random

import pytest
from shapely.geometry import Point

from simulator.movement import PROFILES, Mode, Pursue, Route, Stationary, Wander
from simulator.regions import ROTTERDAM, municipality, random_point_in


def _track(movement, seconds: int, dt: float = 1.0) -> list[tuple[float, float, float]]:
    out = []
    for _ in range(int(seconds / dt)):
        s = movement.advance(dt)
        out.append((s.x, s.y, s.speed))
    return out


def _speeds(track, dt: float = 1.0) -> tuple[float, float, float]:
    """(mean speed while moving, fraction of time stopped, highest 1-s speed) from positions."""
    steps = [math.dist(a[:2], b[:2]) / dt for a, b in itertools.pairwise(track)]
    moving = [v for v in steps if v > 0.05]
    return sum(moving) / len(moving), 1 - len(moving) / len(steps), max(steps)


@pytest.mark.parametrize(
    ("mode", "low", "high"),
    [(Mode.WALK, 1.1, 1.7), (Mode.CYCLE, 3.5, 5.5), (Mode.DRIVE, 10.0, 16.0)],
)
def test_speeds_are_plausible(mode: Mode, low: float, high: float) -> None:
    area = municipality(ROTTERDAM).area
    rng = random.Random(11)
    movement = Wander(random_point_in(area, rng), area, mode, rng)
    mean, _, fastest = _speeds(_track(movement, 3_600))
    assert low < mean < high
    assert fastest <= PROFILES[mode].max_speed + 1e-6


def test_driving_stops_now_and_then() -> None:
    area = municipality(ROTTERDAM).area
    rng = random.Random(5)
    movement = Wander(random_point_in(area, rng), area, Mode.DRIVE, rng)
    track = _track(movement, 3_600)
    _, stopped, _ = _speeds(track)
    assert 0.03 < stopped < 0.5
    assert any(speed == 0.0 for _, _, speed in track)


def test_wander_stays_inside_its_area() -> None:
    area = municipality(ROTTERDAM).area
    rng = random.Random(2)
    movement = Wander(random_point_in(area, rng), area, Mode.CYCLE, rng)
    for x, y, _ in _track(movement, 1_800, dt=10.0):
        # Straight legs between inside points may cut a concave corner; stay within 2 km.
        assert area.distance(Point(x, y)) < 2_000


def test_same_seed_same_track() -> None:
    area = municipality(ROTTERDAM).area

    def make() -> Wander:
        rng = random.Random(99)
        return Wander(random_point_in(area, rng), area, Mode.WALK, rng)

    assert _track(make(), 600) == _track(make(), 600)


def test_route_follows_waypoints_and_stops() -> None:
    route = Route([(0.0, 0.0), (100.0, 0.0), (100.0, 100.0)], Mode.WALK, random.Random(1))
    track = _track(route, 400)
    assert route.finished
    assert track[-1][:2] == pytest.approx((100.0, 100.0))
    assert track[-1][2] == 0.0
    assert all(-1e-6 <= x <= 100.0 + 1e-6 for x, _, _ in track)


def test_pursue_stops_short_of_the_target() -> None:
    pursuer = Pursue(
        (0.0, 0.0), lambda: (1_000.0, 0.0), Mode.CYCLE, random.Random(3), stop_at_m=30.0
    )
    track = _track(pursuer, 600)
    assert track[-1][0] == pytest.approx(970.0, abs=1e-6)
    assert track[-1][2] == 0.0


def test_stationary_does_not_move() -> None:
    assert _track(Stationary((5.0, 6.0)), 10)[-1] == (5.0, 6.0, 0.0)


@pytest.mark.parametrize("mode", [Mode.WALK, Mode.CYCLE, Mode.DRIVE])
def test_legs_are_as_long_as_trips_of_the_mode(mode: Mode) -> None:
    # Rotterdam reaches 40 km from the city to the Maasvlakte: a leg to any point of it would
    # have a walker out for hours on one straight line.
    area = municipality(ROTTERDAM).area
    rng = random.Random(8)
    start = random_point_in(area, rng)
    movement = Wander(start, area, mode, rng)
    waypoints = [start, movement.target]
    for _ in range(6 * 3_600 // 10):
        movement.advance(10.0)
        if movement.target != waypoints[-1]:
            waypoints.append(movement.target)
    low, high = PROFILES[mode].leg_m
    legs = [math.dist(a, b) for a, b in itertools.pairwise(waypoints)]
    assert len(legs) >= 5
    assert all(low - 1e-6 <= leg <= high + 1e-6 for leg in legs)
