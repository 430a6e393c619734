"""The case API: parties, directors, custody, named contacts; validation with clear messages;
the contacts and recipients in the alert document."""

from __future__ import annotations

import time

import orjson

from device_protocol import Alarm, codec
from tests.support.mqtt import publish

CASE = {
    "reference": "ZWD-2026-001",
    "home_police_unit": "RE07",
    "home_vr_code": "VR17",
    "home_vt_desk": "VT4607",
    "victim_ref": "V-8812",
    "offender_ref": "D-4410",
    "process_director": "pd-rotterdam-3",
    "case_director": "cd-rr-17",
    "risk_level": "high",
    "custody_status": "in_custody",
    "safety_plan": "Veilige route naar werk; buren ingelicht.",
}


def test_case_crud_and_contacts(stack):
    api = stack.api()
    r = api.post("/api/v1/cases", json=CASE)
    assert r.status_code == 201, r.text
    case = r.json()
    assert case["victim_ref"] == "V-8812" and case["case_director"] == "cd-rr-17"
    assert case["contacts"] == []
    case_id = case["id"]

    r = api.post(
        f"/api/v1/cases/{case_id}/contacts",
        json={
            "organisation": "3ro",
            "name": "J. de Vries",
            "phone": "+31 10 123 4567",
            "reachability": "ma-vr 08-17",
        },
    )
    assert r.status_code == 201, r.text
    contact = r.json()
    assert contact["organisation"] == "three_ro"
    again = api.post(
        f"/api/v1/cases/{case_id}/contacts",
        json={"organisation": "three_ro", "name": "X", "phone": "0612345678"},
    )
    assert again.status_code == 409 and "three_ro" in again.json()["detail"]
    for org in ("police", "veilig_thuis", "vrouwenopvang", "om"):
        assert (
            api.post(
                f"/api/v1/cases/{case_id}/contacts",
                json={
                    "organisation": org,
                    "name": f"{org} contact",
                    "phone": "0101234567",
                },
            ).status_code
            == 201
        )
    r = api.patch(
        f"/api/v1/cases/{case_id}/contacts/{contact['id']}",
        json={"phone": "+31 6 1234 5678"},
    )
    assert r.status_code == 200 and r.json()["phone"] == "+31 6 1234 5678"
    contacts = api.get(f"/api/v1/cases/{case_id}/contacts").json()
    assert sorted(c["organisation"] for c in contacts) == [
        "om",
        "police",
        "three_ro",
        "veilig_thuis",
        "vrouwenopvang",
    ]
    om = next(c for c in contacts if c["organisation"] == "om")
    assert api.delete(f"/api/v1/cases/{case_id}/contacts/{om['id']}").status_code == 204
    assert len(api.get(f"/api/v1/cases/{case_id}").json()["contacts"]) == 4

    r = api.patch(f"/api/v1/cases/{case_id}", json={"risk_level": "medium"})
    assert r.status_code == 200 and r.json()["risk_level"] == "medium"
    log = api.get(f"/api/v1/cases/{case_id}/log").json()
    assert [e["kind"] for e in log].count("contact") == 7
    assert log[-1]["data"]["changes"]["risk_level"] == {"from": "high", "to": "medium"}

    assert api.delete(f"/api/v1/cases/{case_id}").status_code == 204
    assert api.get(f"/api/v1/cases/{case_id}").status_code == 404


def test_validation_gives_clear_messages(stack):
    api = stack.api()
    r = api.post("/api/v1/cases", json={**CASE, "custody_status": "released"})
    assert r.status_code == 422
    assert "released_at" in r.text
    r = api.post("/api/v1/cases", json={**CASE, "victim_ref": "Jane Doe, 12-03-1990"})
    assert r.status_code == 422 and "victim_ref" in r.text
    r = api.post("/api/v1/cases", json={**CASE, "risk_level": "extreme"})
    assert r.status_code == 422 and "risk_level" in r.text
    case_id = api.post("/api/v1/cases", json=CASE).json()["id"]
    r = api.post(
        f"/api/v1/cases/{case_id}/contacts",
        json={"organisation": "gemeente", "name": "x", "phone": "0101234567"},
    )
    assert r.status_code == 422 and "organisation" in r.text
    r = api.post(
        f"/api/v1/cases/{case_id}/contacts",
        json={"organisation": "om", "name": "x", "phone": "call me"},
    )
    assert r.status_code == 422 and "phone" in r.text
    r = api.patch(
        f"/api/v1/cases/{case_id}", json={"released_at": "2026-01-01T00:00:00Z"}
    )
    assert r.status_code == 422 and "custody_status" in r.text
    assert api.post("/api/v1/cases", json=CASE).status_code == 409  # reference in use


