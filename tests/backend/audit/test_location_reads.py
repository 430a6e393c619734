"""Reading a position writes an audit entry; closed alerts show positions only with a reason."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from backend.audit.models import AuditEntry
from tests.backend.auth.world import build


def _entries(stack) -> list[AuditEntry]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(AuditEntry).order_by(AuditEntry.id)))


@pytest.fixture
def world(stack):
    return build(stack)


def test_reading_an_alert_position_writes_an_audit_entry(stack, world):
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    from fastapi.testclient import TestClient

    from backend.api.app import create_app
    api = TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})
    assert _entries(stack) == []
    document = api.get(f"/api/v1/alerts/{world.rotterdam_alert}").json()
    assert document["location"]["lat"] == pytest.approx(51.9244)
    [entry] = _entries(stack)
    assert (entry.actor, entry.actor_role, entry.on_behalf_of) == (
        "token:test-dispatcher", "dispatcher", "dispatcher:VR17")
    assert (entry.action, entry.resource, entry.resource_id) == (
        "read_location", "alert", str(world.rotterdam_alert))
    assert entry.case_id == world.rotterdam_case and entry.device_id == "vic-rdam"
    assert entry.channel == "api" and entry.reason is None and entry.at is not None


def test_a_list_without_positions_reads_and_audits_none(stack, world):
    """The console's queue shows no position: it asks for the list without them."""
    api = stack.api()
    bare = api.get("/api/v1/alerts", params={"state": "open", "with_location": "false"}).json()
    assert {d["alert_id"] for d in bare} == {str(world.rotterdam_alert),
                                             str(world.amsterdam_alert)}
    assert [d["location"] for d in bare] == [None, None]
    assert _entries(stack) == []
    full = api.get("/api/v1/alerts", params={"state": "open"}).json()
    assert all(d["location"] is not None for d in full)
    assert sorted(e.resource_id for e in _entries(stack)) == sorted(d["alert_id"] for d in full)


def test_an_alert_without_its_position_reads_and_audits_none(stack, world):
    """The alert page rereads state and timeline without the position."""
    api = stack.api()
    bare = api.get(f"/api/v1/alerts/{world.rotterdam_alert}",
                   params={"with_location": "false"}).json()
    assert bare["location"] is None and bare["state"] == "new"
    assert isinstance(bare["timeline"], list)
    assert _entries(stack) == []


def test_trail_read_audits_each_device(stack, world):
    api = stack.api()
    doc = api.get(f"/api/v1/alerts/{world.rotterdam_alert}/positions").json()
    assert len(doc["victim"]["trail"]) == 3 and doc["offender"]["last"]["lat"] == 51.93
    assert doc["distance_m"] > 0
    devices = sorted(e.device_id for e in _entries(stack) if e.resource == "trail")
    assert devices == ["off-rdam", "vic-rdam"]


def test_closed_alert_withholds_position_unless_a_reason_is_given(stack, world):
    # Close every Amsterdam alert so that no alert of that case is open.
    api = stack.api()
    api.post(f"/api/v1/alerts/{world.amsterdam_alert}/resolve")
    before = len(_entries(stack))
    withheld = api.get(f"/api/v1/alerts/{world.closed_alert}").json()
    assert withheld["location"] is None and withheld["location_withheld"] is True
    assert api.get(f"/api/v1/alerts/{world.closed_alert}/positions").status_code == 403
    assert len(_entries(stack)) == before  # nothing shown, nothing logged

    shown = api.get(f"/api/v1/alerts/{world.closed_alert}",
                    params={"reason": "court order 2026/117"}).json()
    assert shown["location"]["lat"] == pytest.approx(52.3731)
    entry = _entries(stack)[-1]
    assert entry.reason == "court order 2026/117" and entry.resource_id == str(world.closed_alert)
    assert api.get(f"/api/v1/alerts/{world.closed_alert}/positions",
                   params={"reason": "court order 2026/117"}).status_code == 200


