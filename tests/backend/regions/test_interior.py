"""Interior cells: the shipped table is what the polygons give, and `locate` answers the same
with it as without it, wherever the point is."""

from __future__ import annotations

import random

import pytest
from shapely.geometry import box

from backend.regions import (
    Municipality,
    PoliceUnit,
    RegionDataError,
    RegionIndex,
    VtDesk,
    data_files,
    interior,
)


@pytest.fixture(scope="module")
def with_cells() -> RegionIndex:
    return RegionIndex.load()


@pytest.fixture(scope="module")
def without_cells() -> RegionIndex:
    return RegionIndex.from_packaged_data(with_interior_cells=False)


def test_shipped_table_matches_its_derivation(without_cells: RegionIndex) -> None:
    shipped = data_files.read_text(data_files.INTERIOR_CELLS_CSV)
    assert interior.render(without_cells.derive_interior_cells()) == shipped


def test_most_of_the_land_is_in_interior_cells(with_cells: RegionIndex) -> None:
    cells = interior.parse(data_files.read_text(data_files.INTERIOR_CELLS_CSV))
    # About 48,000 cells of 0.01 degree touch a municipality; the rest are borders and water.
    assert 30_000 < len(cells) < 48_000
    assert set(cells.values()) <= {m.code for m in with_cells.municipalities()}


def _points(seed: int, count: int) -> list[tuple[float, float]]:
    """Uniform over the packaged data's bounding box, and on cell edges and corners."""
    rng = random.Random(seed)
    points = [(rng.uniform(50.70, 53.60), rng.uniform(3.30, 7.25)) for _ in range(count)]
    step = interior.CELL_DEG
    for _ in range(count // 4):
        lat_cell, lon_cell = rng.randrange(5070, 5360), rng.randrange(330, 725)
        points += [(lat_cell * step, lon_cell * step),
                   (lat_cell * step, (lon_cell + rng.random()) * step),
                   ((lat_cell + rng.random()) * step, lon_cell * step)]
    return points


def test_locate_answers_the_same_with_and_without_the_cells(
    with_cells: RegionIndex, without_cells: RegionIndex,
) -> None:
    points = _points(seed=7, count=12_000)
    cells = interior.parse(data_files.read_text(data_files.INTERIOR_CELLS_CSV))
    interior_hits = 0
    for lat, lon in points:
        assert with_cells.locate(lat, lon) == without_cells.locate(lat, lon), (lat, lon)
        interior_hits += interior.cell_of(lat, lon) in cells
    # The comparison covers both paths: a good share of the points took the table.
    assert interior_hits > len(points) // 5


def test_a_subset_keeps_only_its_own_municipalities_cells() -> None:
    name = "gemeenten_rotterdam_rijnmond_2025.geojson"
    subset = RegionIndex.from_packaged_data(name)
    plain = RegionIndex.from_packaged_data(name, with_interior_cells=False)
    for lat, lon in _points(seed=11, count=3_000):
        assert subset.locate(lat, lon) == plain.locate(lat, lon), (lat, lon)
    den_haag = subset.locate(52.0799, 4.3113)
    assert den_haag is not None and den_haag.exact is False


def _square(code: str, west: float) -> tuple[Municipality, object]:
    municipality = Municipality(code, code, "VR01", "vr", "GG0001", "ggd", "RE01", "unit",
                                "VT0001", "desk")
    return municipality, box(west, 52.0, west + 0.1, 52.1)


def test_locate_takes_the_table_before_the_polygons() -> None:
    (a, square_a), (b, square_b) = _square("GM0001", 5.0), _square("GM0002", 5.1)
    regions = dict(police_units=[PoliceUnit("RE01", "unit")],
                   vt_desks=[VtDesk("VT0001", "desk", "GG0001")])
    # A table that (wrongly) puts a cell of the first square in the second shows which answers.
    told = RegionIndex([a, b], [square_a, square_b], **regions,
                       interior_cells={interior.cell_of(52.055, 5.055): "GM0002"})
    assert told.locate(52.055, 5.055).gemeente_code == "GM0002"
    assert told.locate(52.075, 5.075).gemeente_code == "GM0001"  # not in the table


def test_derived_cells_of_two_squares_keep_off_their_shared_edge() -> None:
    (a, square_a), (b, square_b) = _square("GM0001", 5.0), _square("GM0002", 5.1)
    index = RegionIndex([a, b], [square_a, square_b], [PoliceUnit("RE01", "unit")],
                        [VtDesk("VT0001", "desk", "GG0001")])
    cells = index.derive_interior_cells()
    # Each square holds 10 x 10 cells; the ring of cells on its edges is not interior.
    assert sorted(set(cells.values())) == ["GM0001", "GM0002"]
    assert len(cells) == 2 * 8 * 8
    assert all(510 <= lon_cell <= 519 for (_, lon_cell), code in cells.items()
               if code == "GM0002")
    assert (5205, 509) not in cells and (5205, 510) not in cells


def test_render_and_parse_round_trip_in_runs() -> None:
    cells = {(5200, 400): "GM0001", (5200, 401): "GM0001", (5200, 403): "GM0001",
             (5200, 404): "GM0002", (5201, 400): "GM0001"}
    text = interior.render(cells)
    assert text.splitlines() == [interior.HEADER, "5200,400,401,GM0001", "5200,403,403,GM0001",
                                 "5200,404,404,GM0002", "5201,400,400,GM0001"]
    assert interior.parse(text) == cells


@pytest.mark.parametrize("text", ["", "lat,lon\n", f"{interior.HEADER}\n5200,400,GM0001\n",
                                  f"{interior.HEADER}\n5200,x,401,GM0001\n"])
def test_a_broken_table_is_a_clear_error(text: str) -> None:
    with pytest.raises(RegionDataError, match="interior cells table"):
        interior.parse(text)


def test_cells_of_negative_coordinates_round_down() -> None:
    assert interior.cell_of(-0.005, -0.015) == (-1, -2)
    assert interior.cell_of(52.0149, 4.4799) == (5201, 447)
