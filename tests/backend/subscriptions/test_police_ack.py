"""Police acknowledge back: a police token acts only within its units; its acknowledgement and
dispatch report move the alert, reach the timeline and the victim's device."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from device_protocol import Alarm, codec
from tests.support.waiting import wait_until
from tests.support.mqtt import publish

pytestmark = pytest.mark.services


def _as(stack, token: str) -> TestClient:
    return TestClient(create_app(stack.runtime), headers={"Authorization": f"Bearer {token}"})


def test_police_ack_scope_and_state_reach_device(stack):
    stack.register("vic-401", home_unit="RE07")
    acks = stack.collector(stack.topics.ack("vic-401"))
    device = stack.device("vic-401")
    publish(device, stack.topics.alarm("vic-401"), codec.encode(Alarm(id="p-1")))
    api = stack.api()
    alert = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])
    assert alert["region"] is None  # bare alarm: routed to the case's home unit
    url = f"/api/v1/alerts/{alert['alert_id']}/police-ack"
    rotterdam = _as(stack, stack.token("police", {"units": ["RE07"]}))
    amsterdam = _as(stack, stack.token("police", {"units": ["RE05"]}))
    dispatcher = _as(stack, stack.token("dispatcher", {}))

    # Another unit's alert is out of scope: not found, like every out-of-scope read.
    assert amsterdam.post(url, json={"action": "acknowledge", "unit": "RE05"}).status_code == 404
    assert rotterdam.post(url, json={"action": "acknowledge", "unit": "RE05"}).status_code == 403
    assert dispatcher.post(url, json={"action": "acknowledge", "unit": "RE07"}).status_code == 403
    assert rotterdam.post(url, json={"action": "arrest", "unit": "RE07"}).status_code == 422
    assert api.get(f"/api/v1/alerts/{alert['alert_id']}").json()["state"] == "new"

    r = rotterdam.post(url, json={"action": "acknowledge", "unit": "RE07", "note": "melding"})
    assert r.status_code == 200 and r.json()["state"] == "acknowledged"
    r = rotterdam.post(url, json={"action": "dispatched", "unit": "RE07", "note": "car 12"})
    assert r.status_code == 200 and r.json()["state"] == "dispatched"

    states = [codec.decode_ack(p).state for _, p, _ in acks.wait_for(3)]
    assert states == ["received", "acknowledged", "dispatched"]
    timeline = api.get(f"/api/v1/alerts/{alert['alert_id']}").json()["timeline"]
    transitions = [e for e in timeline if e["kind"] == "transition"]
    assert [(e["actor"], e["to_state"]) for e in transitions] == [
        ("police:test-police", "acknowledged"), ("police:test-police", "dispatched")]
    assert transitions[1]["detail"] == {"note": "police unit RE07: car 12"}
    acks.close()
    device.disconnect()


def test_a_repeated_police_report_after_a_later_one_succeeds_and_changes_nothing(stack):
    """A police system delivers at least once: its acknowledgement may come again after its
    dispatch report went through, and either after the alert was resolved. Each answers 200
    with the alert as it is, and adds nothing to the timeline. A report the alert never went
    through is refused as before, and so is the console's own out-of-order acknowledge."""
    stack.register("vic-402", home_unit="RE07")
    device = stack.device("vic-402")
    publish(device, stack.topics.alarm("vic-402"), codec.encode(Alarm(id="p-2")))
    api = stack.api()
    alert_id = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])["alert_id"]
    url = f"/api/v1/alerts/{alert_id}/police-ack"
    police = _as(stack, stack.token("police", {"units": ["RE07"]}))
    acknowledge = {"action": "acknowledge", "unit": "RE07"}
    dispatched = {"action": "dispatched", "unit": "RE07", "note": "car 12"}

    def timeline() -> list[tuple[str, str | None]]:
        events = api.get(f"/api/v1/alerts/{alert_id}").json()["timeline"]
        return [(e["kind"], e["to_state"]) for e in events if e["kind"] == "transition"]

    assert police.post(url, json=acknowledge).status_code == 200
    assert police.post(url, json=dispatched).status_code == 200
    before = timeline()
    r = police.post(url, json=acknowledge)
    assert (r.status_code, r.json()["state"]) == (200, "dispatched")
    assert timeline() == before == [("transition", "acknowledged"), ("transition", "dispatched")]
    # The console's own actions stay strict.
    assert api.post(f"/api/v1/alerts/{alert_id}/acknowledge").status_code == 409

    assert api.post(f"/api/v1/alerts/{alert_id}/resolve").status_code == 200
    for report in (acknowledge, dispatched):
        r = police.post(url, json=report)
        assert (r.status_code, r.json()["state"]) == (200, "resolved")
    assert timeline() == before + [("transition", "resolved")]
    device.disconnect()