def test_an_open_health_alert_releases_no_position_without_a_reason(stack, world):
    """A low battery (P3) stays open until the desk closes it, often for days: it does not
    make the victim's movements readable without a reason, as an open panic does."""
    from datetime import UTC, datetime

    from backend.alerts.models import Alert
    from backend.audit.guard import screen_event_alone
    from backend.auth.scope import releases_positions
    from backend.auth.tokens import Principal

    assert releases_positions(True, "P1") and releases_positions(True, "P2")
    assert not releases_positions(True, "P3") and not releases_positions(False, "P1")
    api = stack.api()
    api.post(f"/api/v1/alerts/{world.amsterdam_alert}/resolve")  # no urgent alert open
    with stack.runtime.sessions.begin() as s:
        battery = Alert(case_id=world.amsterdam_case, device_id="vic-adam", message_id="m-batt",
                        type="battery_low", priority="P3", state="new",
                        raised_at=datetime.now(UTC), lat=52.3731, lon=4.5, acc=9,
                        location_source="status", police_unit="RE05",
                        region={"vr_code": "VR13"}, flags=[])
        s.add(battery)
    before = len(_entries(stack))
    for alert in (battery.id, world.closed_alert):
        assert api.get(f"/api/v1/alerts/{alert}").json()["location"] is None
        assert api.get(f"/api/v1/alerts/{alert}/positions").status_code == 403
    assert len(_entries(stack)) == before
    assert api.get(f"/api/v1/alerts/{battery.id}/positions",
                   params={"reason": "device check"}).status_code == 200
    # The stream does not release it from the event alone either.
    event = {"event": "alert.updated", "scope": {"police_unit": "RE05", "case_home_vr": "VR13"},
             "alert": {"alert_id": str(battery.id), "type": "battery_low", "priority": "P3",
                       "state": "new", "region": {"vr_code": "VR13"},
                       "location": {"lat": 52.3731, "lon": 4.5}}}
    assert screen_event_alone(Principal("d13", "dispatcher", {"regions": ["VR13"]}),
                              event) is None


def test_a_withheld_position_leaves_no_municipality_behind(stack, world):
    """Where the position is withheld (or not asked for), the region keeps who the alert is
    routed to, not the municipality it came from: in a small one that is close to a place."""
    from backend.alerts.document import without_position
    from backend.alerts.views import _carried

    region = {"police_unit": "RE05", "police_unit_name": "Amsterdam", "vr_code": "VR13",
              "gemeente_code": "GM0363", "vt_desk_code": "VT1234", "exact": True}
    doc = {"alert_id": "a-1", "location": {"lat": 52.37, "lon": 4.89}, "region": region}
    bare = without_position(doc)
    assert bare["location"] is None and bare["region"] == {
        "police_unit": "RE05", "police_unit_name": "Amsterdam", "vr_code": "VR13",
        "vt_desk_code": "VT1234"}
    assert doc["region"] is region and "gemeente_code" in region  # the given one unchanged
    for carried in (_carried({"event": "alert.raised", "alert": doc}, alert_id=None,
                             with_location=False),
                    _carried({"event": "alert.raised", "alert": doc}, alert_id="other",
                             with_location=True)):
        assert carried["alert"]["location"] is None
        assert "gemeente_code" not in carried["alert"]["region"]

    api = stack.api()
    api.post(f"/api/v1/alerts/{world.amsterdam_alert}/resolve")
    with stack.runtime.sessions.begin() as s:
        from backend.alerts.models import Alert
        s.get(Alert, world.closed_alert).region = region
    withheld = api.get(f"/api/v1/alerts/{world.closed_alert}").json()
    assert withheld["location_withheld"] is True and "gemeente_code" not in withheld["region"]
    for params in ({"with_location": "false"}, {"reason": "court order 2026/117"}):
        got = api.get(f"/api/v1/alerts/{world.closed_alert}", params=params).json()
        assert ("gemeente_code" in got["region"]) is ("reason" in params)


@pytest.mark.parametrize("stack", ["embedded"], indirect=True)
def test_a_streamed_raise_is_screened_from_its_event_and_audited_before(stack, world):
    """A raise carries its scope facts: each console gets the frame without them, and its
    position read is on the audit log, stream channel, before the frame leaves."""
    import time

    from fastapi.testclient import TestClient

    from backend.api.app import create_app
    from device_protocol import Alarm, codec
    from tests.support.mqtt import publish

    stack.register("vic-stream", home_unit="RE07")
    token_in = stack.token("police", {"units": ["RE07"]})
    token_out = stack.token("police", {"units": ["RE05"]})
    with TestClient(create_app(stack.runtime)) as client, \
            client.websocket_connect("/api/v1/stream", subprotocols=["bearer", token_in]) as ws, \
            client.websocket_connect("/api/v1/stream",
                                     subprotocols=["bearer", token_out]) as ws_out:
        time.sleep(0.3)
        before = len(_entries(stack))
        device = stack.device("vic-stream")
        publish(device, stack.topics.alarm("vic-stream"), codec.encode(
            Alarm(id="s-1", tst=time.time(), lat=51.9244, lon=4.4690, acc=8.0)))
        frame = ws.receive_json()
        streamed = [e for e in _entries(stack)[before:] if e.channel == "stream"]
        device.disconnect()
        assert frame["event"] == "alert.raised" and "scope" not in frame
        assert frame["alert"]["message_id"] == "s-1" and frame["alert"]["location"] is not None
        # The out-of-scope console's next frame is the next event in its scope, not the raise.
        marker = {"event": "alert.updated", "alert": {"alert_id": "marker", "state": "new",
                                                      "location": None, "region": None},
                  "scope": {"police_unit": "RE05", "told_police": True, "case_id": None,
                            "case_reference": None, "case_home_vr": None,
                            "case_director": None}}
        stack.runtime.bus.publish(marker)
        assert ws_out.receive_json()["alert"]["alert_id"] == "marker"
    assert [(e.actor, e.resource_id, e.device_id) for e in streamed] == [
        ("token:test-police", frame["alert"]["alert_id"], "vic-stream")]
    assert len([e for e in _entries(stack)[before:] if e.channel == "stream"]) == 1


