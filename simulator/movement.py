"""Seeded movement models in RD New metres: walking, cycling and driving (with stops).

A movement is advanced in simulated time (`advance(dt)`) and reports its true position and
speed. There is no road network: people move in straight legs between waypoints, at a cruise
speed drawn per leg from the mode's profile, and pause now and then (drivers at traffic lights
and junctions, walkers and cyclists at waypoints). A leg is as long as a trip of its mode (a walk
of a few hundred metres to 2 km, a ride of 0.5-6 km, a drive of 2-20 km), not a line across
the whole municipality. Every random draw comes from the `random.Random` passed in, so a seed
fixes the whole track.
"""

from __future__ import annotations

import enum
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from shapely.geometry.base import BaseGeometry

from simulator.errors import PlacementFailed
from simulator.regions import point_at_distance, random_point_in

Point = tuple[float, float]


class Mode(enum.StrEnum):
    STILL = "still"
    WALK = "walk"
    CYCLE = "cycle"
    DRIVE = "drive"


@dataclass(frozen=True, slots=True)
class ModeProfile:
    """Speeds in m/s; a pause every `pause_every_m` metres on average (None: only at waypoints);
    `leg_m`: the shortest and longest leg between waypoints (drawn log-uniformly between)."""

    mean_speed: float
    sd_speed: float
    min_speed: float
    max_speed: float
    pause_every_m: float | None
    pause_s: tuple[float, float]
    leg_m: tuple[float, float] = (0.0, 0.0)


PROFILES: dict[Mode, ModeProfile] = {
    Mode.STILL: ModeProfile(0.0, 0.0, 0.0, 0.0, None, (0.0, 0.0)),
    Mode.WALK: ModeProfile(1.4, 0.15, 0.9, 2.0, None, (0.0, 30.0), (150.0, 2_000.0)),
    Mode.CYCLE: ModeProfile(4.5, 0.6, 3.0, 7.0, 1_500.0, (5.0, 30.0), (500.0, 6_000.0)),
    Mode.DRIVE: ModeProfile(13.0, 2.0, 7.0, 22.0, 600.0, (10.0, 45.0), (2_000.0, 20_000.0)),
}


@dataclass(frozen=True, slots=True)
class State:
    """True (noise-free) position in RD New metres and speed in m/s."""

    x: float
    y: float
    speed: float

    @property
    def point(self) -> Point:
        return (self.x, self.y)


class Movement(Protocol):
    """Something that moves in simulated time."""

    @property
    def state(self) -> State: ...

    def advance(self, dt: float) -> State:
        """Move forward `dt` seconds and return the new state."""
        ...


class _Legs:
    """Shared engine: straight legs towards a target, with cruise speeds and pauses."""

    def __init__(self, start: Point, mode: Mode, rng: random.Random) -> None:
        self.mode = mode
        self.profile = PROFILES[mode]
        self.rng = rng
        self._x, self._y = start
        self._speed = 0.0
        self._pause_left = 0.0
        self._cruise = self._draw_speed()
        self._until_pause = self._draw_pause_distance()

    @property
    def state(self) -> State:
        return State(self._x, self._y, self._speed)

    def _draw_speed(self) -> float:
        p = self.profile
        if p.mean_speed == 0:
            return 0.0
        return min(p.max_speed, max(p.min_speed, self.rng.gauss(p.mean_speed, p.sd_speed)))

    def _draw_pause_distance(self) -> float:
        every = self.profile.pause_every_m
        return math.inf if every is None else self.rng.expovariate(1.0 / every)

    def pause(self, seconds: float) -> None:
        self._pause_left = max(self._pause_left, seconds)

    def pause_at_waypoint(self) -> None:
        low, high = self.profile.pause_s
        self.pause(self.rng.uniform(low, high))
        self._cruise = self._draw_speed()

    def step_towards(
        self, target: Point, dt: float, stop_short_m: float = 0.0
    ) -> tuple[float, bool]:
        """Move towards `target` (ending `stop_short_m` before it) for at most `dt` seconds.

        Returns the unused time and whether the target was reached.
        """
        moved = False
        while dt > 1e-9:
            if self._pause_left > 0:
                used = min(self._pause_left, dt)
                self._pause_left -= used
                dt -= used
                continue
            dx, dy = target[0] - self._x, target[1] - self._y
            dist = math.hypot(dx, dy) - stop_short_m
            if dist <= 1e-6 or self._cruise <= 0:
                self._speed = self._cruise if moved else 0.0
                return dt, True
            reach = self._cruise * dt
            limit = min(dist, self._until_pause)
            step = min(reach, limit)
            total = math.hypot(dx, dy)
            self._x += dx / total * step
            self._y += dy / total * step
            self._until_pause -= step
            dt -= step / self._cruise
            moved = True
            self._speed = self._cruise
            if self._until_pause <= 1e-6:
                low, high = self.profile.pause_s
                self.pause(self.rng.uniform(low, high))
                self._until_pause = self._draw_pause_distance()
                self._cruise = self._draw_speed()
        if self._pause_left > 0:
            self._speed = 0.0
        return 0.0, False


