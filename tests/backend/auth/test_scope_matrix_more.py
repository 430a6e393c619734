"""The role and region matrix, continued: case writes, the case log, measures, deliveries and the
police acknowledgement, for every role, in and out of scope; a case director's own cases; and
the audit entries written when measures (protected places) or an alert's position are read."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from backend.api.app import create_app
from backend.audit.models import AuditEntry
from backend.auth.models import ApiToken
from backend.auth.scoping import directs, person_id
from backend.auth.tokens import Principal, new_token, token_digest
from backend.subscriptions.models import Delivery, Subscription
from tests.backend.auth import test_scope_matrix as matrix
from tests.backend.auth.world import World

PRINCIPALS, _client = matrix.PRINCIPALS, matrix._client
world = matrix.world  # the fixture: two cases in two regions, each with an alert

WHO = sorted(PRINCIPALS)
# Who may see the Rotterdam case (C-RDAM, home VR17, alert routed to RE07 in VR17).
SEES_CASE = {"admin", "dispatcher-in", "director-in"}
CASE_WRITERS = {"admin", "director-in", "director-out"}  # by role
CASE_READERS = CASE_WRITERS | {"dispatcher-in", "dispatcher-out", "dispatcher-unscoped"}
# police: cases with an alert routed to their unit; a partner: the cases of her scope
LOG_READS = SEES_CASE | {"police-in", "partner-in"}
NOTE_WRITERS = CASE_READERS | {"partner-in", "partner-out"}  # by role
SEES_ALERT = {"admin", "dispatcher-in", "police-in", "director-in"}

PROTECTED_PLACE: dict[str, Any] = {
    "type": "Feature", "id": "home-rdam",
    "geometry": {"type": "Point", "coordinates": [4.4601, 51.9201]},
    "properties": {"kind": "protected_place", "subject_device_ids": ["off-rdam"],
                   "radius_m": 250, "pre_alert_m": 0,
                   "authority": "Rechtbank Rotterdam", "reference": "C/10/1"},
}
CONTACT_BAN: dict[str, Any] = {
    "type": "Feature", "id": "ban-rdam", "geometry": None,
    "properties": {"kind": "contact_ban", "subject_device_ids": ["off-rdam"],
                   "protected_device_ids": ["vic-rdam"], "radius_m": 500, "pre_alert_m": 0},
}


def expected(who: str, *, role_ok: set[str], in_scope: set[str], ok: int) -> int:
    """403 for a role that may not, 404 out of scope, else `ok`."""
    if who not in role_ok:
        return 403
    return ok if who in in_scope else 404


def named_client(stack, name: str, role: str, scope: dict[str, Any]) -> TestClient:
    """A client whose bearer token has its own name (principal `token:<name>`)."""
    token = new_token()
    with stack.runtime.sessions.begin() as s:
        s.add(ApiToken(name=name, role=role, scope=scope, token_sha256=token_digest(token)))
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


def audit_rows(stack, **where: Any) -> list[AuditEntry]:
    with stack.runtime.sessions() as s:
        query = select(AuditEntry).order_by(AuditEntry.id)
        for name, value in where.items():
            query = query.where(getattr(AuditEntry, name) == value)
        rows = list(s.scalars(query))
        s.expunge_all()
        return rows


def coordinate_keys(value: Any) -> set[str]:
    """Every key anywhere in `value` that would carry a position."""
    if isinstance(value, dict):
        found = {k for k in value if k in {"lat", "lon", "coordinates", "location", "geometry"}}
        return found.union(*(coordinate_keys(v) for v in value.values()))
    if isinstance(value, list):
        return set().union(*(coordinate_keys(v) for v in value))
    return set()


# -- case writes -------------------------------------------------------------------------------
@pytest.mark.parametrize("who", WHO)
def test_case_writes(stack, world: World, who: str):
    admin = stack.api()
    case = f"/api/v1/cases/{world.rotterdam_case}"
    contact = admin.post(f"{case}/contacts", json={
        "organisation": "veilig_thuis", "name": "M. de Vries", "phone": "+31 10 1234567"}).json()
    api = _client(stack, who)

    def want(ok: int) -> int:
        return expected(who, role_ok=CASE_WRITERS, in_scope=SEES_CASE, ok=ok)

    r = api.patch(case, json={"risk_level": "high"})
    assert r.status_code == want(200), r.text
    assert (admin.get(case).json()["risk_level"] == "high") is (want(200) == 200)
    r = api.post(f"{case}/contacts", json={
        "organisation": "police", "name": "Agent Bakker", "phone": "+31 10 7654321"})
    assert r.status_code == want(201), r.text
    r = api.patch(f"{case}/contacts/{contact['id']}", json={"reachability": "24/7"})
    assert r.status_code == want(200), r.text
    assert r.status_code != 200 or r.json()["reachability"] == "24/7"
    assert api.delete(f"{case}/contacts/{contact['id']}").status_code == want(204)
    organisations = {c["organisation"] for c in admin.get(f"{case}/contacts").json()}
    assert organisations == ({"police"} if want(204) == 204 else {"veilig_thuis"})
    # In scope the delete gets as far as the case's devices and alerts (409), out of it not.
    assert api.delete(case).status_code == want(409)
    assert admin.get(case).status_code == 200


def test_a_case_director_deletes_only_her_own_empty_case(stack, world: World):
    admin = stack.api()
    empty = admin.post("/api/v1/cases", json={"reference": "C-EMPTY", "home_vr_code": "VR17"})
    url = f"/api/v1/cases/{empty.json()['id']}"
    assert _client(stack, "director-in").delete(url).status_code == 404
    assert _client(stack, "dispatcher-in").delete(url).status_code == 403
    owner = named_client(stack, "cd-empty", "case_director", {"cases": ["C-EMPTY"]})
    assert owner.delete(url).status_code == 204
    assert admin.get(url).status_code == 404


# -- case log ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", WHO)
def test_case_log(stack, world: World, who: str):
    admin = stack.api()
    log = f"/api/v1/cases/{world.rotterdam_case}/log"
    assert admin.post(f"/api/v1/alerts/{world.rotterdam_alert}/acknowledge").status_code == 200
    assert admin.post(f"{log}/notes", json={"text": "Spoke to the victim."}).status_code == 201
    admin.patch(f"/api/v1/cases/{world.rotterdam_case}", json={"risk_level": "high"})
    api = _client(stack, who)
    before = len(audit_rows(stack))

    r = api.get(log)
    assert r.status_code == (404 if who not in LOG_READS else 200), r.text
    if r.status_code == 200:
        kinds = [e["kind"] for e in r.json()]
        assert "transition" in kinds
        assert ("note" in kinds) is (who != "police-in")  # notes stay with the care partners
        assert coordinate_keys([e["data"] for e in r.json()]) == set()
    verify = api.get(f"{log}/verify")
    assert verify.status_code == r.status_code
    assert verify.status_code != 200 or verify.json()["ok"] is True
    note = api.post(f"{log}/notes", json={"text": "x"})
    assert note.status_code == expected(
        who, role_ok=NOTE_WRITERS, in_scope=SEES_CASE | {"partner-in"}, ok=201)
    # The log carries no positions, so reading it is not audited as a location read.
    assert len(audit_rows(stack)) == before


def test_the_case_log_of_an_unknown_case_is_404_for_everyone(stack, world: World):
    url = f"/api/v1/cases/{uuid.uuid4()}/log"
    for who in ("admin", "dispatcher-in", "police-in", "director-in", "partner-in"):
        assert _client(stack, who).get(url).status_code == 404


# -- measures ----------------------------------------------------------------------------------
@pytest.mark.parametrize("who", WHO)
def test_measures(stack, world: World, who: str):
    admin = stack.api()
    base = f"/api/v1/cases/{world.rotterdam_case}"
    created = admin.post(f"{base}/measures", json={
        "type": "FeatureCollection", "features": [PROTECTED_PLACE, CONTACT_BAN]})
    assert created.status_code == 201, created.text
    api = _client(stack, who)
    readers = {"admin", "dispatcher-in", "dispatcher-out", "dispatcher-unscoped",
               "director-in", "director-out"}
    audited = len(audit_rows(stack, resource="measure"))

    r = api.get(f"{base}/measures")
    assert r.status_code == expected(who, role_ok=readers, in_scope=SEES_CASE, ok=200)
    if r.status_code == 200:
        assert {f["id"] for f in r.json()["features"]} == {"home-rdam", "ban-rdam"}
    r = api.get(f"{base}/measures/home-rdam")
    assert r.status_code == expected(who, role_ok=readers, in_scope=SEES_CASE, ok=200)
    reads = 2 if who in SEES_CASE else 0  # the protected place, twice; a ban has no geometry
    assert len(audit_rows(stack, resource="measure")) == audited + reads

    def write(ok: int) -> int:
        return expected(who, role_ok=CASE_WRITERS, in_scope=SEES_CASE, ok=ok)

    moved = {**PROTECTED_PLACE, "geometry": {"type": "Point", "coordinates": [4.4611, 51.9211]}}
    assert api.put(f"{base}/measures/home-rdam", json=moved).status_code == write(200)
    zone = {**PROTECTED_PLACE, "id": "school-rdam"}
    assert api.post(f"{base}/measures", json=zone).status_code == write(201)
    assert api.delete(f"{base}/measures/school-rdam").status_code == write(200)
    home = {"lat": 51.95, "lon": 4.50}
    assert api.put(f"{base}/offender-home", json=home).status_code == write(200)
    assert api.get(f"{base}/offender-home").status_code == write(200)
    stored = admin.get(f"{base}/measures/home-rdam").json()["geometry"]["coordinates"]
    assert (stored == [4.4611, 51.9211]) is (write(200) == 200)


def test_a_dispatcher_reads_a_cases_places_only_while_its_alert_is_open_or_with_a_reason(
        stack, world: World):
    """A measure's geometry says where the victim lives: a dispatcher reads it as she reads the
    victim's positions. Once the case's alert is closed, only with a reason, which the audit
    log keeps; the case director, who manages the measures, reads them as before."""
    admin = stack.api()
    base = f"/api/v1/cases/{world.rotterdam_case}"
    assert admin.post(f"{base}/measures", json={
        "type": "FeatureCollection", "features": [PROTECTED_PLACE, CONTACT_BAN]}).status_code == 201
    dispatcher = _client(stack, "dispatcher-in")
    assert dispatcher.get(f"{base}/measures").status_code == 200  # the alert is open
    assert admin.post(f"/api/v1/alerts/{world.rotterdam_alert}/resolve").status_code == 200
    audited = len(audit_rows(stack, resource="measure"))

    for url in (f"{base}/measures", f"{base}/measures/home-rdam"):
        r = dispatcher.get(url)
        assert r.status_code == 403 and "reason" in r.json()["detail"], r.text
        assert dispatcher.get(url, params={"reason": " "}).status_code == 403
    assert len(audit_rows(stack, resource="measure")) == audited  # nothing shown, none logged
    assert dispatcher.get(f"{base}/measures/ban-rdam").status_code == 200  # no place in it
    r = dispatcher.get(f"{base}/measures", params={"reason": "court order 2026/118"})
    assert r.status_code == 200
    [entry] = audit_rows(stack, resource="measure")[audited:]
    assert (entry.resource_id, entry.reason) == ("home-rdam", "court order 2026/118")
    assert _client(stack, "director-in").get(f"{base}/measures").status_code == 200


def test_reading_a_protected_place_writes_an_audit_entry(stack, world: World):
    admin = stack.api()
    base = f"/api/v1/cases/{world.rotterdam_case}"
    assert admin.post(f"{base}/measures", json={
        "type": "FeatureCollection", "features": [PROTECTED_PLACE, CONTACT_BAN]}).status_code == 201
    dispatcher = _client(stack, "dispatcher-in")
    r = dispatcher.get(f"{base}/measures/home-rdam", params={"reason": "map of the home"})
    assert r.status_code == 200 and r.json()["geometry"]["type"] == "Point"
    [entry] = [e for e in audit_rows(stack, resource="measure") if e.actor_role == "dispatcher"]
    assert (entry.resource_id, entry.case_id) == ("home-rdam", world.rotterdam_case)
    assert (entry.action, entry.reason, entry.channel) == ("read_location", "map of the home", "api")
    assert entry.on_behalf_of == "dispatcher:VR17"
    # The contact ban has no geometry: listing both audits the place only.
    dispatcher.get(f"{base}/measures")
    ids = [e.resource_id for e in audit_rows(stack, resource="measure", actor_role="dispatcher")]
    assert ids == ["home-rdam", "home-rdam"]


def test_reading_the_offender_home_writes_an_audit_entry(stack, world: World):
    base = f"/api/v1/cases/{world.rotterdam_case}"
    director = _client(stack, "director-in")
    assert director.put(f"{base}/offender-home", json={"lat": 51.95, "lon": 4.5}).status_code == 200
    assert director.get(f"{base}/offender-home", params={"reason": "check"}).json() == {
        "type": "Point", "coordinates": [4.5, 51.95]}
    rows = audit_rows(stack, resource="offender_home")
    assert [(e.actor_role, e.resource_id, e.reason) for e in rows] == [
        ("case_director", str(world.rotterdam_case), None),
        ("case_director", str(world.rotterdam_case), "check")]


# -- deliveries --------------------------------------------------------------------------------
def _deliveries(stack, world: World) -> dict[str, uuid.UUID]:
    with stack.runtime.sessions.begin() as s:
        sub = Subscription(name="politie", url="http://127.0.0.1:9/hook", secret="whsec_x")
        s.add(sub)
        s.flush()
        rows = {key: Delivery(subscription_id=sub.id, alert_id=alert, sequence=1, priority="P1",
                              format="json", body=b"{}", state="rejected", attempts=1)
                for key, alert in (("rotterdam", world.rotterdam_alert),
                                   ("amsterdam", world.amsterdam_alert))}
        s.add_all(rows.values())
        s.flush()
        return {key: row.id for key, row in rows.items()}


@pytest.mark.parametrize("who", WHO)
def test_deliveries(stack, world: World, who: str):
    ids = _deliveries(stack, world)
    api = _client(stack, who)
    log_readers = {"admin", "dispatcher-in", "dispatcher-out", "dispatcher-unscoped",
                   "police-in", "police-out"}
    r = api.get("/api/v1/deliveries")
    if who not in log_readers:
        assert r.status_code == 403
    else:
        listed = {uuid.UUID(d["id"]) for d in r.json()}
        assert (ids["rotterdam"] in listed) is (who in SEES_ALERT)
        assert (ids["amsterdam"] in listed) is (who == "admin")
        by_alert = api.get("/api/v1/deliveries", params={"alert_id": str(world.amsterdam_alert)})
        assert (by_alert.json() == []) is (who != "admin")
    detail = api.get(f"/api/v1/deliveries/{ids['rotterdam']}")
    assert detail.status_code == expected(who, role_ok=log_readers, in_scope=SEES_ALERT, ok=200)
    replayers = {"admin", "dispatcher-in", "dispatcher-out", "dispatcher-unscoped"}
    r = api.post(f"/api/v1/deliveries/{ids['rotterdam']}/replay")
    assert r.status_code == expected(who, role_ok=replayers, in_scope=SEES_ALERT, ok=200), r.text
    assert r.status_code != 200 or r.json()["state"] == "pending"
    r = api.post(f"/api/v1/alerts/{world.amsterdam_alert}/deliveries/replay")
    assert r.status_code == expected(who, role_ok=replayers, in_scope={"admin"}, ok=200), r.text
    with stack.runtime.sessions() as s:
        state = s.get(Delivery, ids["amsterdam"]).state
    assert state == ("pending" if who == "admin" else "rejected")


# -- police acknowledgement --------------------------------------------------------------------
@pytest.mark.parametrize("who", WHO)
def test_police_ack(stack, world: World, who: str):
    api = _client(stack, who)
    url = f"/api/v1/alerts/{world.rotterdam_alert}/police-ack"
    unit = "RE01" if who == "police-out" else "RE07"
    r = api.post(url, json={"action": "acknowledge", "unit": unit})
    assert r.status_code == expected(
        who, role_ok={"admin", "police-in", "police-out"}, in_scope=SEES_ALERT, ok=200), r.text
    reads = audit_rows(stack, resource="alert")
    if r.status_code == 200:
        assert r.json()["location"] is not None  # the alert is open: its position is released
        role = PRINCIPALS[who][0] if PRINCIPALS[who] else "admin"
        [entry] = reads
        assert (entry.actor_role, entry.resource_id, entry.device_id) == (
            role, str(world.rotterdam_alert), "vic-rdam")
    else:
        assert reads == []
    state = stack.api().get(f"/api/v1/alerts/{world.rotterdam_alert}").json()["state"]
    assert state == ("acknowledged" if r.status_code == 200 else "new")


def test_police_ack_for_a_unit_outside_the_token_is_forbidden(stack, world: World):
    api = _client(stack, "police-in")
    url = f"/api/v1/alerts/{world.rotterdam_alert}/police-ack"
    assert api.post(url, json={"action": "acknowledge", "unit": "RE05"}).status_code == 403
    assert stack.api().get(f"/api/v1/alerts/{world.rotterdam_alert}").json()["state"] == "new"


# -- a case director's own cases -----------------------------------------------------------------
def test_a_case_director_sees_and_changes_the_cases_she_directs(stack, world: World):
    admin = stack.api()
    case = f"/api/v1/cases/{world.rotterdam_case}"
    assert admin.patch(case, json={"case_director": "token:cd-own"}).status_code == 200
    own = named_client(stack, "cd-own", "case_director", {"cases": ["C-OTHER"]})
    other = named_client(stack, "cd-else", "case_director", {"cases": ["C-OTHER"]})
    alert = f"/api/v1/alerts/{world.rotterdam_alert}"

    assert str(world.rotterdam_case) in {c["id"] for c in own.get("/api/v1/cases").json()}
    assert str(world.rotterdam_alert) in {a["alert_id"] for a in own.get("/api/v1/alerts").json()}
    for url in (case, f"{case}/log", f"{case}/measures", alert, f"{alert}/positions",
                "/api/v1/devices/vic-rdam"):
        assert own.get(url).status_code == 200, url
        assert other.get(url).status_code == 404, url
    assert own.patch(case, json={"risk_level": "medium"}).status_code == 200
    assert other.patch(case, json={"risk_level": "low"}).status_code == 404
    # A device for a case out of sight is refused as for a case that does not exist.
    for case_id in (world.rotterdam_case, "00000000-0000-4000-8000-000000000000"):
        r = other.post("/api/v1/devices", json={"id": "vic-other", "case_id": str(case_id),
                                                "role": "victim"})
        assert r.status_code == 404 and r.json()["detail"] == f"case {case_id} not found"
    assert other.get("/api/v1/cases").json() == []
    assert other.get("/api/v1/alerts").json() == []
    # Handing the case over to another director hands over the sight of it.
    assert own.patch(case, json={"case_director": "token:cd-else"}).status_code == 200
    assert own.get(case).status_code == 404 and other.get(case).status_code == 200


def test_a_case_director_who_creates_a_case_directs_it(stack, world: World):
    director = named_client(stack, "cd-new", "case_director", {"cases": ["C-OTHER"]})
    r = director.post("/api/v1/cases", json={"reference": "C-NEW", "home_vr_code": "VR17"})
    assert r.status_code == 201 and r.json()["case_director"] == "token:cd-new"
    assert director.get(f"/api/v1/cases/{r.json()['id']}").status_code == 200
    assert r.json()["id"] in {c["id"] for c in director.get("/api/v1/cases").json()}
    assert director.post("/api/v1/cases", json={
        "reference": "C-ELSE", "case_director": "someone-else"}).status_code == 403
    assert director.post("/api/v1/cases", json={
        "reference": "C-SELF", "case_director": "token:cd-new"}).status_code == 201
    made = stack.api().post("/api/v1/cases", json={"reference": "C-ADMIN"}).json()
    assert made["case_director"] is None  # an admin names whomever she likes, or nobody


def test_the_own_case_rule_names_console_users_without_their_prefix():
    alice = Principal("user:alice", "case_director", {})
    assert person_id(alice) == "alice"
    assert directs(alice, "alice") and not directs(alice, "user:alice")
    assert not directs(alice, None) and not directs(alice, "bob")
    assert not directs(Principal("user:alice", "dispatcher", {}), "alice")
    assert directs(Principal("token:cd-1", "case_director", {}), "token:cd-1")