class _DatabaseAway:
    """Sessions whose every transaction fails, as while the database is away."""

    def begin(self):
        from sqlalchemy.exc import OperationalError

        raise OperationalError("INSERT INTO audit_log ...", {}, ConnectionRefusedError())


class _Runtime:
    sessions = _DatabaseAway()


def test_a_position_whose_audit_cannot_be_written_is_not_streamed(caplog):
    """No entry, no position: the frame goes (the console learns of the alert) without it,
    and the failure is logged by actor and alert id, never the position."""
    import asyncio

    from backend.alerts.views import _frames
    from backend.auth.tokens import Principal

    who = Principal("token:p", "police", {"units": ["RE07"]}, ref="token#7")
    event = {"event": "alert.raised",
             "alert": {"alert_id": "a-1", "state": "new", "type": "panic", "priority": "P1",
                       "device": {"id": "vic-1", "role": "victim"},
                       "region": {"vr_code": "VR17"}, "location": {"lat": 51.9, "lon": 4.5}},
             "scope": {"police_unit": "RE07", "told_police": True, "case_id": None,
                       "case_reference": "R-1", "case_home_vr": "VR17", "case_director": None}}
    [frame] = asyncio.run(_frames(_Runtime(), who, [event, {**event, "scope": {
        **event["scope"], "police_unit": "RE05"}}]))  # the second is out of scope
    sent = __import__("orjson").loads(frame)
    assert sent["alert"]["alert_id"] == "a-1" and sent["alert"]["location"] is None
    assert "scope" not in sent
    assert "a-1" in caplog.text and "token#7" in caplog.text and "51.9" not in caplog.text


def test_a_position_unaudited_goes_as_one_withheld_without_its_municipality():
    """A frame whose position could not be audited is withheld as one not released: said so
    (`location_withheld`), and its region reduced to whom it is routed. Before, it kept the
    municipality (close to a place in a small one) and did not say it was withheld."""
    import asyncio

    import orjson

    from backend.alerts.views import _frames
    from backend.auth.tokens import Principal

    who = Principal("user:desk", "dispatcher", {"regions": ["VR17"]}, ref="user#3")
    event = {"event": "alert.raised",
             "alert": {"alert_id": "a-2", "state": "new", "type": "proximity", "priority": "P1",
                       "device": {"id": "off-1", "role": "offender"},
                       "region": {"vr_code": "VR17", "police_unit": "RE07",
                                  "gemeente_code": "GM1621", "gemeente_name": "Lansingerland"},
                       "location": {"lat": 51.99, "lon": 4.53}},
             "scope": {"police_unit": "RE07", "case_id": None, "case_reference": "R-2",
                       "case_home_vr": "VR17", "case_director": None}}
    [frame] = asyncio.run(_frames(_Runtime(), who, [event]))
    sent = orjson.loads(frame)["alert"]
    assert sent["location"] is None and sent["location_withheld"] is True
    assert sent["region"] == {"vr_code": "VR17", "police_unit": "RE07"}


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_read_by_a_token_with_the_longest_name_is_audited(stack, world):
    """A token's name is bounded so that its actor fits the audit log's column: a longer one
    is refused when the token is made, the longest reads and is audited (on PostgreSQL, which
    refuses a value longer than its column)."""
    api = stack.api()
    too_long = api.post("/api/v1/tokens", json={"name": "n" * 65, "role": "dispatcher",
                                                 "scope": {"regions": ["VR17"]}})
    assert too_long.status_code == 422
    name = "n" * 64
    created = api.post("/api/v1/tokens", json={"name": name, "role": "dispatcher",
                                               "scope": {"regions": ["VR17"]}})
    assert created.status_code == 201
    read = api.get(f"/api/v1/alerts/{world.rotterdam_alert}",
                   headers={"Authorization": f"Bearer {created.json()['token']}"})
    assert read.status_code == 200 and read.json()["location"] is not None
    [entry] = _entries(stack)
    assert entry.actor == f"token:{name}"


