"""RegionIndex over the packaged 2025 boundaries: known points, open water, far away, look-ups."""

from __future__ import annotations

import math

import pytest
from shapely.geometry import box

from backend.regions import (
    InvalidCoordinate,
    Municipality,
    PoliceUnit,
    RegionIndex,
    RegionMatch,
    UnknownRegionCode,
    VtDesk,
)

# (name, lat, lon, gemeente, VR, GGD, police unit) — the known points table of data/SOURCE.md.
KNOWN_POINTS = [
    ("Rotterdam Centraal", 51.9244, 4.4690, "GM0599", "VR17", "GG4607", "RE07"),
    ("Schiedam", 51.9192, 4.3989, "GM0606", "VR17", "GG4607", "RE07"),
    ("Capelle aan den IJssel", 51.9293, 4.5781, "GM0502", "VR17", "GG4607", "RE07"),
    ("Spijkenisse", 51.8450, 4.3290, "GM1930", "VR17", "GG4607", "RE07"),
    ("Dordrecht", 51.8133, 4.6901, "GM0505", "VR18", "GG4816", "RE07"),
    ("Amsterdam Dam", 52.3731, 4.8926, "GM0363", "VR13", "GG3406", "RE05"),
    ("Den Haag", 52.0799, 4.3113, "GM0518", "VR15", "GG7014", "RE06"),
    ("Utrecht", 52.0907, 5.1214, "GM0344", "VR09", "GG2514", "RE03"),
    ("Groningen", 53.2194, 6.5665, "GM0014", "VR01", "GG0111", "RE01"),
    ("Maastricht", 50.8514, 5.6910, "GM0935", "VR24", "GG6106", "RE10"),
    ("Eindhoven", 51.4416, 5.4697, "GM0772", "VR22", "GG5608", "RE09"),
    ("Middelburg", 51.4988, 3.6136, "GM0687", "VR19", "GG5006", "RE08"),
]

IJSSELMEER_CENTRE = (52.80, 5.35)
OFF_SCHEVENINGEN = (52.12, 4.25)  # about 2 km out to sea
LONDON = (51.5074, -0.1278)


@pytest.fixture(scope="module")
def index() -> RegionIndex:
    return RegionIndex.load()


def test_load_is_cached() -> None:
    assert RegionIndex.load() is RegionIndex.load()


@pytest.mark.parametrize(
    ("name", "lat", "lon", "gemeente", "vr", "ggd", "police"),
    KNOWN_POINTS,
    ids=[p[0] for p in KNOWN_POINTS],
)
def test_known_points_resolve_exactly(
    index: RegionIndex,
    name: str,
    lat: float,
    lon: float,
    gemeente: str,
    vr: str,
    ggd: str,
    police: str,
) -> None:
    match = index.locate(lat, lon)
    assert match is not None, name
    assert (match.gemeente_code, match.vr_code, match.ggd_code, match.police_unit) == (
        gemeente,
        vr,
        ggd,
        police,
    )
    assert match.exact is True
    assert match.distance_m == 0.0


def test_rotterdam_centraal_carries_names_and_vt_desk(index: RegionIndex) -> None:
    match = index.locate(51.9244, 4.4690)
    assert match == RegionMatch(
        gemeente_code="GM0599",
        gemeente_name="Rotterdam",
        vr_code="VR17",
        vr_name="Rotterdam-Rijnmond",
        ggd_code="GG4607",
        ggd_name="GGD Rotterdam-Rijnmond",
        police_unit="RE07",
        police_unit_name="Rotterdam",
        vt_desk_code="VT4607",
        vt_desk_name="Veilig Thuis Rotterdam Rijnmond",
        exact=True,
        distance_m=0.0,
    )


def test_hart_voor_brabant_is_split_between_two_desks(index: RegionIndex) -> None:
    tilburg = index.locate(51.5555, 5.0913)
    oss = index.locate(51.7650, 5.5180)
    assert tilburg is not None and oss is not None
    assert tilburg.ggd_code == oss.ggd_code == "GG5406"
    assert tilburg.vt_desk_code == "VT5406-MB"
    assert oss.vt_desk_code == "VT5406"


def test_ijsselmeer_centre_falls_back_to_nearest_municipality(index: RegionIndex) -> None:
    match = index.locate(*IJSSELMEER_CENTRE)
    assert match is not None
    assert match.exact is False
    assert 0 < match.distance_m <= 25_000
    # The shore around the IJsselmeer belongs to Noord-Nederland, Noord-Holland or Midden-Nederland.
    assert match.police_unit in {"RE01", "RE03", "RE04"}


def test_just_off_scheveningen_falls_back_to_den_haag(index: RegionIndex) -> None:
    match = index.locate(*OFF_SCHEVENINGEN)
    assert match is not None
    assert match.exact is False
    assert match.gemeente_code == "GM0518"
    assert match.police_unit == "RE06"
    assert 100 < match.distance_m < 5_000


