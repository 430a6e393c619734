"""A small world for scope tests: two cases in two regions, each with an alert (a panic: the
police were told of it), devices, pings."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backend.alerts.models import Alert
from backend.cases.models import Case
from backend.devices.models import Device, Ping


@dataclass
class World:
    rotterdam_case: uuid.UUID
    amsterdam_case: uuid.UUID
    rotterdam_alert: uuid.UUID
    amsterdam_alert: uuid.UUID
    closed_alert: uuid.UUID


def build(stack) -> World:
    now = datetime.now(UTC)
    with stack.runtime.sessions.begin() as s:
        rdam = Case(reference="C-RDAM", home_police_unit="RE07", home_vr_code="VR17")
        adam = Case(reference="C-ADAM", home_police_unit="RE05", home_vr_code="VR13")
        s.add_all([rdam, adam])
        s.flush()
        s.add_all([Device(id="vic-rdam", case_id=rdam.id, role="victim"),
                   Device(id="off-rdam", case_id=rdam.id, role="offender"),
                   Device(id="vic-adam", case_id=adam.id, role="victim")])
        s.flush()
        s.add_all([
            Ping(device_id="vic-rdam", fix_time=now - timedelta(minutes=20 - i),
                 received_at=now, lat=51.92 + i / 1000, lon=4.46, acc=10)
            for i in range(3)
        ] + [Ping(device_id="off-rdam", fix_time=now - timedelta(minutes=1), received_at=now,
                  lat=51.93, lon=4.47, acc=20)])
        ids = {}
        for key, case, unit, vr, state, lat in (
            ("rotterdam", rdam, "RE07", "VR17", "new", 51.9244),
            ("amsterdam", adam, "RE05", "VR13", "new", 52.3731),
            ("closed", adam, "RE05", "VR13", "resolved", 52.3731),
        ):
            alert = Alert(case_id=case.id, device_id="vic-adam" if case is adam else "vic-rdam",
                          message_id=f"m-{key}", type="panic", priority="P1", state=state,
                          raised_at=now - timedelta(minutes=10), lat=lat, lon=4.5, acc=9,
                          fix_time=now - timedelta(minutes=10), location_source="alarm",
                          police_unit=unit, told_police=True, region={"vr_code": vr},
                          flags=[],
                          closed_at=now - timedelta(minutes=5) if state == "resolved" else None)
            s.add(alert)
            s.flush()
            ids[key] = alert.id
    return World(rdam.id, adam.id, ids["rotterdam"], ids["amsterdam"], ids["closed"])
