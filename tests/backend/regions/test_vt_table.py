"""The shipped municipality -> Veilig Thuis table and its override mechanism."""

from __future__ import annotations

import pytest

from backend.regions import RegionDataError, data_files
from backend.regions.data_files import MunicipalityRegionRow
from backend.regions.vt_table import (
    VtConfig,
    derive_vt_table,
    load_vt_config,
    read_vt_table,
    render_vt_table,
)


def _row(code: str, ggd: str, vr: str) -> MunicipalityRegionRow:
    return MunicipalityRegionRow(
        code, f"name {code}", vr, f"vr {vr}", ggd, f"ggd {ggd}", "RE01", "x"
    )


def test_shipped_table_matches_its_derivation() -> None:
    derived = derive_vt_table(data_files.municipality_region_rows(), load_vt_config())
    assert render_vt_table(derived) == data_files.read_text(data_files.MUNICIPALITY_VT_CSV)


def test_shipped_table_covers_every_municipality() -> None:
    table = read_vt_table()
    codes = {row.gemeente_code for row in data_files.municipality_region_rows()}
    assert set(table) == codes
    assert len(codes) == 342


def test_default_desk_is_the_first_desk_of_the_ggd_region() -> None:
    config = VtConfig.model_validate(
        {
            "desks": [
                {"code": "VT0001", "ggd_code": "GG0001", "name": "A"},
                {"code": "VT0001-B", "ggd_code": "GG0001", "name": "B"},
            ]
        }
    )
    table = derive_vt_table([_row("GM0001", "GG0001", "VR01")], config)
    assert table == [("GM0001", "name GM0001", "VT0001", "A")]


def test_overrides_apply_in_order_and_need_every_selector_to_match() -> None:
    config = VtConfig.model_validate(
        {
            "desks": [
                {"code": "VT0001", "ggd_code": "GG0001", "name": "A"},
                {"code": "VT0001-B", "ggd_code": "GG0001", "name": "B"},
                {"code": "VT0001-C", "ggd_code": "GG0001", "name": "C"},
            ],
            "overrides": [
                {"desk": "VT0001-B", "ggd_code": "GG0001", "vr_code": "VR02", "reason": "split"},
                {"desk": "VT0001-C", "gemeente_codes": ["GM0003"], "reason": "one town"},
            ],
        }
    )
    rows = [
        _row("GM0001", "GG0001", "VR01"),
        _row("GM0002", "GG0001", "VR02"),
        _row("GM0003", "GG0001", "VR02"),
    ]
    assert [entry[2] for entry in derive_vt_table(rows, config)] == [
        "VT0001",
        "VT0001-B",
        "VT0001-C",
    ]


def test_a_municipality_without_a_desk_is_a_data_error() -> None:
    config = VtConfig.model_validate(
        {"desks": [{"code": "VT0001", "ggd_code": "GG0001", "name": "A"}]}
    )
    with pytest.raises(RegionDataError):
        derive_vt_table([_row("GM0009", "GG0009", "VR01")], config)


@pytest.mark.parametrize(
    "document",
    [
        {"desks": []},
        {"desks": [{"code": "bad", "ggd_code": "GG0001", "name": "A"}]},
        {
            "desks": [{"code": "VT0001", "ggd_code": "GG0001", "name": "A"}],
            "overrides": [{"desk": "VT9999", "ggd_code": "GG0001", "reason": "x"}],
        },
        {
            "desks": [{"code": "VT0001", "ggd_code": "GG0001", "name": "A"}],
            "overrides": [{"desk": "VT0001", "reason": "no selector"}],
        },
        {
            "desks": [
                {"code": "VT0001", "ggd_code": "GG0001", "name": "A"},
                {"code": "VT0001", "ggd_code": "GG0002", "name": "B"},
            ]
        },
    ],
)
def test_bad_configuration_is_rejected(document: dict) -> None:
    with pytest.raises(ValueError):
        VtConfig.model_validate(document)