def test_a_dispatch_report_for_an_alert_resolved_without_one_is_refused(stack):
    stack.register("vic-403", home_unit="RE07")
    device = stack.device("vic-403")
    publish(device, stack.topics.alarm("vic-403"), codec.encode(Alarm(id="p-3")))
    api = stack.api()
    alert_id = wait_until(lambda: (api.get("/api/v1/alerts").json() or [None])[0])["alert_id"]
    police = _as(stack, stack.token("police", {"units": ["RE07"]}))
    assert api.post(f"/api/v1/alerts/{alert_id}/resolve").status_code == 200
    r = police.post(f"/api/v1/alerts/{alert_id}/police-ack",
                    json={"action": "dispatched", "unit": "RE07"})
    assert r.status_code == 409
    device.disconnect()


def test_the_home_unit_sees_an_alert_routed_elsewhere_but_may_not_report_on_it(stack):
    """The police of the case's home unit see every alert of the case; an alert the policy
    does not send them (an approach, the desk's, in another unit's area) they may not report
    on: refused (403), nothing changed, its escalation included; a unit that does not see the
    alert gets 404, the unit of its place too while the desk has it alone. (A panic away from
    home is routed to the home unit too, and it may act on it:
    tests/backend/alerts/test_police_feeds.py; the unit of the place once the escalation
    called it: tests/backend/auth/test_told_police.py.)"""
    import time

    from backend.alerts.models import Alert
    from backend.pipeline.context import AlertDraft

    case_id = stack.register("off-404", role="offender", home_unit="RE07")
    now = time.time()
    with stack.runtime.sessions.begin() as s:
        [raised] = stack.runtime.flow.raise_alerts(s, [AlertDraft(
            type="approach", device_id="off-404", case_id=case_id, message_id="ap-4",
            raised_at=now, lat=52.3731, lon=4.8922, acc=9, fix_time=now,
            location_source="fix")]).alerts  # Amsterdam
    assert raised.police_unit == "RE05"
    assert "RE07" not in {r.get("code") for r in raised.recipients}
    url = f"/api/v1/alerts/{raised.id}/police-ack"
    home = _as(stack, stack.token("police", {"units": ["RE07"]}))
    elsewhere = _as(stack, stack.token("police", {"units": ["RE01"]}))
    place = _as(stack, stack.token("police", {"units": ["RE05"]}))

    def escalation() -> tuple:
        with stack.runtime.sessions() as s:
            row = s.get(Alert, raised.id)
            return row.state, row.next_escalation_at, row.escalation_step

    before = escalation()
    assert before[0] == "new" and before[1] is not None
    assert home.get(f"/api/v1/alerts/{raised.id}").status_code == 200  # it sees it
    for action in ("dispatched", "acknowledge"):
        r = home.post(url, json={"action": action, "unit": "RE07", "note": "car 1"})
        assert r.status_code == 403, r.text
        assert elsewhere.post(url, json={"action": action, "unit": "RE01"}).status_code == 404
        assert place.post(url, json={"action": action, "unit": "RE05"}).status_code == 404
    assert escalation() == before
    timeline = stack.api().get(f"/api/v1/alerts/{raised.id}").json()["timeline"]
    assert [e for e in timeline if e["kind"] == "transition"] == []