def test_fallback_distance_is_configurable(index: RegionIndex) -> None:
    match = index.locate(*IJSSELMEER_CENTRE)
    assert match is not None
    assert index.locate(*IJSSELMEER_CENTRE, max_distance_m=match.distance_m - 1) is None
    assert index.locate(*IJSSELMEER_CENTRE, max_distance_m=match.distance_m + 1) == match


def test_a_fallback_distance_of_zero_means_no_fallback(index: RegionIndex) -> None:
    assert index.locate(*OFF_SCHEVENINGEN, max_distance_m=0) is None
    assert index.locate(51.9244, 4.4690, max_distance_m=0) is not None  # inside: no fallback


def test_london_is_too_far(index: RegionIndex) -> None:
    assert index.locate(*LONDON) is None


def _square_index() -> RegionIndex:
    """One synthetic municipality: lon 5.0-5.1, lat 52.0-52.1 (near Amersfoort, where RD New
    has almost no scale distortion)."""
    municipality = Municipality(
        code="GM0001",
        name="Square",
        vr_code="VR01",
        vr_name="vr",
        ggd_code="GG0001",
        ggd_name="ggd",
        police_unit="RE01",
        police_unit_name="unit",
        vt_desk_code="VT0001",
        vt_desk_name="desk",
    )
    return RegionIndex(
        [municipality],
        [box(5.0, 52.0, 5.1, 52.1)],
        [PoliceUnit("RE01", "unit")],
        [VtDesk("VT0001", "desk", "GG0001")],
    )


def test_fallback_distance_is_measured_in_metres() -> None:
    index = _square_index()
    # 0.09 degree of latitude south of the square's southern edge: 0.09 * 111.2 km = 10.0 km.
    match = index.locate(52.0 - 0.09, 5.05)
    assert match is not None
    assert match.exact is False
    assert match.distance_m == pytest.approx(10_010, rel=0.01)
    inside = index.locate(52.05, 5.05)
    assert inside is not None and inside.exact is True
    # 0.3 degree south is about 33 km: beyond the default 25 km.
    assert index.locate(52.0 - 0.3, 5.05) is None


def test_subset_index_falls_back_within_its_own_municipalities() -> None:
    subset = RegionIndex.from_packaged_data("gemeenten_rotterdam_rijnmond_2025.geojson")
    assert len(subset.municipalities()) == 13
    away = subset.locate(52.0799, 4.3113)  # Den Haag centre is not in the Rijnmond subset
    assert away is not None
    assert away.exact is False
    assert away.vr_code == "VR17"


@pytest.mark.parametrize(
    ("lat", "lon"), [(math.nan, 4.0), (52.0, math.inf), (91.0, 4.0), (52.0, -181.0)]
)
def test_invalid_coordinates_are_rejected(index: RegionIndex, lat: float, lon: float) -> None:
    with pytest.raises(InvalidCoordinate):
        index.locate(lat, lon)


def test_police_unit_lookup(index: RegionIndex) -> None:
    unit = index.police_unit("RE07")
    assert (unit.code, unit.name) == ("RE07", "Rotterdam")
    assert [u.code for u in index.police_units()] == [f"RE{n:02d}" for n in range(1, 11)]
    with pytest.raises(UnknownRegionCode):
        index.police_unit("RE99")


def test_each_safety_region_lies_in_one_police_unit(index: RegionIndex) -> None:
    by_unit = index.safety_regions_by_police_unit()
    assert by_unit["RE07"] == {"VR17", "VR18"}  # Rotterdam: Rotterdam-Rijnmond, ZH-Zuid
    assert sorted(by_unit) == [f"RE{n:02d}" for n in range(1, 11)]
    every = [vr for regions in by_unit.values() for vr in regions]
    assert sorted(every) == [f"VR{n:02d}" for n in range(1, 26)]  # each in exactly one unit


def test_vt_desk_lookup(index: RegionIndex) -> None:
    desk = index.vt_desk("VT4607")
    assert (desk.code, desk.name, desk.ggd_code) == (
        "VT4607",
        "Veilig Thuis Rotterdam Rijnmond",
        "GG4607",
    )
    desks = index.vt_desks()
    assert len(desks) == 26
    assert len({d.ggd_code for d in desks}) == 25
    with pytest.raises(UnknownRegionCode):
        index.vt_desk("VT0000")


def test_every_municipality_has_regions_and_a_desk(index: RegionIndex) -> None:
    municipalities = index.municipalities()
    assert len(municipalities) == 342
    desk_codes = {d.code for d in index.vt_desks()}
    unit_codes = {u.code for u in index.police_units()}
    for m in municipalities:
        assert m.vt_desk_code in desk_codes
        assert m.police_unit in unit_codes
        assert index.vt_desk(m.vt_desk_code).ggd_code == m.ggd_code
    assert index.municipality("GM0599").name == "Rotterdam"
    with pytest.raises(UnknownRegionCode):
        index.municipality("GM9999")
