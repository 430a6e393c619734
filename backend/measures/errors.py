"""Errors of the measures domain; mapped to HTTP in `backend.api.errors`.

    MeasureError
    ├── MeasureNotFound     no such measure in this case (404)
    ├── MeasureConflict     the id is taken (409)
    └── MeasureRejected     the measure breaks a rule; `problems` lists every reason (422)
        └── HomeRejected    the offender's home would lie too close to a measure standing;
                            `problems` names each such measure (422)
"""

from __future__ import annotations

from geofences import Problem


class MeasureError(Exception):
    pass


class MeasureNotFound(MeasureError):
    pass


class MeasureConflict(MeasureError):
    pass


class MeasureRejected(MeasureError):
    """Carries every `geofences.Problem` found, so one 422 says every reason at once."""

    def __init__(self, problems: list[Problem] | tuple[Problem, ...]) -> None:
        self.problems: tuple[Problem, ...] = tuple(problems)
        super().__init__("; ".join(f"{p.path}: {p.message}" for p in self.problems))


class HomeRejected(MeasureRejected):
    """The home to register is refused for the measures it meets, as a measure is refused for
    the home: one 422 with a problem per measure (`geofences.home_problems`)."""
