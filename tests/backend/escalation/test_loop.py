"""The escalation loop on the stack: an unacknowledged P1 is re-notified at 30 s and escalated
(desk supervisor, then the police unit directly, which reaches the police feed and the police's
webhook subscriptions); an acknowledged alert that stays unresolved re-alerts; the loop is driven
with a controllable clock."""

from __future__ import annotations

import logging
import sqlite3
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path

import orjson
import psycopg
import pytest
from lxml import etree
from sqlalchemy import select, text
from sqlalchemy import update as sa_update
from sqlalchemy.exc import OperationalError, ProgrammingError

from backend.alerts.models import Alert, AlertEvent
from backend.caselog import service as caselog
from backend.cases.models import Case
from backend.escalation.errors import BadStoredPlan
from backend.escalation.loop import (
    RETRY_AFTER,
    TRANSIENT_TRIES,
    EscalationLoop,
    is_transient,
)
from backend.subscriptions.hook import DeliveryHook
from backend.subscriptions.models import Delivery
from tests.backend.escalation.support import RecordingBus, raise_panic
from tests.support.waiting import wait_until
from tests.support.webhooks import receivers, subscribe, webhooks  # noqa: F401 - fixtures


def _timeline(stack, alert_id: uuid.UUID) -> list[AlertEvent]:
    with stack.runtime.sessions() as s:
        return list(
            s.scalars(
                select(AlertEvent)
                .where(AlertEvent.alert_id == alert_id)
                .order_by(AlertEvent.id)
            )
        )


def test_unacknowledged_p1_escalates_on_time(stack):
    alert = raise_panic(stack, "vic-esc")
    assert alert.priority == "P1" and alert.escalation_step == 0
    t0 = alert.raised_at
    assert alert.next_escalation_at == t0 + timedelta(seconds=30)
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, clock=lambda: t0, bus=bus)
    police = stack.collector(stack.topics.police_filter())

    assert loop.run_once(t0 + timedelta(seconds=29)) == 0
    assert loop.run_once(t0 + timedelta(seconds=30)) == 1  # re-notified at 30 s
    assert loop.run_once(t0 + timedelta(seconds=31)) == 0  # not twice
    assert loop.run_once(t0 + timedelta(seconds=45)) == 1  # desk supervisor
    assert police.messages == []  # nothing for the police feed yet
    assert loop.run_once(t0 + timedelta(seconds=60)) == 1  # the police unit directly

    [(topic, payload, _)] = police.wait_for(1)
    assert topic == stack.topics.police_alerts("RE07")
    document = orjson.loads(payload)
    assert document["alert_id"] == str(alert.id)
    assert document["escalation"]["target"] == "police_unit"
    assert "police_delivery" not in document  # the console's, not the police's
    assert [
        (e["escalation"]["action"], e["escalation"]["target"])
        for e in bus.named("alert.escalated")
    ] == [
        ("re_notify", "primary"),
        ("escalate", "desk_supervisor"),
        ("escalate", "police_unit"),
    ]
    escalations = [e for e in _timeline(stack, alert.id) if e.kind == "escalated"]
    assert [e.detail["step"] for e in escalations] == [1, 2, 3]
    assert all(e.actor == "system:escalation" for e in escalations)
    with stack.runtime.sessions() as s:
        kinds = [e.kind for e in caselog.entries(s, alert.case_id)]
        assert kinds == ["alert", "escalation", "escalation", "escalation"]
        assert caselog.verify(s, alert.case_id).ok
        stored = s.get(Alert, alert.id)
        # The chain is done; the next look is the re-alert after acknowledgement only.
        assert stored.next_escalation_at is None and stored.escalation_step == 3
    police.close()


def test_a_late_loop_catches_up_every_step_in_order(stack):
    alert = raise_panic(stack, "vic-late")
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, bus=bus)
    assert loop.run_once(alert.raised_at + timedelta(seconds=90)) == 3
    assert [e["escalation"]["step"] for e in bus.named("alert.escalated")] == [1, 2, 3]
    # Each event carries its scope facts: the console stream screens it without the database.
    with stack.runtime.sessions() as s:
        case = s.get(Case, alert.case_id)
        expected = {"police_unit": alert.police_unit, "told_police": True,
                    "case_id": str(alert.case_id),
                    "case_reference": case.reference, "case_home_vr": case.home_vr_code,
                    "case_director": case.case_director,
                    "case_home_unit": case.home_police_unit}
    assert [e["scope"] for e in bus.named("alert.escalated")] == [expected] * 3


