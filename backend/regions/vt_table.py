"""The municipality -> Veilig Thuis desk table: its configuration and how it is derived.

The table shipped in `data/gemeente_vt_2025.csv` is generated from `data/veilig_thuis.yaml`
(desks per GGD region plus overrides, see the comments in that file) and the municipality ->
GGD table. It is a derivation, not an official list, and must be checked before production use.

Regenerate it with:

    python -m backend.regions.build_vt_table > backend/regions/data/gemeente_vt_2025.csv
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from backend.regions import data_files
from backend.regions.data_files import MunicipalityRegionRow
from backend.regions.errors import RegionDataError
from backend.regions.models import VtDesk

VT_TABLE_COLUMNS = ("gemeente_code", "gemeente_naam", "vt_code", "vt_naam")


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DeskEntry(_Strict):
    code: str = Field(pattern=r"^VT\d{4}(-[A-Z]{1,4})?$")
    ggd_code: str = Field(pattern=r"^GG\d{4}$")
    name: str = Field(min_length=1)


class OverrideEntry(_Strict):
    """Moves the municipalities matching every given selector to `desk`."""

    desk: str
    ggd_code: str | None = None
    vr_code: str | None = None
    gemeente_codes: tuple[str, ...] | None = None
    reason: str = Field(min_length=1)

    @model_validator(mode="after")
    def _has_selector(self) -> OverrideEntry:
        if self.ggd_code is None and self.vr_code is None and not self.gemeente_codes:
            raise ValueError(f"override to {self.desk} has no selector")
        return self

    def matches(self, row: MunicipalityRegionRow) -> bool:
        return (
            (self.ggd_code is None or row.ggd_code == self.ggd_code)
            and (self.vr_code is None or row.vr_code == self.vr_code)
            and (self.gemeente_codes is None or row.gemeente_code in self.gemeente_codes)
        )


class VtConfig(_Strict):
    desks: tuple[DeskEntry, ...] = Field(min_length=1)
    overrides: tuple[OverrideEntry, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> VtConfig:
        codes = [desk.code for desk in self.desks]
        if len(codes) != len(set(codes)):
            raise ValueError("duplicate Veilig Thuis desk code")
        for override in self.overrides:
            if override.desk not in codes:
                raise ValueError(f"override names unknown desk {override.desk}")
        return self

    def desk_objects(self) -> list[VtDesk]:
        return [VtDesk(code=d.code, name=d.name, ggd_code=d.ggd_code) for d in self.desks]


def load_vt_config() -> VtConfig:
    """The packaged `veilig_thuis.yaml`, validated."""
    try:
        return VtConfig.model_validate(data_files.read_yaml(data_files.VT_CONFIG_YAML))
    except ValidationError as exc:
        raise RegionDataError(f"{data_files.VT_CONFIG_YAML} is invalid: {exc}") from exc


def derive_vt_table(
    rows: Iterable[MunicipalityRegionRow], config: VtConfig
) -> list[tuple[str, str, str, str]]:
    """(gemeente_code, gemeente_name, vt_code, vt_name) for every municipality, sorted by code.

    Default: the first desk listed for the municipality's GGD region; then every matching
    override in order (the last match wins).
    """
    default_by_ggd: dict[str, DeskEntry] = {}
    for entry in config.desks:
        default_by_ggd.setdefault(entry.ggd_code, entry)
    by_code = {desk.code: desk for desk in config.desks}
    table = []
    for row in sorted(rows, key=lambda r: r.gemeente_code):
        desk: DeskEntry | None = default_by_ggd.get(row.ggd_code)
        for override in config.overrides:
            if override.matches(row):
                desk = by_code[override.desk]
        if desk is None:
            raise RegionDataError(
                f"no Veilig Thuis desk for {row.gemeente_code} (GGD region {row.ggd_code})"
            )
        table.append((row.gemeente_code, row.gemeente_name, desk.code, desk.name))
    return table


def render_vt_table(table: Sequence[tuple[str, str, str, str]]) -> str:
    """The CSV text of a derived table, in the form shipped in `data/`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(VT_TABLE_COLUMNS)
    writer.writerows(table)
    return out.getvalue()


def read_vt_table() -> dict[str, str]:
    """The shipped explicit table: gemeente_code -> vt_code."""
    rows = data_files.read_csv(data_files.MUNICIPALITY_VT_CSV, VT_TABLE_COLUMNS)
    return {row["gemeente_code"]: row["vt_code"] for row in rows}
