"""Fast look-up of registered devices for the ingest path.

The directory holds every registered device in memory (one query loads them all), so a look-up
is a dict access. A device registered after the last load is read on its first message (one
query per batch for all such ids, `prefetch`); an unknown id is remembered as unknown for a
short while, so a flood from an unregistered device cannot hammer the database. So is an unknown
OwnTracks (user, device) pair, which a signed-in OwnTracks user can make up at will (the broker
lets a user publish under any device name): that memory keeps at most `MISS_MAX` names, and
drops those whose while is over as new ones come, so made-up names cannot fill it. A background
refresh (`start_refresh`) reads the change counter that every process raises after changing
devices or cases every `check_s` seconds: when it moved by raises that named their cases, it
reads the devices of those cases again; after any other move, and in any case every `refresh_s`
seconds (changes made outside Schildwacht), it reloads the whole directory. So a change made by
another process (a deactivated device, a case put in exercise) is seen within about a second,
and costs a query of a few rows: a full load of 150,000 devices is a second of CPU or more that
an alarm in the same process would share. While the counter cannot be read (Redis away), a
change made elsewhere could not be counted either: the first read that succeeds again counts as
a move of everything (`backend.cases.changes.ChangeReader`, the rule the case snapshots follow
too), so such a change is seen once Redis answers, not at the next full reload. `invalidate` and
`forget_cases` make a change immediate in this process. An alarm is not refused on the
directory's word alone: the pipeline reads an inactive or unknown device's row again
(`reread`) before it refuses its alarm, as a device re-activated or registered a moment ago (or
while Redis is away) is not in the directory yet.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import Select, select
from sqlalchemy.orm import Session, sessionmaker

from backend.cases.changes import ChangeCounter, ChangeReader
from backend.cases.models import Case
from backend.devices.models import Device

log = logging.getLogger(__name__)

RETRY_AFTER_S = 10.0  # after a failed refresh (database away), before the next try
LOAD_CHUNK = 1_000  # rows per fetch of a full load
MISS_MAX = 10_000  # unknown ids and OwnTracks pairs remembered at most


@dataclass(frozen=True, slots=True)
class DeviceInfo:
    id: str
    case_id: uuid.UUID
    role: str  # victim | offender
    active: bool
    report_interval_s: int
    case_reference: str
    home_police_unit: str | None
    exercise: bool


class DeviceLookup(Protocol):
    """What the pipeline needs of the directory (tests use a dict-backed fake)."""

    def get(self, device_id: str) -> DeviceInfo | None: ...
    def by_owntracks(self, user: str, device: str) -> DeviceInfo | None: ...
    def reread(self, device_id: str) -> DeviceInfo | None: ...


class DeviceDirectory:
    def __init__(
        self, session_factory: sessionmaker[Session], refresh_s: float = 30.0,
        miss_ttl_s: float = 2.0, changes: ChangeCounter | None = None, check_s: float = 1.0,
        miss_max: int = MISS_MAX,
    ) -> None:
        self._sessions = session_factory
        self._refresh_s = refresh_s
        self._changes = ChangeReader(changes) if changes is not None else None
        self._check_s = check_s if changes is not None else refresh_s
        self._miss_ttl = miss_ttl_s
        self._miss_max = miss_max
        self._by_id: dict[str, DeviceInfo] = {}
        self._by_owntracks: dict[tuple[str, str], str] = {}
        # Id (or "owntracks:user/device") -> monotonic time until which it is unknown, in the
        # order of those times (each written last, with the same while): `_forget_misses`.
        self._unknown: dict[str, float] = {}
        self._loaded = False
        self._loaded_at = float("-inf")  # monotonic time of the last full load
        self._reload_owed = False  # the counter moved, and the reload after it failed
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._on_reload: Callable[[], None] | None = None

    # -- look-ups -------------------------------------------------------------------------------
    def get(self, device_id: str) -> DeviceInfo | None:
        info = self._by_id.get(device_id)
        if info is not None:
            return info
        if not self._loaded:
            self.load_all()
            return self.get(device_id)
        if self._unknown.get(device_id, 0.0) > time.monotonic():
            return None
        self.prefetch([device_id])
        return self._by_id.get(device_id)

    def by_owntracks(self, user: str, device: str) -> DeviceInfo | None:
        if not self._loaded:
            self.load_all()
        device_id = self._by_owntracks.get((user, device))
        if device_id is not None:
            return self.get(device_id)
        key = f"owntracks:{user}/{device}"
        if self._unknown.get(key, 0.0) > time.monotonic():
            return None
        rows, pairs = self._query_with_pairs(
            _DEVICES.where(Device.owntracks_user == user, Device.owntracks_device == device)
        )
        self._remember(rows, [key] if not rows else [], pairs)
        return rows[0] if rows else None

    def reread(self, device_id: str) -> DeviceInfo | None:
        """The device as its row is now, whatever the directory holds, and its entry so
        replaced (remembered unknown, without a row). One query: for the rare message that the
        directory's word would refuse, an alarm of a device it holds inactive or does not
        know, which a change not seen here yet may have made active (re-activated, registered
        a moment ago, or while the change counter could not be read). The database away
        raises: the caller decides (an alarm waits for it, never refused on a guess)."""
        rows, pairs = self._query_with_pairs(_DEVICES.where(Device.id == device_id))
        self._remember(rows, [] if rows else [device_id], pairs)
        return rows[0] if rows else None

    def remembered_unknown(self) -> int:
        """How many unknown ids and OwnTracks pairs it remembers now (at most `miss_max`)."""
        return len(self._unknown)

    def first(self, role: str) -> DeviceInfo | None:
        """An active device of this role, any one (None when the directory holds none)."""
        if not self._loaded:
            self.load_all()
        with self._lock:
            return next((d for d in self._by_id.values() if d.role == role and d.active), None)

    def prefetch(self, device_ids: list[str]) -> None:
        """Read, in one query, the devices of a batch that the directory does not know yet."""
        now = time.monotonic()
        wanted = sorted({
            d for d in device_ids
            if d not in self._by_id and self._unknown.get(d, 0.0) <= now
        })
        if not wanted:
            return
        rows, pairs = self._query_with_pairs(_DEVICES.where(Device.id.in_(wanted)))
        found = {r.id for r in rows}
        self._remember(rows, [d for d in wanted if d not in found], pairs)

    # -- loading --------------------------------------------------------------------------------
    def load_all(self) -> int:
        if self._changes is not None:
            # Read before loading: a change made meanwhile moves it again; one that cannot be
            # read now makes the next good read a move.
            self._changes.moved()
        loaded_at = time.monotonic()
        by_id, pairs = self._load_every_device()
        with self._lock:
            self._by_id = by_id
            self._by_owntracks = pairs
            self._loaded = True
            self._loaded_at = loaded_at
        return len(by_id)

    def invalidate(self, device_id: str | None = None) -> None:
        """Forget one device (or all): the next look-up reads it again."""
        with self._lock:
            if device_id is None:
                self._loaded = False
                self._by_id = {}
                self._by_owntracks = {}
                self._unknown = {}
                return
            self._by_id.pop(device_id, None)
            self._unknown.pop(device_id, None)
            self._by_owntracks = {k: v for k, v in self._by_owntracks.items() if v != device_id}
            self._unknown = {k: v for k, v in self._unknown.items()
                             if not k.startswith("owntracks:")}

    def forget_cases(self, case_ids: Collection[uuid.UUID]) -> None:
        """Forget the devices of these cases: the next look-up of each reads it again."""
        with self._lock:
            gone = [d for d, info in self._by_id.items() if info.case_id in case_ids]
        for device_id in gone:
            self.invalidate(device_id)

    def start_refresh(self, on_reload: Callable[[], None] | None = None) -> None:
        """Refresh in a thread of its own; `on_reload` is called after each reload."""
        self._on_reload = on_reload
        if self._thread is None:
            self._thread = threading.Thread(target=self._refresh_loop, name="directory",
                                            daemon=True)
            self._thread.start()

    def stop_refresh(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def load_cases(self, case_ids: Collection[uuid.UUID]) -> int:
        """Read the devices of these cases again (`LOAD_CHUNK` cases a query). A device never
        leaves its case and is never deleted, so this is every entry they change."""
        wanted = sorted(case_ids)
        count = 0
        for i in range(0, len(wanted), LOAD_CHUNK):
            rows, pairs = self._query_with_pairs(
                _DEVICES.where(Device.case_id.in_(wanted[i:i + LOAD_CHUNK])))
            self._remember(rows, [], pairs)
            count += len(rows)
        return count

    def refresh_once(self) -> bool:
        """One pass of the background refresh: read the devices of the cases the change counter
        names again; reload every device when it moved otherwise, or could not be read and now
        can (a change made while Redis was away could not move it), or when the last load is
        `refresh_s` old. True when it read anything; a failed read raises, and the next pass
        reloads every device."""
        with self._lock:  # the unknown names of a flood that stopped: not kept for ever
            self._forget_misses(time.monotonic())
        moves = self._changes.read() if self._changes is not None else None
        everything = self._reload_owed or (moves is not None and moves.everything)
        due = time.monotonic() - self._loaded_at >= self._refresh_s
        cases = moves.cases if moves is not None and not (everything or due) else frozenset()
        if not (everything or due or cases):
            return False
        self._reload_owed = True  # until the read below succeeds: the move is taken
        count = self.load_cases(cases) if cases else self.load_all()
        self._reload_owed = False
        if self._on_reload is not None:
            self._on_reload()
        if cases:
            log.info("cases changed: %d devices of %d cases read again", count, len(cases))
        elif everything:
            log.info("devices or cases changed: %d devices reloaded", count)
        return True

    def _refresh_loop(self) -> None:
        while not self._stop.wait(self._check_s):
            try:
                self.refresh_once()
            except Exception:  # noqa: BLE001 - keep serving the last good directory
                log.exception("directory refresh failed; next try in %.0f s", RETRY_AFTER_S)
                self._stop.wait(RETRY_AFTER_S)

    def _remember(
        self, rows: list[DeviceInfo], unknown: list[str], pairs: dict[tuple[str, str], str]
    ) -> None:
        until = time.monotonic() + self._miss_ttl
        with self._lock:
            for info in rows:
                self._by_id[info.id] = info
                self._unknown.pop(info.id, None)
            for key in unknown:
                self._unknown.pop(key, None)  # to the end: the order stays that of the times
                self._unknown[key] = until
            self._by_owntracks.update(pairs)
            self._forget_misses(until - self._miss_ttl)

    def _forget_misses(self, now: float) -> None:
        """Drop the unknown names whose while is over, and the oldest beyond `miss_max`. The
        oldest come first (`_remember`), so this stops at the first one it keeps: a look-up
        of a known device is not slowed, and a flood of made-up names costs each one step.
        Called with the lock held."""
        unknown = self._unknown
        while unknown:
            key = next(iter(unknown))
            if unknown[key] > now and len(unknown) <= self._miss_max:
                return
            del unknown[key]

    def _load_every_device(self) -> tuple[dict[str, DeviceInfo], dict[tuple[str, str], str]]:
        """Every device, loaded so that an alarm in the same process is not held up: the rows
        come `LOAD_CHUNK` at a time (one fetch of 150,000 held the interpreter 30-50 ms at
        once), and a device that did not change keeps its entry (freeing every old entry at
        once held it 10-15 ms). A reload then shares the interpreter with an alarm at every
        switch interval (`python -m loadtests.directory_reload`; docs/benchmarks.md)."""
        by_id: dict[str, DeviceInfo] = {}
        pairs: dict[tuple[str, str], str] = {}
        before = self._by_id
        with self._sessions() as session:
            result = session.execute(_DEVICES.execution_options(yield_per=LOAD_CHUNK))
            for part in result.partitions():
                for r in part:
                    info = _info(r)
                    kept = before.get(info.id)
                    by_id[info.id] = kept if kept == info else info
                    if r.owntracks_user is not None and r.owntracks_device is not None:
                        pairs[(r.owntracks_user, r.owntracks_device)] = r.id
                time.sleep(0)  # let a waiting thread (an alarm) run now
        return by_id, pairs

    def _query_with_pairs(
        self, query: Select
    ) -> tuple[list[DeviceInfo], dict[tuple[str, str], str]]:
        """The devices the query selects, and the OwnTracks (user, device) pairs among them:
        one round trip."""
        devices: list[DeviceInfo] = []
        pairs: dict[tuple[str, str], str] = {}
        with self._sessions() as session:
            for r in session.execute(query):
                devices.append(_info(r))
                if r.owntracks_user is not None and r.owntracks_device is not None:
                    pairs[(r.owntracks_user, r.owntracks_device)] = r.id
        return devices, pairs


def _info(r) -> DeviceInfo:
    return DeviceInfo(
        id=r.id, case_id=r.case_id, role=r.role, active=r.active,
        report_interval_s=r.report_interval_s, case_reference=r.reference,
        home_police_unit=r.home_police_unit, exercise=r.exercise,
    )


_DEVICES = select(
    Device.id, Device.case_id, Device.role, Device.active, Device.report_interval_s,
    Case.reference, Case.home_police_unit, Case.exercise, Device.owntracks_user,
    Device.owntracks_device,
).join(Case, Case.id == Device.case_id)
