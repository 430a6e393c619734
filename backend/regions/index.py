"""Location -> regions: municipality, safety region, GGD region, police unit, Veilig Thuis desk.

A point is first matched to a municipality polygon with a shapely STRtree; the municipality's
safety region (VR), GGD region and police unit come from `gemeente_regio_2025.csv`, its Veilig
Thuis desk from the explicit table `gemeente_vt_2025.csv` (see `vt_table`). The polygons are
heavily generalised (data/SOURCE.md): large open water (IJsselmeer, Waddenzee, North Sea) is not
covered, so a point that falls in no polygon takes the nearest municipality within a configurable
distance (default 25 km, measured in metres in RD New, EPSG:28992) and is marked `exact=False`;
beyond that distance `locate` returns None and the caller falls back to the case's home region.

Everything is computed in RD New: the polygons are projected once at load time. A point well
inside a municipality is found without projecting it, in the packaged table of interior cells
(`interior`); the answer is the same.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
import shapely
from pyproj import Transformer
from shapely.geometry import Point, shape
from shapely.geometry.base import BaseGeometry

from backend.regions import data_files, interior
from backend.regions.errors import InvalidCoordinate, RegionDataError, UnknownRegionCode
from backend.regions.models import Municipality, PoliceUnit, RegionMatch, VtDesk
from backend.regions.vt_table import load_vt_config, read_vt_table

DEFAULT_MAX_FALLBACK_M = 25_000.0
RD_NEW = "EPSG:28992"
WGS84 = "EPSG:4326"


@functools.cache
def _to_rd() -> Transformer:
    return Transformer.from_crs(WGS84, RD_NEW, always_xy=True)


def _project(geometries: Sequence[BaseGeometry]) -> np.ndarray:
    transformer = _to_rd()

    def transform(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return transformer.transform(x, y)

    projected = shapely.transform(
        np.asarray(geometries, dtype=object), transform, interleaved=False
    )
    invalid = ~shapely.is_valid(projected)
    if invalid.any():
        projected[invalid] = shapely.make_valid(projected[invalid])
    return projected


class RegionIndex:
    """Point -> `RegionMatch`, plus look-ups of police units and Veilig Thuis desks by code.

    Build it once with `RegionIndex.load()` (cached) and share it: it is immutable after
    construction, so it is safe to use from several threads.
    """

    def __init__(
        self,
        municipalities: Sequence[Municipality],
        geometries_wgs84: Sequence[BaseGeometry],
        police_units: Sequence[PoliceUnit],
        vt_desks: Sequence[VtDesk],
        *,
        max_distance_m: float = DEFAULT_MAX_FALLBACK_M,
        interior_cells: Mapping[interior.Cell, str] | None = None,
    ) -> None:
        """`interior_cells` (cell -> municipality code, `interior.derive` over these polygons or a
        superset of them) lets `locate` skip the projection for points in those cells."""
        if len(municipalities) != len(geometries_wgs84) or not municipalities:
            raise RegionDataError("municipalities and geometries must be non-empty and aligned")
        if max_distance_m < 0:
            raise ValueError("max_distance_m must not be negative")
        self._municipalities = tuple(municipalities)
        self._by_code = {m.code: m for m in self._municipalities}
        self._bounds_wgs84 = tuple(float(b) for b in shapely.total_bounds(geometries_wgs84))
        self._geometries = _project(geometries_wgs84)
        self._tree = shapely.STRtree(self._geometries)
        # One match per municipality for points inside it (a RegionMatch is immutable).
        self._match_inside = {m.code: RegionMatch.of(m, exact=True, distance_m=0.0)
                              for m in self._municipalities}
        self._interior = {cell: self._match_inside[code]
                          for cell, code in (interior_cells or {}).items()
                          if code in self._match_inside}
        self._police_units = {
            unit.code: unit for unit in sorted(police_units, key=lambda u: u.code)
        }
        self._vt_desks = {desk.code: desk for desk in sorted(vt_desks, key=lambda d: d.code)}
        by_unit: dict[str, set[str]] = {}
        for m in self._municipalities:
            by_unit.setdefault(m.police_unit, set()).add(m.vr_code)
        self._safety_regions = {unit: frozenset(codes) for unit, codes in by_unit.items()}
        self.max_distance_m = float(max_distance_m)

    @classmethod
    def load(cls) -> RegionIndex:
        """The index over the packaged 2025 data; built on first use, then cached."""
        return _packaged_index()

    @classmethod
    def from_packaged_data(
        cls,
        geojson_name: str = data_files.MUNICIPALITY_GEOJSON,
        *,
        max_distance_m: float = DEFAULT_MAX_FALLBACK_M,
        with_interior_cells: bool = True,
    ) -> RegionIndex:
        """A fresh (uncached) index, optionally over a packaged subset such as
        `gemeenten_rotterdam_rijnmond_2025.geojson`; without the packaged interior cells, every
        point is projected (what they are derived from)."""
        rows = {row.gemeente_code: row for row in data_files.municipality_region_rows()}
        vt_config = load_vt_config()
        desks = {desk.code: desk for desk in vt_config.desk_objects()}
        vt_by_municipality = read_vt_table()
        municipalities: list[Municipality] = []
        geometries: list[BaseGeometry] = []
        for feature in data_files.read_geojson(geojson_name).get("features", []):
            code = str((feature.get("properties") or {}).get("statcode"))
            row = rows.get(code)
            if row is None:
                raise RegionDataError(f"municipality {code!r} is not in the region table")
            desk = desks.get(vt_by_municipality.get(row.gemeente_code, ""))
            if desk is None:
                raise RegionDataError(f"municipality {code} has no known Veilig Thuis desk")
            try:
                geometry = shape(feature["geometry"])
            except (KeyError, TypeError, ValueError, shapely.errors.GEOSException) as exc:
                raise RegionDataError(f"municipality {code} has a broken geometry") from exc
            municipalities.append(
                Municipality(
                    code=row.gemeente_code,
                    name=row.gemeente_name,
                    vr_code=row.vr_code,
                    vr_name=row.vr_name,
                    ggd_code=row.ggd_code,
                    ggd_name=row.ggd_name,
                    police_unit=row.police_unit,
                    police_unit_name=row.police_unit_name,
                    vt_desk_code=desk.code,
                    vt_desk_name=desk.name,
                )
            )
            geometries.append(geometry)
        police_units = {
            row.police_unit: PoliceUnit(code=row.police_unit, name=row.police_unit_name)
            for row in rows.values()
        }
        return cls(
            municipalities,
            geometries,
            list(police_units.values()),
            list(desks.values()),
            max_distance_m=max_distance_m,
            interior_cells=(interior.parse(data_files.read_text(data_files.INTERIOR_CELLS_CSV))
                            if with_interior_cells else None),
        )

    def derive_interior_cells(self) -> dict[interior.Cell, str]:
        """The interior cells of this index's polygons (what `data/interior_cells_2025.csv`
        holds for the packaged ones)."""
        return interior.derive(self._geometries, [m.code for m in self._municipalities],
                               self._bounds_wgs84, _to_rd().transform)

    def locate(
        self, lat: float, lon: float, *, max_distance_m: float | None = None
    ) -> RegionMatch | None:
        """The regions of a WGS84 point, or None when it is farther than the fallback distance
        from every municipality."""
        lat_f, lon_f = _checked(lat, lon)
        found = self._interior.get(interior.cell_of(lat_f, lon_f))
        if found is not None:
            return found
        x, y = (float(v) for v in _to_rd().transform(lon_f, lat_f))
        if not (math.isfinite(x) and math.isfinite(y)):
            return None
        point = Point(x, y)
        inside = self._tree.query(point, predicate="intersects")
        if len(inside):
            # On a shared boundary take the lowest code, so the answer is deterministic.
            best = min(inside, key=lambda i: self._municipalities[i].code)
            return self._match_inside[self._municipalities[best].code]
        limit = self.max_distance_m if max_distance_m is None else max_distance_m
        if not limit > 0:  # no fallback (shapely refuses a distance of 0)
            return None
        indices, distances = self._tree.query_nearest(
            point, max_distance=limit, return_distance=True, all_matches=True
        )
        if len(indices) == 0:
            return None
        best = min(
            range(len(indices)),
            key=lambda k: (distances[k], self._municipalities[indices[k]].code),
        )
        return RegionMatch.of(
            self._municipalities[indices[best]], exact=False, distance_m=float(distances[best])
        )

    def municipality(self, code: str) -> Municipality:
        try:
            return self._by_code[code]
        except KeyError:
            raise UnknownRegionCode(f"unknown municipality code {code!r}") from None

    def police_unit(self, code: str) -> PoliceUnit:
        try:
            return self._police_units[code]
        except KeyError:
            raise UnknownRegionCode(f"unknown police unit code {code!r}") from None

    def vt_desk(self, code: str) -> VtDesk:
        try:
            return self._vt_desks[code]
        except KeyError:
            raise UnknownRegionCode(f"unknown Veilig Thuis desk code {code!r}") from None

    def safety_regions_by_police_unit(self) -> Mapping[str, frozenset[str]]:
        """Police unit code -> the codes of the safety regions of its municipalities (each
        safety region lies in one police unit)."""
        return MappingProxyType(self._safety_regions)

    def police_units(self) -> tuple[PoliceUnit, ...]:
        """All police units, sorted by code."""
        return tuple(self._police_units.values())

    def vt_desks(self) -> tuple[VtDesk, ...]:
        """All Veilig Thuis desks, sorted by code."""
        return tuple(self._vt_desks.values())

    def municipalities(self) -> tuple[Municipality, ...]:
        return self._municipalities


def _checked(lat: float, lon: float) -> tuple[float, float]:
    """A WGS84 point as floats, or `InvalidCoordinate`."""
    try:
        lat_f, lon_f = float(lat), float(lon)
    except (TypeError, ValueError):
        raise InvalidCoordinate("latitude and longitude must be numbers") from None
    if not (math.isfinite(lat_f) and math.isfinite(lon_f)):
        raise InvalidCoordinate("latitude and longitude must be finite")
    if not (-90.0 <= lat_f <= 90.0 and -180.0 <= lon_f <= 180.0):
        raise InvalidCoordinate("latitude or longitude out of range")
    return lat_f, lon_f


@functools.cache
def _packaged_index() -> RegionIndex:
    return RegionIndex.from_packaged_data()
