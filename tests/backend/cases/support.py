"""A case with named contacts and two devices, made over the API (custody tests)."""

from __future__ import annotations

import uuid

from backend.devices.models import Device


def case_with_devices(stack) -> str:
    """A case in custody with police, 3RO and OM contacts, a victim device `cr-victim` and an
    offender device `cr-offender`; returns its id."""
    api = stack.api()
    case_id = api.post(
        "/api/v1/cases",
        json={
            "reference": f"CR-{uuid.uuid4().hex[:6]}",
            "home_police_unit": "RE07",
            "home_vt_desk": "VT4607",
            "custody_status": "in_custody",
        },
    ).json()["id"]
    for org in ("police", "three_ro", "om"):
        api.post(
            f"/api/v1/cases/{case_id}/contacts",
            json={"organisation": org, "name": f"{org} contact", "phone": "0101234567"},
        )
    with stack.runtime.sessions.begin() as s:
        s.add(Device(id="cr-victim", case_id=uuid.UUID(case_id), role="victim"))
        s.add(Device(id="cr-offender", case_id=uuid.UUID(case_id), role="offender"))
    return case_id
