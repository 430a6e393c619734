"""Fast, cached look-up of registered devices for the ingest path.

A hit costs a dict look-up. A miss reads the database once; unknown ids are cached briefly too, so
a flood from an unregistered device cannot hammer the database. Entries expire after `ttl_s`, so a
device registered or deactivated through the API is seen by every worker within that time;
`invalidate` makes it immediate in this process.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from backend.cases.models import Case
from backend.devices.models import Device


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


class DeviceDirectory:
    def __init__(
        self, session_factory: sessionmaker[Session], ttl_s: float = 10.0, miss_ttl_s: float = 2.0
    ) -> None:
        self._sessions = session_factory
        self._ttl = ttl_s
        self._miss_ttl = miss_ttl_s
        self._by_id: dict[str, tuple[float, DeviceInfo | None]] = {}
        self._by_owntracks: dict[tuple[str, str], tuple[float, str | None]] = {}
        self._lock = threading.Lock()

    def get(self, device_id: str) -> DeviceInfo | None:
        now = time.monotonic()
        hit = self._by_id.get(device_id)
        if hit is not None and hit[0] > now:
            return hit[1]
        info = self._load(Device.id == device_id)
        with self._lock:
            self._by_id[device_id] = (now + (self._ttl if info else self._miss_ttl), info)
        return info

    def by_owntracks(self, user: str, device: str) -> DeviceInfo | None:
        now = time.monotonic()
        hit = self._by_owntracks.get((user, device))
        if hit is not None and hit[0] > now:
            return self.get(hit[1]) if hit[1] else None
        info = self._load((Device.owntracks_user == user) & (Device.owntracks_device == device))
        with self._lock:
            self._by_owntracks[(user, device)] = (
                now + (self._ttl if info else self._miss_ttl),
                info.id if info else None,
            )
            if info:
                self._by_id[info.id] = (now + self._ttl, info)
        return info

    def invalidate(self, device_id: str | None = None) -> None:
        with self._lock:
            if device_id is None:
                self._by_id.clear()
                self._by_owntracks.clear()
            else:
                self._by_id.pop(device_id, None)
                self._by_owntracks = {k: v for k, v in self._by_owntracks.items() if v[1] != device_id}

    def _load(self, condition) -> DeviceInfo | None:
        with self._sessions() as session:
            row = session.execute(
                select(Device, Case).join(Case, Case.id == Device.case_id).where(condition)
            ).first()
        if row is None:
            return None
        device, case = row
        return DeviceInfo(
            id=device.id,
            case_id=device.case_id,
            role=device.role,
            active=device.active,
            report_interval_s=device.report_interval_s,
            case_reference=case.reference,
            home_police_unit=case.home_police_unit,
            exercise=case.exercise,
        )