class Stationary:
    """Stays where it is (at home, at work)."""

    def __init__(self, at: Point) -> None:
        self._state = State(at[0], at[1], 0.0)

    @property
    def state(self) -> State:
        return self._state

    def advance(self, dt: float) -> State:
        return self._state


class Wander:
    """Random waypoints inside an area (RD New metres), each a leg of the mode's length
    (`ModeProfile.leg_m`) from the last, pausing at each waypoint. Where no point at that
    distance lies inside the area (a small or narrow one), any point of the area is taken."""

    def __init__(self, start: Point, area: BaseGeometry, mode: Mode, rng: random.Random) -> None:
        self._legs = _Legs(start, mode, rng)
        self._area = area
        self._rng = rng
        self._target = self._next_waypoint(start)

    @property
    def state(self) -> State:
        return self._legs.state

    @property
    def target(self) -> Point:
        """The waypoint it is heading for."""
        return self._target

    def _next_waypoint(self, origin: Point) -> Point:
        low, high = self._legs.profile.leg_m
        if high <= 0:
            return random_point_in(self._area, self._rng)
        distance = math.exp(self._rng.uniform(math.log(low), math.log(high)))
        try:
            return point_at_distance(origin, distance, self._area, self._rng, attempts=64)
        except PlacementFailed:
            return random_point_in(self._area, self._rng)

    def advance(self, dt: float) -> State:
        while dt > 1e-9:
            dt, arrived = self._legs.step_towards(self._target, dt)
            if arrived:
                self._legs.pause_at_waypoint()
                self._target = self._next_waypoint(self._target)
        return self._legs.state


class Route:
    """Follows fixed waypoints, then stays at the last one."""

    def __init__(self, waypoints: Sequence[Point], mode: Mode, rng: random.Random) -> None:
        if not waypoints:
            raise ValueError("a route needs at least one waypoint")
        self._legs = _Legs(waypoints[0], mode, rng)
        self._waypoints = list(waypoints[1:])

    @property
    def state(self) -> State:
        return self._legs.state

    @property
    def finished(self) -> bool:
        return not self._waypoints

    def advance(self, dt: float) -> State:
        while dt > 1e-9 and self._waypoints:
            dt, arrived = self._legs.step_towards(self._waypoints[0], dt)
            if arrived:
                self._waypoints.pop(0)
        if not self._waypoints:
            s = self._legs.state
            return State(s.x, s.y, 0.0) if dt > 1e-9 else s
        return self._legs.state


class Pursue:
    """Heads for a (possibly moving) target and stays `stop_at_m` metres from it."""

    def __init__(
        self,
        start: Point,
        target: Callable[[], Point],
        mode: Mode,
        rng: random.Random,
        stop_at_m: float = 0.0,
    ) -> None:
        self._legs = _Legs(start, mode, rng)
        self._target = target
        self._stop_at_m = stop_at_m

    @property
    def state(self) -> State:
        return self._legs.state

    def advance(self, dt: float) -> State:
        _, arrived = self._legs.step_towards(self._target(), dt, stop_short_m=self._stop_at_m)
        s = self._legs.state
        return State(s.x, s.y, 0.0) if arrived else s
