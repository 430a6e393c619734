"""Regions: which municipality, safety region, GGD region, police unit and Veilig Thuis desk a
location belongs to.

Pure: reads only the packaged data files in `data/` (CBS / PDOK boundaries 2025, generalised;
source, licence and caveats in `data/SOURCE.md`). The Veilig Thuis table is derived, not official
(`data/veilig_thuis.yaml`).

- `index`: `RegionIndex.load()` and `RegionIndex.locate(lat, lon) -> RegionMatch | None`.
- `models`: `RegionMatch`, `PoliceUnit`, `VtDesk`, `Municipality`.
- `vt_table`: the municipality -> Veilig Thuis desk table and its override mechanism.
- `interior`: the table of cells wholly inside one municipality, which `locate` asks first.
- `errors`: the error tree.
"""

from backend.regions.errors import (
    InvalidCoordinate,
    RegionDataError,
    RegionError,
    UnknownRegionCode,
)
from backend.regions.index import DEFAULT_MAX_FALLBACK_M, RegionIndex
from backend.regions.models import Municipality, PoliceUnit, RegionMatch, VtDesk

__all__ = [
    "DEFAULT_MAX_FALLBACK_M",
    "InvalidCoordinate",
    "Municipality",
    "PoliceUnit",
    "RegionDataError",
    "RegionError",
    "RegionIndex",
    "RegionMatch",
    "UnknownRegionCode",
    "VtDesk",
]
