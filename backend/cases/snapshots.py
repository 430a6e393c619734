"""What the alarm path needs to know of a case, read once and kept for a few seconds.

Raising an alert needs the case's routing facts (home region, risk, custody, contacts, victim
devices), its context for the alert document and the roles of its devices. Reading them costs
one query; a snapshot makes that once per case every `ttl_s` seconds instead of once per
alert. A change made through this process's API is seen at once (`forget`); one made by another
process within `ttl_s`.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, joinedload

from backend.cases.facts import facts_of
from backend.cases.models import Case
from backend.devices.models import Device
from backend.routing import CaseFacts


@dataclass(frozen=True)
class CaseSnapshot:
    facts: CaseFacts
    context: dict[str, Any]  # the alert document's `case`
    home_police_unit: str | None
    home_vr_code: str | None
    device_roles: dict[str, str]


def case_context(case: Case) -> dict[str, Any]:
    """The case as the alert document carries it: no names of victim or offender."""
    return {
        "id": str(case.id),
        "reference": case.reference,
        "risk_level": case.risk_level,
        "custody_status": case.custody_status,
        "contacts": [
            {"id": str(c.id), "organisation": c.organisation, "name": c.name, "phone": c.phone,
             "reachability": c.reachability}
            for c in case.contacts
        ],
        "measures": [],
    }


class CaseSnapshots:
    def __init__(self, ttl_s: float = 5.0) -> None:
        self._ttl = ttl_s
        self._cache: dict[uuid.UUID, tuple[float, CaseSnapshot]] = {}
        self._lock = threading.Lock()

    def get(self, session: Session, case_id: uuid.UUID) -> CaseSnapshot | None:
        hit = self._cache.get(case_id)
        if hit is not None and hit[0] > time.monotonic():
            return hit[1]
        # One round trip: the case, its contacts (joined eagerly) and one row per device.
        rows = session.execute(
            select(Case, Device.id, Device.role, Device.active)
            .options(joinedload(Case.contacts))
            .outerjoin(Device, Device.case_id == Case.id)
            .where(Case.id == case_id)
        ).unique().all()
        if not rows:
            return None
        case = rows[0][0]
        devices = [r for r in rows if r.id is not None]
        snapshot = CaseSnapshot(
            facts=facts_of(case, tuple(d.id for d in devices if d.role == "victim" and d.active)),
            context=case_context(case),
            home_police_unit=case.home_police_unit,
            home_vr_code=case.home_vr_code,
            device_roles={d.id: d.role for d in devices},
        )
        with self._lock:
            self._cache[case_id] = (time.monotonic() + self._ttl, snapshot)
        return snapshot

    def forget(self, case_id: uuid.UUID | None = None) -> None:
        with self._lock:
            if case_id is None:
                self._cache.clear()
            else:
                self._cache.pop(case_id, None)
