"""The geofence engine of one process, kept in step with the stored measures.

Every change of a measure raises the catalogue version in the same transaction. `refresh()`
(called by the zone pipeline step once per batch, on the ingest thread, so the engine is only
ever touched by that thread and a batch sees one set of measures) reads the version at most
every `poll_s` seconds and reloads the engine when it changed; `mark_changed()` (called by the
API after a commit in this process) makes the next `refresh()` reload at once. The engine keeps
its states by measure id across reloads.

A reload reads every active measure's id and version, and the rows of only those whose version
it does not hold (every change of a measure raises its version too); the engine compiles again
only the measures that differ. At 10,000 measures a reload after one change holds the fix lane
for milliseconds, where reading and compiling them all took hundreds.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from geofences import Engine, GeofenceConfig, GeofenceError, Measure
from backend.measures import repository

log = logging.getLogger(__name__)


class LiveMeasures:
    def __init__(
        self,
        sessions: sessionmaker[Session],
        config: GeofenceConfig,
        poll_s: float = 2.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._sessions = sessions
        self.config = config
        self.engine = Engine((), config)
        self._poll_s = poll_s
        self._clock = clock
        self._next_poll = float("-inf")
        self._dirty = True
        self.version: int | None = None  # catalogue version loaded (None: not yet)
        self._held: dict[str, tuple[int, Measure]] = {}  # id -> (version, measure) loaded
        self.reloads = 0

    def mark_changed(self) -> None:
        """A measure changed in this process: reload on the next `refresh()`."""
        self._dirty = True

    def refresh(self) -> bool:
        """Reload the engine if the measures changed. Cheap when nothing is due. On a database
        error the engine keeps the measures it has and the next poll tries again."""
        now = self._clock()
        if not self._dirty and now < self._next_poll:
            return False
        self._next_poll = now + self._poll_s
        try:
            with self._sessions() as session:
                version = repository.catalog_version(session)
                if not self._dirty and version == self.version:
                    return False
                self._dirty = False
                stamps = repository.active_versions(session)
                stale = [mid for mid, v in stamps.items()
                         if mid not in self._held or self._held[mid][0] != v]
                fresh = repository.load_active(
                    session, stale if len(stale) < len(stamps) else None)
        except SQLAlchemyError as exc:
            log.error("measures not reloaded (%s); keeping %d", type(exc).__name__,
                      len(self.engine.index))
            return False
        # A row changed since its version was read comes with its newer version; one
        # deactivated meanwhile is left out; one added meanwhile comes with the next poll (the
        # catalogue version read first is older than it).
        held = {mid: self._held[mid] for mid in stamps
                if mid in self._held and mid not in fresh and self._held[mid][0] == stamps[mid]}
        held.update(fresh)
        try:
            # A measure that cannot be compiled (stored before a rule or the CRS changed) is
            # left out, by id in the log: new and revoked measures still take effect.
            self.engine.reload([m for _, m in held.values()], skip_invalid=True)
        except GeofenceError as exc:
            log.error("measures not reloaded (%s); keeping %d", exc.code, len(self.engine.index))
            return False
        for problem in self.engine.index.skipped:
            log.error("measure not loaded: %s (%s)", problem.path.split(":")[0], problem.code)
        self._held = held
        self.version = version
        self.reloads += 1
        log.info("measures loaded count=%d version=%d read=%d", len(held), version, len(fresh))
        return True
