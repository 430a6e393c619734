"""Oracle: in-memory containment and distances agree with PostGIS on real municipal polygons
(Rotterdam-Rijnmond, CBS 2025) and on circles, in EPSG:28992, except within 0.5 m of a border.

PostGIS transforms the WGS84 zones and points itself (ST_Transform from 4326); the engine uses
pyproj. One query per zone, with the points passed as arrays (unnest), keeps this fast.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import shapely
from shapely.geometry import MultiPolygon, Point, Polygon, shape
from sqlalchemy import create_engine, text

from geofences import ExclusionZone, GeofenceConfig, MeasureIndex, ProtectedPlace
from tests.conftest import BASE_PG_URL

DATA = (
    Path(__file__).resolve().parents[2]
    / "backend/regions/data/gemeenten_rotterdam_rijnmond_2025.geojson"
)
BORDER_TOLERANCE_M = 0.5
RING_M = 250.0
POINTS_PER_ZONE = 600

QUERY = text(
    """
    WITH z AS (SELECT ST_Transform(ST_GeomFromEWKT(:zone), 28992) AS g),
         p AS (SELECT i, ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 28992) AS pt
               FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))
                    WITH ORDINALITY AS t(lon, lat, i))
    SELECT ST_Contains(z.g, p.pt), ST_Distance(ST_Boundary(z.g), p.pt), ST_Distance(z.g, p.pt),
           ST_DWithin(z.g, p.pt, :ring)
    FROM z, p ORDER BY p.i
    """
)
CIRCLE_QUERY = text(
    """
    WITH c AS (SELECT ST_Transform(ST_SetSRID(ST_MakePoint(:clon, :clat), 4326), 28992) AS g),
         p AS (SELECT i, ST_Transform(ST_SetSRID(ST_MakePoint(lon, lat), 4326), 28992) AS pt
               FROM unnest(CAST(:lons AS float8[]), CAST(:lats AS float8[]))
                    WITH ORDINALITY AS t(lon, lat, i))
    SELECT ST_DWithin(c.g, p.pt, :radius), ST_Distance(c.g, p.pt), ST_DWithin(c.g, p.pt, :radius + :ring)
    FROM c, p ORDER BY p.i
    """
)


def _zones() -> list[ExclusionZone | ProtectedPlace]:
    features = json.loads(DATA.read_text())["features"]
    areas = {f["properties"]["statnaam"]: shape(f["geometry"]) for f in features}
    zones: list = [
        ExclusionZone(
            id=f"gm-{name}",
            case_id="c",
            subject_device_ids=("off",),
            area=geom,
            pre_alert_m=RING_M,
        )
        for name, geom in areas.items()
    ]
    names = sorted(areas)
    # a zone with a hole: a municipality minus a square around its centroid
    base = areas[names[0]]
    c = base.representative_point()
    holed = base.difference(Point(c.x, c.y).buffer(0.01, quad_segs=1))
    zones.append(
        ExclusionZone(
            id="holed",
            case_id="c",
            subject_device_ids=("off",),
            area=holed,
            pre_alert_m=RING_M,
        )
    )
    assert isinstance(holed, Polygon) and len(holed.interiors) == 1
    # a multipolygon of two municipalities
    multi = MultiPolygon([areas[names[1]], areas[names[-1]]])
    if multi.is_valid:
        zones.append(
            ExclusionZone(
                id="multi",
                case_id="c",
                subject_device_ids=("off",),
                area=multi,
                pre_alert_m=RING_M,
            )
        )
    for i, radius in enumerate((120.0, 800.0, 2500.0, 9000.0)):
        centre = (4.3 + 0.1 * i, 51.85 + 0.03 * i)
        zones.append(
            ProtectedPlace(
                id=f"circle-{i}",
                case_id="c",
                subject_device_ids=("off",),
                centre=centre,
                radius_m=radius,
                pre_alert_m=RING_M,
            )
        )
    return zones


def _points(zone, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    if zone.area is not None:
        geom = zone.area
    else:
        geom = Point(zone.centre).buffer(
            zone.radius_m / 68_000.0
        )  # rough degrees, only for sampling
    minx, miny, maxx, maxy = geom.bounds
    pad = max(maxx - minx, maxy - miny) * 0.2 + 0.005
    n_box = POINTS_PER_ZONE // 2
    lons = rng.uniform(minx - pad, maxx + pad, n_box)
    lats = rng.uniform(miny - pad, maxy + pad, n_box)
    # the other half near the border: points on it, jittered by up to ~60 m
    boundary = geom.boundary
    along = shapely.line_interpolate_point(
        boundary, rng.uniform(0, 1, POINTS_PER_ZONE - n_box), normalized=True
    )
    near = shapely.get_coordinates(along)
    near += rng.uniform(-0.0008, 0.0008, near.shape)
    return np.concatenate([lons, near[:, 0]]), np.concatenate([lats, near[:, 1]])


@pytest.mark.services
def test_containment_and_distance_agree_with_postgis():
    cfg = GeofenceConfig()
    zones = _zones()
    index = MeasureIndex(zones, cfg)
    rng = np.random.default_rng(20250101)
    engine = create_engine(BASE_PG_URL)
    compared = skipped = 0
    with engine.connect() as conn:
        for zone in zones:
            cm = index.measures[zone.id]
            lons, lats = _points(zone, rng)
            xs, ys = index.projection.forward_many(lons, lats)
            ours = [
                cm.placement(x, y)
                for x, y in zip(xs.tolist(), ys.tolist(), strict=True)
            ]
            params = {"lons": lons.tolist(), "lats": lats.tolist(), "ring": RING_M}
            if zone.area is not None:
                ewkt = "SRID=4326;" + shapely.to_wkt(zone.area, rounding_precision=-1)
                rows = conn.execute(QUERY, {**params, "zone": ewkt}).all()
                for (inside, depth, outside), (
                    pg_in,
                    pg_border,
                    pg_dist,
                    pg_ring,
                ) in zip(ours, rows, strict=True):
                    assert abs(max(depth, outside) - pg_border) < 1e-3, zone.id
                    assert abs(outside - pg_dist) < 1e-3, zone.id
                    if pg_border < BORDER_TOLERANCE_M:
                        skipped += 1
                        continue
                    assert inside == pg_in, zone.id
                    if abs(pg_dist - RING_M) >= BORDER_TOLERANCE_M:
                        assert (outside <= RING_M) == pg_ring, zone.id
                    compared += 1
            else:
                rows = conn.execute(
                    CIRCLE_QUERY,
                    {
                        **params,
                        "clon": zone.centre[0],
                        "clat": zone.centre[1],
                        "radius": zone.radius_m,
                    },
                ).all()
                for (inside, depth, outside), (pg_in, pg_centre, pg_ring) in zip(
                    ours, rows, strict=True
                ):
                    pg_border = abs(pg_centre - zone.radius_m)
                    assert abs(max(depth, outside) - pg_border) < 1e-3, zone.id
                    if pg_border < BORDER_TOLERANCE_M:
                        skipped += 1
                        continue
                    assert inside == pg_in, zone.id
                    if abs(pg_centre - zone.radius_m - RING_M) >= BORDER_TOLERANCE_M:
                        assert (outside <= RING_M) == pg_ring, zone.id
                    compared += 1
    engine.dispose()
    assert compared >= 10_000 and skipped < compared / 100


def test_tree_query_agrees_with_placement():
    cfg = GeofenceConfig()
    zones = _zones()
    index = MeasureIndex(zones, cfg)
    rng = np.random.default_rng(7)
    lons, lats = rng.uniform(4.0, 4.7, 2000), rng.uniform(51.75, 52.05, 2000)
    xs, ys = index.projection.forward_many(lons, lats)
    for x, y in zip(xs.tolist(), ys.tolist(), strict=True):
        expected = sorted(cm.id for cm in index.zones if cm.placement(x, y)[0])
        assert sorted(index.query(x, y)) == expected
        near = sorted(cm.id for cm in index.zones if cm.placement(x, y)[2] <= 100)
        assert sorted(index.query(x, y, within_m=100)) == near
