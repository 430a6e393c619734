"""What the alarm path needs to know of a case, read once and kept.

Raising an alert needs the case's routing facts (home region, risk, custody, contacts, victim
devices), its context for the alert document and the roles of its devices. Reading them costs
one query; a snapshot makes that once per case every `ttl_s` seconds instead of once per
alert. An alarm worker does better: it loads every case before it takes traffic and keeps the
snapshots until a change counter in Redis moves (`backend.cases.changes`; read by
`SnapshotWatch` about once a second), which every process raises after it changed a case
(`CaseSnapshots.changed`, naming the cases: the watch reads only those again, and every case
after a raise that named none, and every `refresh_s` in any case). A change made through this
process's API is seen at once; one made by another process within a second, or within `ttl_s`
while the counter cannot be read; one made by hand within `refresh_s`.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import redis

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload, sessionmaker

from backend.cases.changes import NOTHING, ChangeCounter, ChangeReader, Moves
from backend.cases.facts import facts_of
from backend.cases.models import Case, CaseContact
from backend.devices.models import Device
from backend.periodic import Periodic
from backend.routing import CaseFacts

log = logging.getLogger(__name__)

LOAD_CHUNK = 1_000  # cases per query of a full load


@dataclass(frozen=True)
class CaseSnapshot:
    facts: CaseFacts
    context: dict[str, Any]  # the alert document's `case`
    home_police_unit: str | None
    home_vr_code: str | None
    device_roles: dict[str, str]
    # A case of an exercise: every alert of it is a drill, whatever raised it.
    exercise: bool = False


def case_context(case: Case) -> dict[str, Any]:
    """The case as the alert document carries it: no names of victim or offender."""
    return {
        "id": str(case.id),
        "reference": case.reference,
        "risk_level": case.risk_level,
        "custody_status": case.custody_status,
        "home_vr_code": case.home_vr_code,  # where an alert without a position is routed
        "contacts": [contact_card(c) for c in case.contacts],
        "measures": [],
    }


def contact_card(contact: CaseContact) -> dict[str, Any]:
    """A case contact as documents and the API show it."""
    return {
        "id": str(contact.id),
        "organisation": contact.organisation,
        "name": contact.name,
        "phone": contact.phone,
        "reachability": contact.reachability,
    }


class CaseSnapshots:
    """Snapshots by case id. Without a change counter each lives `ttl_s` seconds. With one
    (`watch` called every second or so), a snapshot lives until the counter moves: alarms, rare
    for any one case, find their case in memory instead of paying a query each time. Should the
    counter be unreadable, snapshots fall back to living `ttl_s` seconds: a change made
    elsewhere is never seen later than that."""

    def __init__(self, ttl_s: float = 5.0, changes: ChangeCounter | None = None) -> None:
        self._ttl = ttl_s
        self._changes = changes
        self._cache: dict[uuid.UUID, tuple[float, CaseSnapshot]] = {}  # case -> (loaded, ...)
        self._lock = threading.Lock()
        self._reader = ChangeReader(changes) if changes is not None else None
        self._bump_owed = False  # this process changed cases while the counter was away
        self._valid_since = float("-inf")  # snapshots loaded before this are stale
        self._confirmed = float("-inf")  # when the counter last read unchanged

    def get(self, session: Session, case_id: uuid.UUID) -> CaseSnapshot | None:
        hit = self._cache.get(case_id)
        if hit is not None and self._fresh(hit[0]):
            return hit[1]
        loaded_at = time.monotonic()
        # One round trip: the case, its contacts (joined eagerly) and one row per device.
        rows = session.execute(
            _SNAPSHOT.where(Case.id == case_id)
        ).unique().all()
        if not rows:
            self.forget(case_id)  # deleted: its stale snapshot goes too
            return None
        snapshot = _snapshot(rows[0][0], [r for r in rows if r.id is not None])
        with self._lock:
            self._cache[case_id] = (loaded_at, snapshot)
        return snapshot

    def load_all(self, session: Session) -> int:
        """Snapshots of every case (a worker calls it before taking traffic, and after a
        change). `LOAD_CHUNK` cases per query, each chunk's rows and objects freed before the
        next, and each snapshot replaced on its own: the alarm worker holds this while it
        raises alarms, and at 150,000 cases one query of them all held the interpreter for
        up to 230 ms at once, freeing what it had read 170 ms, dropping the old snapshots 100
        ms (`python -m loadtests.directory_reload --what cases`). A case deleted since the
        last load loses its snapshot. What `session` held is expunged."""
        loaded_at = time.monotonic()
        count = 0
        last: uuid.UUID | None = None
        while True:
            chunk = select(Case.id).order_by(Case.id).limit(LOAD_CHUNK)
            if last is not None:
                chunk = chunk.where(Case.id > last)
            loaded = self._load_chunk(session, Case.id.in_(chunk), loaded_at)
            if not loaded:
                break
            count += len(loaded)
            last = max(loaded)
        # Not loaded now: deleted. (Neither a set of the ids loaded nor a list of the cache's
        # items: 150,000 objects made for it and freed at once held the interpreter 16-30 ms.)
        with self._lock:
            ids, held = list(self._cache), list(self._cache.values())
        for case_id in [c for c, (at, _) in zip(ids, held, strict=True) if at < loaded_at]:
            self.forget(case_id)
        return count

    def load_cases(self, session: Session, case_ids: Collection[uuid.UUID]) -> int:
        """Snapshots of these cases, read again (`LOAD_CHUNK` a query); one deleted loses its
        snapshot. What `session` held is expunged."""
        loaded_at = time.monotonic()
        wanted = sorted(case_ids)
        count = 0
        for i in range(0, len(wanted), LOAD_CHUNK):
            part = wanted[i:i + LOAD_CHUNK]
            loaded = self._load_chunk(session, Case.id.in_(part), loaded_at)
            for case_id in set(part) - set(loaded):
                self.forget(case_id)
            count += len(loaded)
        return count

    def _load_chunk(self, session: Session, which: Any, loaded_at: float) -> list[uuid.UUID]:
        """Snapshots of the cases `which` selects, kept as loaded at `loaded_at`; their ids.
        The chunk's rows and objects are freed before it returns."""
        by_case: dict[uuid.UUID, tuple[Case, list[Any]]] = {}
        for row in session.execute(_SNAPSHOT.where(which)).unique():
            case, devices = by_case.setdefault(row[0].id, (row[0], []))
            if row.id is not None:
                devices.append(row)
        snapshots = [(case_id, _snapshot(case, devices))
                     for case_id, (case, devices) in by_case.items()]
        with self._lock:
            for case_id, snapshot in snapshots:
                self._cache[case_id] = (loaded_at, snapshot)
        loaded = list(by_case)
        del by_case, snapshots
        session.expunge_all()  # this chunk's cases are freed now, a chunk at a time
        time.sleep(0)  # let a waiting thread (an alarm) run now
        return loaded

    def _fresh(self, loaded_at: float) -> bool:
        if loaded_at < self._valid_since:
            return False
        now = time.monotonic()
        return loaded_at + self._ttl > now or self._confirmed + self._ttl > now

    def watch(self) -> Moves:
        """Read the change counter: the snapshots of the cases it names are dropped, every
        snapshot made stale when it moved otherwise. What moved (NOTHING when unreadable)."""
        if self._changes is None or self._reader is None:
            return NOTHING
        self.pay_owed()  # a change made here while Redis was away
        # Unreadable: snapshots age out after ttl_s meanwhile, and the next good read counts
        # as a move (another process may have changed a case without raising the counter).
        moves = self._reader.read()
        if moves is None:
            return NOTHING
        now = time.monotonic()
        if moves.everything:
            self._valid_since = now  # every snapshot loaded before is stale from now
        for case_id in moves.cases:
            self.forget(case_id)
        self._confirmed = now
        return moves

    def pay_owed(self) -> None:
        """Raise the counter for a change this process made while it could not be raised
        (called by `watch`, and when Redis answers again: the API process watches nothing)."""
        if not self._bump_owed or self._changes is None:
            return
        self._bump_owed = False  # a change failing meanwhile owes it again
        try:
            self._changes.bump()
        except redis.RedisError:
            self._bump_owed = True

    def forget(self, case_id: uuid.UUID | None = None) -> None:
        """Drop one case's snapshot; without a case, make every snapshot stale (each is
        replaced as it is read or reloaded: dropping 150,000 at once held the interpreter
        100 ms)."""
        if case_id is None:
            self._valid_since = time.monotonic()
            return
        with self._lock:
            self._cache.pop(case_id, None)

    def changed(self, case_ids: Collection[uuid.UUID] | None = None) -> None:
        """This process changed these cases (None: not known which): drop their snapshots and
        tell the others."""
        if case_ids is None:
            self.forget()
        for case_id in case_ids or ():
            self.forget(case_id)
        if self._changes is not None:
            try:
                self._changes.bump(case_ids)
            except redis.RedisError:
                self._bump_owed = True  # raised by `pay_owed` once Redis answers
                log.warning("case change counter unavailable: raised when Redis answers again")


