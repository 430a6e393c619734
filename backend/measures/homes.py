"""The offender's registered home: registered, or moved, only where no measure standing would
raise an alarm every time he comes home.

A measure imported or replaced is refused when its zone or pre-alert ring lies within exit
margin and default accuracy of the home registered (`flows.parse`). A home registered after the
measures would bring back the same false alarms (a possible breach, P1, or an approach on every
return home), so it meets the same rule the other way round (`geofences.home_problems`): every
active measure of the case not ended yet, in force or to come, is checked; a conflict refuses
the home with `HomeRejected`, naming the measures and never the home's place, and nothing is
stored.

Both ways lock the case row first (`cases.service.get(..., for_update=True)`), so a home and a
measure registered at the same moment are checked one after the other, never each against
what the other is about to replace. Runs in the caller's transaction; the caller commits."""

from __future__ import annotations

import uuid

from sqlalchemy.orm import Session

from geofences import GeofenceConfig, home_problems
from backend.cases import service as cases
from backend.measures import repository, service
from backend.measures.errors import HomeRejected


def register(
    session: Session, case_id: uuid.UUID, lon: float, lat: float, config: GeofenceConfig,
    now: float,
) -> None:
    """Register the offender's home at (lon, lat), or move it there, unless a measure of the
    case standing at `now` (Unix seconds) lies too close (`HomeRejected`, nothing stored)."""
    cases.get(session, case_id, for_update=True)
    standing = repository.load_active(session, case_id=case_id)
    problems = home_problems(
        [standing[mid][1] for mid in sorted(standing)], (lon, lat), now, config=config
    )
    if problems:
        raise HomeRejected(problems)
    service.set_home(session, case_id, lon, lat)
