"""Interior cells: the municipality of a point well inside one, found without projecting it.

The map is cut into cells of `CELL_DEG` degrees of latitude by `CELL_DEG` of longitude (about
1.1 by 0.7 km here). A cell is *interior* when it lies, with a margin of `MARGIN_M` metres all
round, inside one municipality's polygon and within that margin of no other: every point of it
resolves to that municipality, exactly. `RegionIndex.locate` asks the packaged table of interior
cells first, a dictionary look-up, and projects and queries the polygons only for a point in any
other cell; the answer is the same either way. On the alarm path the projection and the polygon
query took about 0.3 ms when they had not run for a while, 14 us back to back
(docs/benchmarks.md, "Where the time goes now"); the look-up takes a few microseconds.

The table is derived from the packaged polygons and shipped (`data/interior_cells_2025.csv`,
rebuilt with `python -m backend.regions.build_interior_cells`), so that a process does not spend
most of a second deriving it at every start. Each row is a run of cells of one latitude row:
`lat_cell,lon_cell_from,lon_cell_to,gemeente_code` (both ends included).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import shapely
from shapely.geometry.base import BaseGeometry

from backend.regions.errors import RegionDataError

CELL_DEG = 0.01
# Cells are checked as the quadrilaterals of their projected corners, whose true edges bow away
# from the straight lines by about a centimetre at this size; a margin of metres covers that.
MARGIN_M = 5.0
HEADER = "lat_cell,lon_cell_from,lon_cell_to,gemeente_code"

Cell = tuple[int, int]
# (longitudes, latitudes) -> (x, y) in the polygons' projection.
Projection = Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def cell_of(lat: float, lon: float) -> Cell:
    """The cell a point lies in (a point on a cell's edge may get either neighbour: an interior
    cell includes its edges and the margin, so either answer is right)."""
    return math.floor(lat / CELL_DEG), math.floor(lon / CELL_DEG)


def derive(
    geometries: Sequence[BaseGeometry] | np.ndarray, codes: Sequence[str],
    bounds_wgs84: tuple[float, float, float, float], project: Projection,
) -> dict[Cell, str]:
    """Every interior cell within `bounds_wgs84` (lon_min, lat_min, lon_max, lat_max) and the code
    of its municipality. `geometries` are the municipalities' polygons in a metric projection,
    `project` takes WGS84 longitudes and latitudes to it."""
    geometries = np.asarray(geometries, dtype=object)
    lon_min, lat_min, lon_max, lat_max = bounds_wgs84
    rows = np.arange(math.floor(lat_min / CELL_DEG), math.floor(lat_max / CELL_DEG) + 1)
    columns = np.arange(math.floor(lon_min / CELL_DEG), math.floor(lon_max / CELL_DEG) + 1)
    lat_cells, lon_cells = (a.ravel() for a in np.meshgrid(rows, columns, indexing="ij"))
    corner_lats = np.stack([lat_cells, lat_cells, lat_cells + 1, lat_cells + 1], 1) * CELL_DEG
    corner_lons = np.stack([lon_cells, lon_cells + 1, lon_cells + 1, lon_cells], 1) * CELL_DEG
    x, y = project(corner_lons.ravel(), corner_lats.ravel())
    quads = shapely.polygons(np.stack(
        [np.asarray(x).reshape(-1, 4), np.asarray(y).reshape(-1, 4)], axis=-1))
    near, municipality = shapely.STRtree(geometries).query(
        quads, predicate="dwithin", distance=MARGIN_M)
    alone = (np.bincount(near, minlength=len(quads)) == 1)[near]
    near, municipality = near[alone], municipality[alone]
    inside = shapely.contains(shapely.buffer(geometries, -MARGIN_M)[municipality], quads[near])
    return {
        (int(lat_cells[q]), int(lon_cells[q])): codes[m]
        for q, m in zip(near[inside], municipality[inside], strict=True)
    }


def render(cells: dict[Cell, str]) -> str:
    """The table as shipped: runs of one code along each latitude row, sorted."""
    lines = [HEADER]
    run: list = []  # [lat_cell, lon_from, lon_to, code]
    for (lat_cell, lon_cell), code in sorted(cells.items()):
        if run and run[0] == lat_cell and run[2] == lon_cell - 1 and run[3] == code:
            run[2] = lon_cell
            continue
        if run:
            lines.append(",".join(map(str, run)))
        run = [lat_cell, lon_cell, lon_cell, code]
    if run:
        lines.append(",".join(map(str, run)))
    return "\n".join(lines) + "\n"


def parse(text: str) -> dict[Cell, str]:
    """The shipped table back as cell -> municipality code."""
    lines = text.splitlines()
    if not lines or lines[0] != HEADER:
        raise RegionDataError(f"interior cells table must start with {HEADER!r}")
    cells: dict[Cell, str] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            lat_cell, lon_from, lon_to, code = line.split(",")
            first, last = int(lon_from), int(lon_to)
            for lon_cell in range(first, last + 1):
                cells[int(lat_cell), lon_cell] = code
        except ValueError:
            raise RegionDataError(f"interior cells table, line {number}: {line!r}") from None
    return cells