_SNAPSHOT = (
    select(Case, Device.id, Device.role, Device.active)
    .options(joinedload(Case.contacts))
    .outerjoin(Device, Device.case_id == Case.id)
)


def _snapshot(case: Case, devices: list[Any]) -> CaseSnapshot:
    return CaseSnapshot(
        facts=facts_of(case, tuple(d.id for d in devices if d.role == "victim" and d.active)),
        context=case_context(case),
        home_police_unit=case.home_police_unit,
        home_vr_code=case.home_vr_code,
        device_roles={d.id: d.role for d in devices},
        exercise=bool(case.exercise),
    )


class SnapshotWatch(Periodic):
    """Reads the change counter every `interval_s`; after a change it reads the cases changed
    again (every case, when the raises did not name them) in this thread, so alarms keep
    finding their case in memory. Every `refresh_s` it reads every case again in any case, as
    the device directory does: a case changed outside Schildwacht (by hand, in an incident)
    moves no counter, and its snapshot would route alarms the old way until a restart."""

    name = "case-snapshots"

    def __init__(self, snapshots: CaseSnapshots, sessions: sessionmaker[Session],
                 interval_s: float = 1.0, on_reload: Callable[[], None] | None = None,
                 refresh_s: float = 300.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._snapshots = snapshots
        self._sessions = sessions
        self.interval_s = interval_s
        self._on_reload = on_reload  # called after each reload that follows a change
        self._refresh_s = refresh_s
        self._clock = clock
        self._loaded_at = float("-inf")  # when every case was last read

    def load(self) -> int:
        """Read the counter, then load every case (the order matters: a change made while
        loading moves the counter after the read, so the next pass reloads)."""
        self._snapshots.watch()
        self._loaded_at = self._clock()
        with self._sessions() as session:
            return self._snapshots.load_all(session)

    def run_once(self) -> None:
        moves = self._snapshots.watch()
        if moves.everything or self._clock() - self._loaded_at >= self._refresh_s:
            count = self.load()
            if moves.everything:
                log.info("cases changed: %d case snapshots reloaded", count)
        elif moves.cases:
            with self._sessions() as session:
                count = self._snapshots.load_cases(session, moves.cases)
            log.info("cases changed: %d of %d case snapshots read again", count,
                     len(moves.cases))
        else:
            return
        if self._on_reload is not None:
            self._on_reload()
