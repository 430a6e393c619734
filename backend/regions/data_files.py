"""Reading the packaged data files (the only module of the package that touches them).

The files live in `backend/regions/data/` (source and licence: `data/SOURCE.md`) and are read
with `importlib.resources`, so they work from a source tree and from an installed wheel.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from importlib import resources
from typing import Any

import yaml

from backend.regions.errors import RegionDataError

DATA_PACKAGE = "backend.regions"
MUNICIPALITY_GEOJSON = "gemeenten_2025.geojson"
MUNICIPALITY_REGION_CSV = "gemeente_regio_2025.csv"
VT_CONFIG_YAML = "veilig_thuis.yaml"
MUNICIPALITY_VT_CSV = "gemeente_vt_2025.csv"
INTERIOR_CELLS_CSV = "interior_cells_2025.csv"


@dataclass(frozen=True, slots=True)
class MunicipalityRegionRow:
    """One row of `gemeente_regio_2025.csv` (derived by largest area overlap, see SOURCE.md)."""

    gemeente_code: str
    gemeente_name: str
    vr_code: str
    vr_name: str
    ggd_code: str
    ggd_name: str
    police_unit: str
    police_unit_name: str


def read_text(name: str) -> str:
    """The text of one packaged data file."""
    try:
        return (
            resources.files(DATA_PACKAGE)
            .joinpath("data")
            .joinpath(name)
            .read_text(encoding="utf-8")
        )
    except (FileNotFoundError, OSError) as exc:
        raise RegionDataError(f"region data file {name!r} is missing") from exc


def read_geojson(name: str) -> dict[str, Any]:
    """A packaged GeoJSON FeatureCollection."""
    try:
        document = json.loads(read_text(name))
    except json.JSONDecodeError as exc:
        raise RegionDataError(f"region data file {name!r} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("type") != "FeatureCollection":
        raise RegionDataError(f"region data file {name!r} is not a GeoJSON FeatureCollection")
    return document


def read_csv(name: str, required: tuple[str, ...]) -> list[dict[str, str]]:
    """The rows of a packaged CSV file, checking that the `required` columns exist."""
    reader = csv.DictReader(io.StringIO(read_text(name)))
    missing = [column for column in required if column not in (reader.fieldnames or [])]
    if missing:
        raise RegionDataError(f"region data file {name!r} lacks columns {missing}")
    return list(reader)


def read_yaml(name: str) -> Any:
    """A packaged YAML document."""
    try:
        return yaml.safe_load(read_text(name))
    except yaml.YAMLError as exc:
        raise RegionDataError(f"region data file {name!r} is not valid YAML: {exc}") from exc


def municipality_region_rows() -> list[MunicipalityRegionRow]:
    """The municipality -> VR / GGD / police unit table."""
    rows = read_csv(
        MUNICIPALITY_REGION_CSV,
        (
            "gemeente_code",
            "gemeente_naam",
            "vr_code",
            "vr_naam",
            "ggd_code",
            "ggd_naam",
            "politie_code",
            "politie_naam",
        ),
    )
    return [
        MunicipalityRegionRow(
            gemeente_code=row["gemeente_code"],
            gemeente_name=row["gemeente_naam"],
            vr_code=row["vr_code"],
            vr_name=row["vr_naam"],
            ggd_code=row["ggd_code"],
            ggd_name=row["ggd_naam"],
            police_unit=row["politie_code"],
            police_unit_name=row["politie_naam"],
        )
        for row in rows
    ]