def test_alert_document_carries_contacts_and_recipients(stack):
    api = stack.api()
    case_id = api.post("/api/v1/cases", json=CASE).json()["id"]
    api.post(
        f"/api/v1/cases/{case_id}/contacts",
        json={"organisation": "police", "name": "Wijkagent B.", "phone": "0900-8844"},
    )
    with stack.runtime.sessions.begin() as s:
        import uuid

        from backend.devices.models import Device

        s.add(Device(id="vic-doc", case_id=uuid.UUID(case_id), role="victim"))
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-doc")
    publish(
        device,
        stack.topics.alarm("vic-doc"),
        codec.encode(
            Alarm(id="d-1", kind="panic", tst=time.time(), lat=51.9244, lon=4.4690)
        ),
    )
    [(topic, payload, _)] = police.wait_for(1)
    document = orjson.loads(payload)
    assert topic == stack.topics.police_alerts("RE07")
    assert document["priority"] == "P1"
    assert document["case"]["contacts"][0]["name"] == "Wijkagent B."
    kinds = {(r["kind"], r["code"]) for r in document["recipients"]}
    assert ("police_unit", "RE07") in kinds and ("victim_device", "vic-doc") in kinds
    assert any(k == "vt_desk" for k, _ in kinds)
    police.close()
    device.disconnect()


def test_a_case_with_log_entries_of_other_parties_is_not_deleted(stack):
    """The case log is shared by every party of the case: a case director may delete a case
    whose log holds only her own entries, not one where another party wrote (409)."""
    from fastapi.testclient import TestClient

    from backend.api.app import create_app

    def client(token: str) -> TestClient:
        return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})

    director = client(stack.token("case_director"))
    desk = client(stack.token("dispatcher", {"regions": ["VR17"]}))
    body = {"reference": "ZWD-DEL-1", "home_police_unit": "RE07", "home_vr_code": "VR17"}
    shared = director.post("/api/v1/cases", json=body).json()["id"]
    own = director.post("/api/v1/cases", json={**body, "reference": "ZWD-DEL-2"}).json()["id"]
    for case_id in (shared, own):
        note = director.post(f"/api/v1/cases/{case_id}/log/notes", json={"text": "intake"})
        assert note.status_code == 201
    assert desk.post(f"/api/v1/cases/{shared}/log/notes",
                     json={"text": "melding buren"}).status_code == 201

    refused = director.delete(f"/api/v1/cases/{shared}")
    assert refused.status_code == 409 and "other parties" in refused.json()["detail"]
    log = director.get(f"/api/v1/cases/{shared}/log").json()
    assert [e["data"]["text"] for e in log] == ["intake", "melding buren"]
    assert director.delete(f"/api/v1/cases/{own}").status_code == 204
    assert director.get(f"/api/v1/cases/{own}").status_code == 404


def test_a_home_region_the_region_data_does_not_know_is_refused(stack):
    """A home unit, safety region or desk that matches its pattern but names nothing (`RE99`)
    would route the case's alerts without a position to nobody: 422, nothing stored."""
    api = stack.api()
    for field, code in (("home_police_unit", "RE99"), ("home_vr_code", "VR99"),
                        ("home_vt_desk", "VT9999")):
        r = api.post("/api/v1/cases", json={**CASE, "reference": f"SW-HOME-{field[5:9]}",
                                            field: code})
        assert r.status_code == 422 and f"{field}: {code}" in r.json()["detail"], r.text
    assert not any(c["reference"].startswith("SW-HOME-") for c in api.get("/api/v1/cases").json())
    case = api.post("/api/v1/cases", json={**CASE, "reference": "SW-HOME-OK"}).json()
    r = api.patch(f"/api/v1/cases/{case['id']}", json={"home_police_unit": "RE99"})
    assert r.status_code == 422
    assert api.get(f"/api/v1/cases/{case['id']}").json()["home_police_unit"] == "RE07"