def test_acknowledged_alert_stops_escalating_and_re_alerts_when_unresolved(stack):
    alert = raise_panic(stack, "vic-ack")
    api = stack.api()
    assert api.post(f"/api/v1/alerts/{alert.id}/acknowledge").status_code == 200
    with stack.runtime.sessions() as s:
        acked = s.get(Alert, alert.id)
        assert acked.next_escalation_at == acked.acknowledged_at + timedelta(
            seconds=600
        )
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, bus=bus)
    assert (
        loop.run_once(acked.raised_at + timedelta(seconds=120)) == 0
    )  # acknowledged: no chain
    assert loop.run_once(acked.acknowledged_at + timedelta(seconds=600)) == 1
    [event] = bus.named("alert.escalated")
    assert event["escalation"]["action"] == "re_alert"
    assert loop.run_once(acked.acknowledged_at + timedelta(seconds=700)) == 0
    assert (
        loop.run_once(acked.acknowledged_at + timedelta(seconds=1200)) == 1
    )  # and again
    assert api.post(f"/api/v1/alerts/{alert.id}/resolve").status_code == 200
    assert loop.run_once(acked.acknowledged_at + timedelta(seconds=9999)) == 0


# -- the police's webhook subscriptions ---------------------------------------------------------
CAP = "{urn:oasis:names:tc:emergency:cap:1.2}"


def _cap_schema() -> etree.XMLSchema:
    """The official OASIS schema next to the repository; the repository's copy when absent."""
    root = Path(__file__).resolve().parents[3]
    official = root.parent / "shared" / "data" / "cap" / "CAP-v1.2-schema.xsd"
    packaged = root / "backend" / "police" / "schema" / "CAP-v1.2-schema.xsd"
    return etree.XMLSchema(etree.parse(str(official if official.exists() else packaged)))


def _deliveries(api, alert_id: uuid.UUID) -> list[dict]:
    r = api.get("/api/v1/deliveries", params={"alert_id": str(alert_id)})
    assert r.status_code == 200, r.text
    return sorted(r.json(), key=lambda d: (d["subscription_id"], d["escalation_step"]))


def _police_delivery(api, alert_id: uuid.UUID) -> str | None:
    return api.get(f"/api/v1/alerts/{alert_id}").json()["police_delivery"]


def _delivered(api, alert: Alert) -> None:
    """Wait until the raise's deliveries are recorded: the worker locks the alert to record
    each, and a pass skips an alert locked meanwhile."""
    wait_until(lambda: _police_delivery(api, alert.id) == "delivered")


