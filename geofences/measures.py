"""Protective measures as legal objects: exclusion zones, protected places and contact bans.

Geometries are kept in WGS84 (lon, lat), as the court order and GeoJSON state them; the index
projects them to a metric CRS. Times are Unix seconds; aware datetimes are accepted and
converted, naive ones are refused (a court order's time is meaningless without a zone).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shapely.geometry import MultiPolygon, Polygon
from shapely.geometry.base import BaseGeometry

from geofences.errors import InvalidField, Problem
from geofences.timewindows import TimeWindow

MEASURE_KINDS = ("exclusion_zone", "protected_place", "contact_ban")


def to_epoch(value: Any, path: str) -> float | None:
    """None, Unix seconds, or an aware datetime -> Unix seconds (float) or None."""
    if value is None:
        return None
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise InvalidField(
                [Problem("invalid_field", path, "datetime must carry a time zone")]
            )
        return value.timestamp()
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
    ):
        return float(value)
    raise InvalidField(
        [Problem("invalid_field", path, "expected a time")]
    )


def _ids(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, str):
        value = (value,)
    try:
        ids = tuple(value)
    except TypeError:
        raise InvalidField(
            [Problem("invalid_field", path, "expected a list of device ids")]
        ) from None
    if not all(isinstance(i, str) and i for i in ids) or len(set(ids)) != len(ids):
        raise InvalidField(
            [
                Problem(
                    "invalid_field",
                    path,
                    "device ids must be distinct non-empty strings",
                )
            ]
        )
    return ids


def _in_period(tst: float, valid_from: float | None, valid_until: float | None) -> bool:
    return (valid_from is None or tst >= valid_from) and (
        valid_until is None or tst < valid_until
    )


@dataclass(frozen=True, kw_only=True)
class Exemption:
    """An exception to a measure ("uitzondering"): where (and optionally when) it does not apply.

    For example a corridor to the offender's own address, or the court building on a court date.
    `geometry` is a WGS84 Polygon or MultiPolygon.
    """

    geometry: BaseGeometry
    valid_from: float | None = None
    valid_until: float | None = None
    reason: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(
            self, "valid_from", to_epoch(self.valid_from, "exceptions.valid_from")
        )
        object.__setattr__(
            self, "valid_until", to_epoch(self.valid_until, "exceptions.valid_until")
        )
        if not isinstance(self.geometry, Polygon | MultiPolygon):
            raise InvalidField(
                [
                    Problem(
                        "invalid_geometry",
                        "exceptions.geometry",
                        "expected a Polygon or MultiPolygon",
                    )
                ]
            )
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from >= self.valid_until
        ):
            raise InvalidField(
                [
                    Problem(
                        "invalid_field",
                        "exceptions.valid_until",
                        "must be after valid_from",
                    )
                ]
            )

    def applies_at(self, tst: float) -> bool:
        return _in_period(tst, self.valid_from, self.valid_until)


@dataclass(frozen=True, kw_only=True)
class _Measure:
    """Fields shared by every measure."""

    id: str
    case_id: str
    subject_device_ids: tuple[str, ...]
    pre_alert_m: float = 0.0
    valid_from: float | None = None
    valid_until: float | None = None
    time_windows: tuple[TimeWindow, ...] = ()
    authority: str = ""
    reference: str = ""
    exceptions: tuple[Exemption, ...] = ()

    def __post_init__(self) -> None:
        problems: list[Problem] = []
        if not isinstance(self.id, str) or not self.id:
            problems.append(Problem("invalid_field", "id", "a measure needs an id"))
        if not isinstance(self.case_id, str) or not self.case_id:
            problems.append(
                Problem(
                    "invalid_field", "properties.case_id", "a measure needs a case id"
                )
            )
        object.__setattr__(
            self,
            "subject_device_ids",
            _ids(self.subject_device_ids, "properties.subject_device_ids"),
        )
        if not self.subject_device_ids:
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.subject_device_ids",
                    "at least one offender device",
                )
            )
        object.__setattr__(
            self, "valid_from", to_epoch(self.valid_from, "properties.valid_from")
        )
        object.__setattr__(
            self, "valid_until", to_epoch(self.valid_until, "properties.valid_until")
        )
        if (
            self.valid_from is not None
            and self.valid_until is not None
            and self.valid_from >= self.valid_until
        ):
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.valid_until",
                    "must be after valid_from",
                )
            )
        object.__setattr__(self, "time_windows", tuple(self.time_windows))
        object.__setattr__(self, "exceptions", tuple(self.exceptions))
        if not all(isinstance(w, TimeWindow) for w in self.time_windows):
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.time_windows",
                    "expected TimeWindow values",
                )
            )
        if not all(isinstance(e, Exemption) for e in self.exceptions):
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.exceptions",
                    "expected Exemption values",
                )
            )
        if not _finite_non_negative(self.pre_alert_m):
            problems.append(
                Problem(
                    "invalid_field", "properties.pre_alert_m", "must be a number >= 0"
                )
            )
        if problems:
            raise InvalidField(problems)

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def in_validity(self, tst: float) -> bool:
        return _in_period(tst, self.valid_from, self.valid_until)

    def ended_by(self, tst: float) -> bool:
        """Whether the validity period is over at `tst` (one still to come is not)."""
        return self.valid_until is not None and tst >= self.valid_until


def _finite_non_negative(value: Any) -> bool:
    return (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and math.isfinite(value)
        and value >= 0
    )


def _check_circle(centre: Any, radius_m: Any, path: str) -> list[Problem]:
    problems = []
    if not (
        isinstance(centre, tuple)
        and len(centre) == 2
        and all(isinstance(c, int | float) and math.isfinite(c) for c in centre)
    ):
        problems.append(
            Problem("invalid_geometry", "geometry", "centre must be a (lon, lat) pair")
        )
    if not _finite_non_negative(radius_m) or radius_m == 0:
        problems.append(
            Problem("invalid_field", path, "radius must be a number > 0 (metres)")
        )
    return problems


@dataclass(frozen=True, kw_only=True)
class ExclusionZone(_Measure):
    """Gebiedsverbod: the offender may not enter `area` (Polygon/MultiPolygon, holes allowed)
    or the circle `centre` (lon, lat) + `radius_m`. Exactly one of the two forms."""

    area: Polygon | MultiPolygon | None = None
    centre: tuple[float, float] | None = None
    radius_m: float | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.centre is not None:
            object.__setattr__(self, "centre", tuple(self.centre))
        if self.area is not None:
            if self.centre is not None or self.radius_m is not None:
                raise InvalidField(
                    [
                        Problem(
                            "invalid_geometry",
                            "geometry",
                            "either an area or a circle, not both",
                        )
                    ]
                )
            if not isinstance(self.area, Polygon | MultiPolygon):
                raise InvalidField(
                    [
                        Problem(
                            "invalid_geometry",
                            "geometry",
                            "expected a Polygon or MultiPolygon",
                        )
                    ]
                )
        else:
            problems = _check_circle(self.centre, self.radius_m, "properties.radius_m")
            if problems:
                raise InvalidField(problems)

    @property
    def kind(self) -> str:
        return "exclusion_zone"

    @property
    def is_circle(self) -> bool:
        return self.area is None


@dataclass(frozen=True, kw_only=True)
class ProtectedPlace(_Measure):
    """A place the offender must stay away from (victim's home, work, school): a circle."""

    centre: tuple[float, float]
    radius_m: float

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.centre, list):
            object.__setattr__(self, "centre", tuple(self.centre))
        problems = _check_circle(self.centre, self.radius_m, "properties.radius_m")
        if problems:
            raise InvalidField(problems)

    @property
    def kind(self) -> str:
        return "protected_place"

    @property
    def is_circle(self) -> bool:
        return True

    @property
    def area(self) -> None:
        return None


@dataclass(frozen=True, kw_only=True)
class ContactBan(_Measure):
    """Contact ban with bilateral monitoring: the offender's device(s) may not come within
    `radius_m` of the live position of any of the victim's `protected_device_ids`."""

    protected_device_ids: tuple[str, ...]
    radius_m: float

    def __post_init__(self) -> None:
        super().__post_init__()
        object.__setattr__(
            self,
            "protected_device_ids",
            _ids(self.protected_device_ids, "properties.protected_device_ids"),
        )
        problems = []
        if not self.protected_device_ids:
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.protected_device_ids",
                    "at least one victim device",
                )
            )
        if set(self.protected_device_ids) & set(self.subject_device_ids):
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.protected_device_ids",
                    "a device cannot be offender and victim",
                )
            )
        if not _finite_non_negative(self.radius_m) or self.radius_m == 0:
            problems.append(
                Problem(
                    "invalid_field",
                    "properties.radius_m",
                    "radius must be a number > 0 (metres)",
                )
            )
        if problems:
            raise InvalidField(problems)

    @property
    def kind(self) -> str:
        return "contact_ban"


Measure = ExclusionZone | ProtectedPlace | ContactBan
