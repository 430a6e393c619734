"""A geofence event first raised "possible" and then confirmed is one alert: the confirmed event
upgrades the open possible alert (its flag, a `confirmed` timeline entry, a police feed
message and webhook delivery of the next sequence) instead of raising a second one; its
redelivery changes nothing; a possible alert closed meanwhile, or confirmed already, lets the
confirmed event raise its own, and a possible event never touches an open confirmed one."""

from __future__ import annotations

import time
import uuid

import orjson
import pytest
from sqlalchemy import select

from backend.alerts import service
from backend.alerts.flows import confirmed_flags
from backend.alerts.models import Alert, AlertEvent, OutboxMessage
from backend.pipeline.context import AlertDraft
from backend.pipeline.zones import event_draft
from backend.subscriptions.models import Delivery, Subscription
from geofences import GeofenceEvent

OFFENDER = "off-q1"
T0 = 1_800_000_000.0


def _draft(case_id: uuid.UUID, confidence: str, at: float = T0, measure: str = "zone_q1",
           kind: str = "zone_breach") -> AlertDraft:
    event = GeofenceEvent(kind=kind, measure_id=measure, case_id=str(case_id),  # type: ignore
                          device_id=OFFENDER, at=at, confidence=confidence,  # type: ignore
                          distance_m=0.0, inside_m=12.0 if confidence == "possible" else 80.0)
    return event_draft(event, time.time(), exercise=False)


def _raise(stack, *drafts: AlertDraft) -> list[Alert]:
    with stack.runtime.sessions.begin() as s:
        return stack.runtime.flow.raise_alerts(s, list(drafts)).alerts


def _alerts(stack) -> list[Alert]:
    with stack.runtime.sessions() as s:
        return list(s.scalars(select(Alert).where(Alert.device_id == OFFENDER)
                              .order_by(Alert.raised_at)))


def _timeline(stack, alert_id) -> list[AlertEvent]:
    with stack.runtime.sessions() as s:
        return service.timeline(s, alert_id)


def _police_feed(stack, alert_id) -> list[dict]:
    """The police feed messages written for the alert, in order."""
    with stack.runtime.sessions() as s:
        rows = s.scalars(select(OutboxMessage).where(
            OutboxMessage.alert_id == alert_id,
            OutboxMessage.target == stack.topics.police_alerts("RE07")).order_by(OutboxMessage.id))
        return [orjson.loads(r.payload) for r in rows]


def _close(stack, alert_id, action: str = "false_alarm") -> None:
    with stack.runtime.sessions.begin() as s:
        stack.runtime.flow.transition(s, alert_id, action, actor="user:desk")


def test_the_confirmed_flag_replaces_the_possible_one():
    assert confirmed_flags(["geofence_possible", "late"], "geofence_possible",
                           ["geofence_confirmed"]) == ["geofence_confirmed", "late"]
    assert confirmed_flags(["late"], "geofence_possible", ["geofence_confirmed"]) == [
        "geofence_confirmed", "late"]


def test_possible_then_confirmed_is_one_alert_upgraded(stack):
    case_id = stack.register(OFFENDER, role="offender")
    subscription_id = uuid.uuid4()
    with stack.runtime.sessions.begin() as s:
        s.add(Subscription(id=subscription_id, name="police", url="http://127.0.0.1:9/hook",
                           secret="whsec_dGVzdA==", format="cap"))
    [possible] = _raise(stack, _draft(case_id, "possible"))
    confirmed = _draft(case_id, "confirmed", at=T0 + 30)
    assert _raise(stack, confirmed) == []

    [alert] = _alerts(stack)
    assert alert.id == possible.id
    assert alert.flags == ["geofence_confirmed"] and alert.sequence == 2
    assert alert.state == "new" and alert.confirmed_by == confirmed.message_id
    assert alert.message_id == f"geo-zone_q1-zone_breach-possible-{int(T0)}"
    entry = _timeline(stack, alert.id)[-1]
    assert (entry.kind, entry.actor) == ("confirmed", "geofence")
    assert entry.detail["geofence"]["confidence"] == "confirmed"
    assert entry.detail["geofence"]["inside_m"] == 80.0
    assert entry.detail["flags"] == ["geofence_confirmed"]
    # The police hear of it as of any change of the alert: the next sequence, now confirmed.
    feed = _police_feed(stack, alert.id)
    assert [(d["sequence"], d["flags"]) for d in feed] == [
        (1, ["geofence_possible"]), (2, ["geofence_confirmed"])]
    with stack.runtime.sessions() as s:
        deliveries = s.execute(select(Delivery.sequence, Delivery.body).where(
            Delivery.alert_id == alert.id, Delivery.subscription_id == subscription_id)
            .order_by(Delivery.sequence)).all()
    assert [sequence for sequence, _ in deliveries] == [1, 2]
    update = deliveries[1].body
    assert b"<msgType>Update</msgType>" in update and b"geofence_confirmed" in update

    # The confirmed event again (a redelivered batch): nothing new.
    assert _raise(stack, _draft(case_id, "confirmed", at=T0 + 30)) == []
    [again] = _alerts(stack)
    assert again.sequence == 2
    assert [e.kind for e in _timeline(stack, alert.id)].count("confirmed") == 1
    assert len(_police_feed(stack, alert.id)) == 2