def test_the_police_step_reaches_the_webhook_subscriptions_as_a_message_of_its_own(
        webhooks, receivers):
    """A P1 nobody acknowledges reaches each subscribed receiver twice: the raise, then, at the
    step to the police unit directly, the escalation (CloudEvent `.escalated`, CAP Update of its
    own identifier, valid against the official schema). The steps before it send nothing."""
    stack = webhooks
    api = stack.api()
    events, cap_receiver = receivers(), receivers()
    subscribe(api, events)
    subscribe(api, cap_receiver, format="cap")
    alert = raise_panic(stack, "vic-esc-hook")
    _delivered(api, alert)
    loop = EscalationLoop(stack.runtime, bus=RecordingBus())

    assert loop.run_once(alert.raised_at + timedelta(seconds=45)) == 2  # desk steps only
    assert [d["escalation_step"] for d in _deliveries(api, alert.id)] == [0, 0]
    assert loop.run_once(alert.raised_at + timedelta(seconds=60)) == 1  # the police unit

    got = sorted(events.wait_for(2), key=lambda r: r.at)
    assert len(got) == 2 and events.bad_signatures == events.duplicates == 0
    raised, escalated = (orjson.loads(r.body) for r in got)
    assert raised["type"].endswith(".raised") and "escalation" not in raised["data"]
    assert escalated["id"] == f"{alert.id}/1/escalation/3"
    assert escalated["type"] == "nl.schildwacht.alert.panic.escalated"
    assert escalated["data"]["escalation"]["target"] == "police_unit"
    assert escalated["data"]["escalation"]["step"] == 3
    assert "police_delivery" not in escalated["data"]  # the console's, not the police's

    got = sorted(cap_receiver.wait_for(2), key=lambda r: r.at)
    assert len(got) == 2 and cap_receiver.bad_signatures == 0
    schema = _cap_schema()
    first, update = (etree.fromstring(r.body) for r in got)
    assert schema.validate(update), schema.error_log
    assert update.findtext(f"{CAP}msgType") == "Update"
    assert update.findtext(f"{CAP}identifier") == (
        f"{first.findtext(f'{CAP}identifier')}-escalation-3")
    assert update.findtext(f"{CAP}info/{CAP}headline").startswith("ESCALATIE P1")

    # The delivery listing shows each message's step; the escalation got through as well.
    deliveries = wait_until(lambda: (ds := _deliveries(api, alert.id))
                            and {d["state"] for d in ds} == {"delivered"} and ds)
    assert [d["escalation_step"] for d in deliveries] == [0, 3, 0, 3]
    assert {d["webhook_id"] for d in deliveries} == set(events.received) | set(
        cap_receiver.received)
    assert _police_delivery(api, alert.id) == "delivered"


def test_an_escalation_the_police_do_not_take_makes_the_alert_unreachable(webhooks, receivers):
    """The raise got through, the escalation does not by the deadline: the police were not told
    that the desk left the P1 unacknowledged ("police not reached"); a replay sends it again
    under its webhook id."""
    stack = webhooks
    api = stack.api()
    receiver = receivers()
    subscribe(api, receiver)
    alert = raise_panic(stack, "vic-esc-down")
    _delivered(api, alert)
    receiver.down = True

    loop = EscalationLoop(stack.runtime, bus=RecordingBus())
    assert loop.run_once(alert.raised_at + timedelta(seconds=60)) == 3
    wait_until(lambda: _police_delivery(api, alert.id) == "unreachable", timeout=20)
    raised, escalation = _deliveries(api, alert.id)
    assert (raised["state"], raised["escalation_step"]) == ("delivered", 0)
    assert (escalation["state"], escalation["escalation_step"]) == ("unreachable", 3)
    assert escalation["sequence"] == raised["sequence"] == 1
    assert "police not reached: phone the control room" in escalation["last_error"]

    receiver.down = False
    r = api.post(f"/api/v1/alerts/{alert.id}/deliveries/replay")
    assert r.status_code == 200, r.text
    assert [(d["id"], d["escalation_step"]) for d in r.json()] == [(escalation["id"], 3)]
    got = receiver.wait_for(2)
    assert len(got) == 2
    assert orjson.loads(receiver.received[escalation["webhook_id"]].body)["data"][
        "escalation"]["step"] == 3
    wait_until(lambda: _police_delivery(api, alert.id) == "delivered")


def test_an_exercise_alerts_escalation_reaches_drill_subscriptions_only(webhooks, receivers):
    stack = webhooks
    api = stack.api()
    live, drill = receivers(), receivers()
    subscribe(api, live)
    drill_sub = subscribe(api, drill, drill=True)
    alert = raise_panic(stack, "vic-esc-drill", exercise=True)
    _delivered(api, alert)

    loop = EscalationLoop(stack.runtime, bus=RecordingBus())
    assert loop.run_once(alert.raised_at + timedelta(seconds=60)) == 3
    got = sorted(drill.wait_for(2), key=lambda r: r.at)
    assert len(got) == 2
    escalated = orjson.loads(got[1].body)
    assert escalated["type"].endswith(".escalated") and escalated["data"]["exercise"] is True
    deliveries = _deliveries(api, alert.id)
    assert [(d["subscription_id"], d["escalation_step"]) for d in deliveries] == [
        (drill_sub["id"], 0), (drill_sub["id"], 3)]
    assert live.requests == 0


