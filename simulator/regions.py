"""Real Dutch municipalities (CBS 2025, generalised) to place simulated devices in.

The polygons are read from the backend's region data (`backend/regions/data/`, read-only here),
WGS84 lon/lat GeoJSON, and converted once to RD New metres for movement and placement.
"""

from __future__ import annotations

import functools
import json
import math
import random
from dataclasses import dataclass
from pathlib import Path

import shapely
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from simulator.errors import PlacementFailed, RegionNotFound
from simulator.geo import geometry_to_metric

DATA_DIR = Path(__file__).resolve().parent.parent / "backend" / "regions" / "data"
RIJNMOND = DATA_DIR / "gemeenten_rotterdam_rijnmond_2025.geojson"
ALL_MUNICIPALITIES = DATA_DIR / "gemeenten_2025.geojson"
ROTTERDAM = "GM0599"


@dataclass(frozen=True, slots=True)
class Municipality:
    code: str  # CBS statcode, e.g. GM0599
    name: str
    police_unit: str  # e.g. RE07
    area_wgs84: BaseGeometry  # lon/lat
    area: BaseGeometry  # RD New metres, prepared for containment tests


def load_municipalities(path: Path = RIJNMOND) -> dict[str, Municipality]:
    """Municipalities of one GeoJSON file, keyed by CBS code, in file order."""
    return dict(_load(str(path)))


@functools.cache
def _load(path: str) -> tuple[tuple[str, Municipality], ...]:
    with open(path, encoding="utf-8") as handle:
        collection = json.load(handle)
    result = []
    for feature in collection["features"]:
        props = feature["properties"]
        area_wgs84 = shape(feature["geometry"])
        area = geometry_to_metric(area_wgs84)
        shapely.prepare(area)
        municipality = Municipality(
            code=props["statcode"],
            name=props["statnaam"],
            police_unit=props.get("politie_code", ""),
            area_wgs84=area_wgs84,
            area=area,
        )
        result.append((municipality.code, municipality))
    return tuple(result)


def municipality(code: str, path: Path = RIJNMOND) -> Municipality:
    try:
        return load_municipalities(path)[code]
    except KeyError:
        raise RegionNotFound(f"municipality {code!r} not in {path.name}") from None


def random_point_in(
    area: BaseGeometry, rng: random.Random, attempts: int = 10_000
) -> tuple[float, float]:
    """A uniformly random point (x, y) inside a metric polygon, by rejection sampling."""
    min_x, min_y, max_x, max_y = area.bounds
    for _ in range(attempts):
        x = rng.uniform(min_x, max_x)
        y = rng.uniform(min_y, max_y)
        if area.contains(Point(x, y)):
            return x, y
    raise PlacementFailed("no random point found inside the area")


def point_at_distance(
    origin: tuple[float, float],
    distance: float,
    area: BaseGeometry,
    rng: random.Random,
    attempts: int = 1_000,
) -> tuple[float, float]:
    """A point at `distance` metres from `origin` in a random direction, inside `area`."""
    for _ in range(attempts):
        angle = rng.uniform(0, 2 * math.pi)
        x = origin[0] + distance * math.cos(angle)
        y = origin[1] + distance * math.sin(angle)
        if area.contains(Point(x, y)):
            return x, y
    raise PlacementFailed(f"no point at {distance:.0f} m inside the area")