def test_an_action_in_the_console_is_audited_as_the_console(stack, world):
    """The answer to an action carries the alert's position: its read is logged with the
    channel the action came by (the console's session, or the API's bearer token)."""
    from backend.auth.users import add_user
    from tests.backend.auth.test_sessions import PASSWORD, _sign_in

    with stack.runtime.sessions.begin() as s:
        add_user(s, "desk", PASSWORD, "dispatcher", {"regions": ["VR17"]})
    console, csrf = _sign_in(stack)
    acknowledged = console.post(f"/api/v1/alerts/{world.rotterdam_alert}/acknowledge",
                                headers={"X-CSRF-Token": csrf})
    assert acknowledged.status_code == 200 and acknowledged.json()["location"] is not None
    dispatched = stack.api().post(f"/api/v1/alerts/{world.rotterdam_alert}/dispatch")
    assert dispatched.status_code == 200
    assert [(e.actor, e.channel) for e in _entries(stack)] == [
        ("user:desk", "console"), ("admin", "api")]


def test_an_open_alert_the_reader_may_not_see_releases_no_position_to_her(stack, world):
    """The Rotterdam case had an alert in Amsterdam, long closed, which the Amsterdam desk
    (VR13) and the Amsterdam police (RE05) see; its open alert in Rotterdam they do not. The
    closed alert's position and trail stay withheld from them without a reason (in the API,
    the list and the stream), while the Rotterdam desk, who sees the open alert, reads them."""
    from datetime import UTC, datetime, timedelta

    from fastapi.testclient import TestClient

    from backend.alerts.models import Alert
    from backend.api.app import create_app
    from backend.audit.guard import screen_event
    from backend.auth.tokens import Principal

    old = datetime.now(UTC) - timedelta(days=40)
    with stack.runtime.sessions.begin() as s:
        closed = Alert(case_id=world.rotterdam_case, device_id="vic-rdam", message_id="m-old",
                       type="panic", priority="P1", state="resolved", raised_at=old,
                       closed_at=old + timedelta(minutes=10), lat=52.3731, lon=4.8922, acc=9,
                       fix_time=old, location_source="alarm", police_unit="RE05",
                       told_police=True, region={"vr_code": "VR13"}, flags=[])
        s.add(closed)
        s.flush()
        closed_id = closed.id

    def reader(role: str, scope: dict) -> TestClient:
        return TestClient(create_app(stack.runtime),
                          headers={"Authorization": f"Bearer {stack.token(role, scope)}"})

    def reads_of_closed() -> int:
        return sum(e.resource_id == str(closed_id) for e in _entries(stack))

    for client in (reader("dispatcher", {"regions": ["VR13"]}),
                   reader("police", {"units": ["RE05"]})):
        assert client.get(f"/api/v1/alerts/{world.rotterdam_alert}").status_code == 404
        document = client.get(f"/api/v1/alerts/{closed_id}").json()
        assert document["location"] is None and document["location_withheld"] is True
        listed = client.get("/api/v1/alerts", params={"state": "closed"}).json()
        assert [(d["alert_id"], d["location"]) for d in listed
                if d["alert_id"] == str(closed_id)] == [(str(closed_id), None)]
        assert client.get(f"/api/v1/alerts/{closed_id}/positions").status_code == 403
    event = {"event": "alert.updated",
             "alert": {**document, "location": {"lat": 52.3731, "lon": 4.8922}}}
    with stack.runtime.sessions() as s:
        streamed = screen_event(s, Principal("d", "dispatcher", {"regions": ["VR13"]}), event)
        s.commit()
    assert streamed["alert"]["location"] is None
    assert reads_of_closed() == 0  # nothing released, nothing logged

    desk17 = reader("dispatcher", {"regions": ["VR17"]})
    assert desk17.get(f"/api/v1/alerts/{closed_id}").json()["location"]["lat"] == 52.3731
    assert desk17.get(f"/api/v1/alerts/{closed_id}/positions").status_code == 200
    desk13 = reader("dispatcher", {"regions": ["VR13"]})
    shown = desk13.get(f"/api/v1/alerts/{closed_id}/positions", params={"reason": "case review"})
    assert shown.status_code == 200 and shown.json()["victim"]["device_id"] == "vic-rdam"
    # The desk of VR17: the alert and both devices' trails; the desk of VR13 the trails, reasoned.
    assert reads_of_closed() == 3 + 2