def test_an_alert_that_fails_leaves_the_webhook_sends_of_the_others_in_the_pass(
        webhooks, receivers):
    """Each alert of a pass is escalated in a savepoint: the webhook sends of one wait for the
    pass's commit (not its savepoint's), and when another alert's savepoint rolls back they
    are still sent right after the commit, not after their claim runs out. They start once
    the step's police feed is out, as a raise's do (before, at the commit, ahead of it)."""
    stack = webhooks
    api = stack.api()
    receiver = receivers()
    subscribe(api, receiver)
    good = raise_panic(stack, "vic-esc-good")
    broken = raise_panic(stack, "vic-esc-broken")  # due after the good one: fails after it
    _delivered(api, good), _delivered(api, broken)
    with stack.runtime.sessions.begin() as s:
        s.execute(sa_update(Alert).where(Alert.id == broken.id).values(escalation={"steps": []}))
    hook = next(h for h in stack.runtime.flow.hooks if isinstance(h, DeliveryHook))
    dispatcher = stack.runtime.dispatcher
    send_webhooks, send_feed = hook.submit, dispatcher.send
    order, submitted, committed = [], [], []

    def submit(jobs, sends=None):
        order.append("webhooks")
        submitted.extend(jobs)
        with stack.runtime.sessions() as s:
            committed.extend(s.get(Delivery, job.delivery_id) is not None for job in jobs)
        send_webhooks(jobs, sends)

    def send(items):
        order.extend(["police feed"] if items else [])
        send_feed(items)

    hook.submit, dispatcher.send = submit, send
    try:
        loop = EscalationLoop(stack.runtime, bus=RecordingBus())
        assert loop.run_once(broken.raised_at + timedelta(seconds=60)) == 3
    finally:
        hook.submit, dispatcher.send = send_webhooks, send_feed
    assert [(job.alert_id, job.attempt) for job in submitted] == [(good.id, 1)]
    assert committed == [True]
    assert order == ["police feed", "webhooks"]
    [_, escalation] = _deliveries(api, good.id)
    assert submitted[0].delivery_id == uuid.UUID(escalation["id"])


def _next_escalation_at(stack, alert_id: uuid.UUID):
    with stack.runtime.sessions() as s:
        return s.scalar(select(Alert.next_escalation_at).where(Alert.id == alert_id))


class RowLock:
    """Another transaction holding a row (an operator's write to the case, say) until released."""

    def __init__(self, stack, statement: str, **params) -> None:
        self._connection = stack.runtime.engine.connect()
        self._transaction = self._connection.begin()
        self._connection.execute(text(statement), params)

    def release(self) -> None:
        if not self._connection.closed:
            self._transaction.rollback()
            self._connection.close()


def _lock_case(stack, alert: Alert) -> RowLock:
    return RowLock(stack, "SELECT 1 FROM cases WHERE id = :id FOR UPDATE", id=alert.case_id)


