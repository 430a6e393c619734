"""A release date the server cannot compute with (the edges of the datetime range, or what can
only be a typing error) is refused with a clear 422 and changes nothing."""

from __future__ import annotations

import pytest

FAR_FUTURE = "9999-12-31T00:00:00Z"  # plus the tightening period: beyond the datetime range
FAR_PAST = "0001-01-01T00:00:00+05:00"  # in UTC: before the datetime range


def _case(api, reference: str, **fields) -> dict:
    r = api.post("/api/v1/cases", json={"reference": reference, "home_police_unit": "RE07",
                                        **fields})
    return r


@pytest.mark.parametrize("released_at", [FAR_FUTURE, FAR_PAST, "1850-06-01T00:00:00Z"])
def test_a_release_date_out_of_range_is_refused_on_create_and_update(stack, released_at):
    api = stack.api()
    r = _case(api, "REL-EDGE-1", custody_status="released", released_at=released_at)
    assert r.status_code == 422 and "released_at must lie between" in r.text

    case = _case(api, "REL-EDGE-2", custody_status="in_custody").json()
    r = api.patch(f"/api/v1/cases/{case['id']}",
                  json={"custody_status": "released", "released_at": released_at})
    assert r.status_code == 422 and "released_at must lie between" in r.text
    assert api.get(f"/api/v1/cases/{case['id']}").json()["custody_status"] == "in_custody"
    assert [c["reference"] for c in api.get("/api/v1/cases").json()] == ["REL-EDGE-2"]


def test_a_release_date_years_ahead_is_still_taken(stack):
    r = _case(stack.api(), "REL-LATER", custody_status="released",
              released_at="2031-05-01T09:00:00+02:00")
    assert r.status_code == 201, r.text