def test_possible_and_confirmed_in_one_batch_keep_the_raise_first(stack):
    case_id = stack.register(OFFENDER, role="offender")
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(
            s, [_draft(case_id, "possible"), _draft(case_id, "confirmed", at=T0 + 5)],
            follow_up=False)
        assert len(effects.alerts) == 1
    with stack.runtime.sessions.begin() as s:
        stack.runtime.flow.follow_up(s, effects.follow_ups)  # as the worker does after commit
    [alert] = _alerts(stack)
    assert alert.flags == ["geofence_confirmed"] and alert.sequence == 2
    timeline = _timeline(stack, alert.id)
    assert [e.kind for e in timeline] == ["raised", "confirmed"]
    assert timeline[0].detail["geofence"]["confidence"] == "possible"


def test_a_possible_alert_whose_follow_up_never_ran_gets_it_before_its_confirmation(stack):
    """Its process died after the raise's commit: the confirmation finishes the raise first."""
    case_id = stack.register(OFFENDER, role="offender")
    with stack.runtime.sessions.begin() as s:
        stack.runtime.flow.raise_alerts(s, [_draft(case_id, "possible")], follow_up=False)
    assert _raise(stack, _draft(case_id, "confirmed", at=T0 + 30)) == []
    [alert] = _alerts(stack)
    assert alert.followed_up_at is not None
    assert [e.kind for e in _timeline(stack, alert.id)] == ["raised", "confirmed"]


@pytest.mark.parametrize("action", ["false_alarm", "resolve"])
def test_a_closed_possible_alert_lets_the_confirmed_event_raise_anew(stack, action):
    case_id = stack.register(OFFENDER, role="offender")
    [possible] = _raise(stack, _draft(case_id, "possible"))
    _close(stack, possible.id, action)
    confirmed = _draft(case_id, "confirmed", at=T0 + 30)
    [raised] = _raise(stack, confirmed)
    assert raised.id != possible.id and raised.message_id == confirmed.message_id
    assert raised.flags == ["geofence_confirmed"]
    first, _ = _alerts(stack)
    assert first.flags == ["geofence_possible"] and first.confirmed_by is None
    # Its redelivery is the raised alert's: nothing new.
    assert _raise(stack, _draft(case_id, "confirmed", at=T0 + 30)) == []
    assert len(_alerts(stack)) == 2


def test_a_later_confirmed_event_raises_anew_while_the_confirmed_alert_is_open(stack):
    """As every other breach while one is open: an alert is confirmed once."""
    case_id = stack.register(OFFENDER, role="offender")
    [possible] = _raise(stack, _draft(case_id, "possible"))
    assert _raise(stack, _draft(case_id, "confirmed", at=T0 + 30)) == []
    [later] = _raise(stack, _draft(case_id, "confirmed", at=T0 + 900))
    assert later.id != possible.id
    assert [a.sequence for a in _alerts(stack)] == [2, 1]


def test_a_possible_event_leaves_an_open_confirmed_alert_alone(stack):
    """The engine never goes back from confirmed to possible within an entry: a possible event
    is a new entry, raised on its own."""
    case_id = stack.register(OFFENDER, role="offender")
    [confirmed] = _raise(stack, _draft(case_id, "confirmed"))
    [possible] = _raise(stack, _draft(case_id, "possible", at=T0 + 900))
    assert possible.id != confirmed.id
    first, second = _alerts(stack)
    assert (first.sequence, first.flags) == (1, ["geofence_confirmed"])
    assert second.flags == ["geofence_possible"]


def test_only_the_same_measure_and_kind_is_confirmed(stack):
    case_id = stack.register(OFFENDER, role="offender")
    _raise(stack, _draft(case_id, "possible", measure="zone_q1"),
           _draft(case_id, "possible", kind="approach", measure="zone_q1"))
    # `_` in a measure id is no wildcard: zoneXq1 is another measure.
    assert len(_raise(stack, _draft(case_id, "confirmed", at=T0 + 30, measure="zoneXq1"))) == 1
    assert _raise(stack, _draft(case_id, "confirmed", at=T0 + 60, kind="approach")) == []
    breach, approach, other = _alerts(stack)
    assert (breach.type, breach.sequence, breach.flags) == (
        "zone_breach", 1, ["geofence_possible"])
    assert (approach.type, approach.sequence, approach.flags) == (
        "approach", 2, ["geofence_confirmed"])
    assert other.message_id.startswith("geo-zoneXq1-zone_breach-confirmed-")
