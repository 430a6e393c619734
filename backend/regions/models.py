"""Value objects of the region package: what a location resolves to, and the look-up tables."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class PoliceUnit:
    """A regional police unit (CBS layer `regionale_eenheid`), e.g. `RE07` Rotterdam."""

    code: str
    name: str


@dataclass(frozen=True, slots=True)
class VtDesk:
    """A Veilig Thuis organisation and its 24-hour desk, e.g. `VT4607` Veilig Thuis Rotterdam Rijnmond."""

    code: str
    name: str
    ggd_code: str


@dataclass(frozen=True, slots=True)
class Municipality:
    """One municipality (2025 layout) with the regions it belongs to."""

    code: str
    name: str
    vr_code: str
    vr_name: str
    ggd_code: str
    ggd_name: str
    police_unit: str
    police_unit_name: str
    vt_desk_code: str
    vt_desk_name: str


@dataclass(frozen=True, slots=True)
class RegionMatch:
    """The regions of a location.

    `exact` is true when the point lies inside a municipality polygon; then `distance_m` is 0.
    Otherwise (open water, just off the generalised coastline) the nearest municipality within the
    configured fallback distance was taken, and `distance_m` is the distance to it in metres
    (measured in RD New, EPSG:28992).
    """

    gemeente_code: str
    gemeente_name: str
    vr_code: str
    vr_name: str
    ggd_code: str
    ggd_name: str
    police_unit: str
    police_unit_name: str
    vt_desk_code: str
    vt_desk_name: str
    exact: bool
    distance_m: float

    @classmethod
    def of(cls, municipality: Municipality, *, exact: bool, distance_m: float) -> RegionMatch:
        return cls(
            gemeente_code=municipality.code,
            gemeente_name=municipality.name,
            vr_code=municipality.vr_code,
            vr_name=municipality.vr_name,
            ggd_code=municipality.ggd_code,
            ggd_name=municipality.ggd_name,
            police_unit=municipality.police_unit,
            police_unit_name=municipality.police_unit_name,
            vt_desk_code=municipality.vt_desk_code,
            vt_desk_name=municipality.vt_desk_name,
            exact=exact,
            distance_m=distance_m,
        )
