"""Errors of the geofence package. Each carries a short machine-readable `code`.

    GeofenceError
    ├── ConfigError                 the engine configuration or projection is unusable
    └── InvalidMeasure              a measure breaks a rule; `problems` lists every reason
        ├── InvalidField            a property is missing, of the wrong type or out of range
        ├── InvalidGeometry         not a (multi)polygon, empty, self-intersecting, ...
        ├── OutsideProjectionArea   coordinates outside the area of the metric projection
        ├── AbsurdSize              area or radius beyond what any court imposes
        └── HomeInsideZone          the zone (or its pre-alert ring), grown by the exit
                                    margin and the default accuracy, covers the offender's
                                    registered home point and no exception (e.g. a corridor)
                                    allows it

`InvalidMeasure` is raised as the class of its first problem and carries all problems, so the
API can answer with one 422 that says every reason at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# A position in a message of shapely or GEOS: "[4.405 51.905]", "(4 52)", "POINT (4.4 51.9)", or
# a bare number with a fraction or an exponent.
_POSITION = re.compile(
    r"\s*(?:[A-Z]+\s*)?[\[(][^\])]*\d[^\])]*[\])]"
    r"|[-+]?(?:\d+\.\d*|\.\d+|\d+(?:\.\d*)?[eE][-+]?\d+)"
)


def without_positions(text: str) -> str:
    """`text` (a reason given by shapely or GEOS) without the positions it names: a message
    about a measure never repeats where the measure lies."""
    return " ".join(_POSITION.sub("", text).split()).rstrip(" :,;")


class GeofenceError(ValueError):
    """Base of every error of the geofence package."""

    code = "geofence_error"


class ConfigError(GeofenceError):
    """The configuration (thresholds, CRS, time zone) is not usable."""

    code = "config_error"


@dataclass(frozen=True)
class Problem:
    """One reason why a measure is rejected: `path` points into the GeoJSON feature."""

    code: str
    path: str
    message: str

    def as_dict(self) -> dict[str, str]:
        return {"code": self.code, "path": self.path, "message": self.message}


class InvalidMeasure(GeofenceError):
    """A measure is rejected. `problems` holds every reason found."""

    code = "invalid_measure"

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in self.problems))

    @staticmethod
    def from_problems(problems: list[Problem] | tuple[Problem, ...]) -> InvalidMeasure:
        """The error of the class of the first problem, carrying all problems."""
        cls = (
            _BY_CODE.get(problems[0].code, InvalidMeasure)
            if problems
            else InvalidMeasure
        )
        return cls(problems)


class InvalidField(InvalidMeasure):
    code = "invalid_field"


class InvalidGeometry(InvalidMeasure):
    code = "invalid_geometry"


class OutsideProjectionArea(InvalidMeasure):
    code = "outside_projection_area"


class AbsurdSize(InvalidMeasure):
    code = "absurd_size"


class HomeInsideZone(InvalidMeasure):
    code = "home_inside_zone"


_BY_CODE: dict[str, type[InvalidMeasure]] = {
    cls.code: cls
    for cls in (
        InvalidField,
        InvalidGeometry,
        OutsideProjectionArea,
        AbsurdSize,
        HomeInsideZone,
    )
}