@pytest.mark.parametrize("error, transient", [
    (OperationalError("s", {}, psycopg.errors.LockNotAvailable("lock_timeout")), True),
    (OperationalError("s", {}, psycopg.errors.QueryCanceled("statement_timeout")), True),
    (OperationalError("s", {}, psycopg.errors.DeadlockDetected("deadlock")), True),
    (OperationalError("s", {}, psycopg.errors.SerializationFailure("serialization")), True),
    (OperationalError("s", {}, psycopg.errors.AdminShutdown("shutdown")), True),
    (OperationalError("s", {}, psycopg.OperationalError("server closed the connection"),
                      connection_invalidated=True), True),
    (OperationalError("s", {}, sqlite3.OperationalError("database is locked")), True),
    (OperationalError("s", {}, sqlite3.OperationalError("no such table: alerts")), False),
    (ProgrammingError("s", {}, psycopg.errors.UndefinedTable("no such table")), False),
    (BadStoredPlan("unreadable"), False),
    (KeyError("steps"), False),
])
def test_which_errors_are_transient(error, transient):
    assert is_transient(error) is transient


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_lock_wait_puts_a_step_off_to_the_next_pass_only(stack):
    """The case row held by another transaction: the P1's re-notify due at 30 s waits for it
    `lock_timeout_ms` at most, stays due, and goes out at the next pass once the row is free
    (before, the wait ran into statement_timeout and the alert was put off by RETRY_AFTER: its
    police step due at 60 s went out at 90 s)."""
    alert = raise_panic(stack, "vic-esc-lock")
    t0 = alert.raised_at
    loop = EscalationLoop(stack.runtime, bus=RecordingBus(), lock_timeout_ms=100)
    held = _lock_case(stack, alert)
    try:
        assert loop.run_once(t0 + timedelta(seconds=30)) == 0
    finally:
        held.release()
    assert _next_escalation_at(stack, alert.id) == t0 + timedelta(seconds=30)
    assert loop.run_once(t0 + timedelta(seconds=31)) == 1
    assert loop.run_once(t0 + timedelta(seconds=60)) == 2  # desk supervisor, then the police


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_alert_failing_transiently_pass_after_pass_is_put_off_at_last(stack, caplog):
    """Bounded: after TRANSIENT_TRIES passes in a row that met a transient error, the alert
    waits RETRY_AFTER as after any other error, and says so in the log."""
    alert = raise_panic(stack, "vic-esc-stuck")
    now = alert.raised_at + timedelta(seconds=30)
    loop = EscalationLoop(stack.runtime, bus=RecordingBus(), lock_timeout_ms=20)
    held = _lock_case(stack, alert)
    try:
        with caplog.at_level(logging.WARNING, logger="backend.escalation.loop"):
            for _ in range(TRANSIENT_TRIES - 1):
                assert loop.run_once(now) == 0
                assert _next_escalation_at(stack, alert.id) == now  # due at the next pass
            assert loop.run_once(now) == 0
    finally:
        held.release()
    assert _next_escalation_at(stack, alert.id) == now + RETRY_AFTER
    lines = [r for r in caplog.records if str(alert.id) in r.getMessage()]
    assert [r.levelname for r in lines] == ["WARNING"] * (TRANSIENT_TRIES - 1) + ["ERROR"]
    assert "sqlstate 55P03" in lines[0].getMessage()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_an_alert_waiting_for_a_lock_holds_no_other_alert(stack):
    """While the pass waits for the case row of the first alert due, the next one is not held
    by it: an operator can take it (here: lock it without waiting) meanwhile. Before, the pass
    held every due alert of its batch until it committed."""
    first = raise_panic(stack, "vic-esc-wait")
    second = raise_panic(stack, "vic-esc-free")
    loop = EscalationLoop(stack.runtime, bus=RecordingBus(), lock_timeout_ms=4_000)
    held = _lock_case(stack, first)
    try:
        with ThreadPoolExecutor(1) as pool:
            carried_out = pool.submit(loop.run_once, second.raised_at + timedelta(seconds=30))
            wait_until(lambda: _waiting_for_a_lock(stack))
            operator = RowLock(stack, "SELECT 1 FROM alerts WHERE id = :id "
                               "FOR NO KEY UPDATE NOWAIT", id=second.id)
            operator.release()
            held.release()
            assert carried_out.result() == 2  # both re-notified once the case row is free
    finally:
        held.release()


def _waiting_for_a_lock(stack) -> bool:
    with stack.runtime.engine.connect() as c:
        return bool(c.scalar(text(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()")))


def test_a_p1_due_is_escalated_before_health_alerts_due_earlier(stack):
    """A pass takes `batch` alerts at most: a P1 whose step falls due just after those of a
    pile of P3 health alerts (a storm) is taken first, not in a pass after them."""
    panic = raise_panic(stack, "vic-esc-first")
    due = panic.raised_at + timedelta(seconds=30)
    with stack.runtime.sessions.begin() as s:
        for i in range(3):
            s.add(Alert(case_id=panic.case_id, device_id=panic.device_id, message_id=f"h-{i}",
                        type="device_silent", priority="P3", state="new", sequence=1,
                        raised_at=panic.raised_at, police_unit=panic.police_unit,
                        region=panic.region, flags=[], recipients=[],
                        escalation=panic.escalation, escalation_step=0,
                        next_escalation_at=due - timedelta(seconds=10 - i)))
    bus = RecordingBus()
    loop = EscalationLoop(stack.runtime, bus=bus, batch=1)
    assert loop.run_once(due) == 1
    [escalated] = bus.named("alert.escalated")
    assert escalated["alert"]["alert_id"] == str(panic.id)
