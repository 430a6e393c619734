"""The delivery hook's subscriptions: kept read by the watch, so that a raise reads none."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import event

from backend.alerts.document import alert_document
from backend.alerts.models import Alert
from backend.db.migrate import upgrade
from backend.police import cap
from backend.runtime import Runtime
from backend.settings import Settings
from backend.subscriptions.hook import DeliveryHook, SubscriptionWatch
from backend.subscriptions.models import Subscription
from tests.support.db import sqlite_sessions, statements
from tests.support.waiting import wait_until


@pytest.fixture
def sessions(tmp_path: Path):
    yield from sqlite_sessions(tmp_path)


@pytest.fixture
def hook(sessions) -> DeliveryHook:
    with sessions.begin() as s:
        s.add(Subscription(id=uuid.uuid4(), name="police", url="http://127.0.0.1:9/x",
                           secret="whsec_" + "A" * 43 + "=", format="json"))
    return DeliveryHook(cap.CapProfile(sender="schildwacht@example.nl"), "test", ["P1"])


def _deliveries(hook: DeliveryHook, sessions) -> int:
    """How many delivery rows the hook plans for a new panic alert."""
    now = datetime.now(UTC)
    alert = Alert(id=uuid.uuid4(), type="panic", priority="P1", state="new", sequence=1,
                  raised_at=now, updated_at=now, flags=[], exercise=False, police_unit="RE07")
    with sessions() as s:
        companions = hook.prepare(s, alert, alert_document(alert, device_role="victim"))
    return sum(len(rows) for _table, rows in companions)


def _subscription_reads(seen: list[str]) -> int:
    return sum("FROM subscriptions" in statement for statement in seen)


def test_a_raise_reads_no_subscriptions_while_the_watch_keeps_them(hook, sessions):
    assert SubscriptionWatch(hook, sessions).run_once() == 1
    seen = statements(sessions)
    assert _deliveries(hook, sessions) == 1
    assert _subscription_reads(seen) == 0


def test_without_a_fresh_list_the_raise_reads_them_itself(hook, sessions):
    SubscriptionWatch(hook, sessions).run_once()
    hook.forget()  # as after a change through this process's API
    seen = statements(sessions)
    assert _deliveries(hook, sessions) == 1
    assert _subscription_reads(seen) == 1
    assert _deliveries(hook, sessions) == 1
    assert _subscription_reads(seen) == 1  # kept from then on


def test_a_list_read_across_a_change_is_not_kept(hook, sessions):
    """A change made through the API while the watch was reading: what the watch read may
    predate it, so the next raise reads again."""
    def change_meanwhile(*_):
        hook.forget()

    event.listen(sessions.kw["bind"], "before_cursor_execute", change_meanwhile)
    try:
        SubscriptionWatch(hook, sessions).run_once()
    finally:
        event.remove(sessions.kw["bind"], "before_cursor_execute", change_meanwhile)
    seen = statements(sessions)
    assert _deliveries(hook, sessions) == 1
    assert _subscription_reads(seen) == 1


def test_a_started_runtime_keeps_them_read(tmp_path: Path):
    """`Runtime.start_background` starts the watch: the subscriptions are read with no raise."""
    url = f"sqlite:///{tmp_path}/runtime.db"
    upgrade(url)
    runtime = Runtime.build(Settings(database={"url": url}))
    seen = statements(runtime.sessions)
    runtime.start_background(loops=False)
    try:
        wait_until(lambda: _subscription_reads(seen) >= 2, timeout=10)  # read, then again
    finally:
        runtime.close()


@pytest.mark.parametrize("filtered", ["RE99", "RE07"])
def test_a_unit_the_escalation_called_gets_the_alert_on_its_unit_filtered_webhook(
    sessions, filtered
):
    """An alert the desk had alone, in RE07's region, whose escalation called RE99 (as its
    feed hears of it, `police_told`): RE99's webhook filtered to its unit gets the escalation's
    message and every later one, none before the step; so does RE07's, the unit of its place,
    which reads it only once the police were told of it (`told_police`)."""
    with sessions.begin() as s:
        s.add(Subscription(id=uuid.uuid4(), name=filtered, url="http://127.0.0.1:9/x",
                           secret="whsec_" + "A" * 43 + "=", format="json",
                           police_units=[filtered]))
    hook = DeliveryHook(cap.CapProfile(sender="schildwacht@example.nl"), "test", ["P1"])
    desk = {"kind": "vt_desk", "code": "VT4607", "reason": "test"}
    unit = {"kind": "police_unit", "code": "RE99", "reason": "test"}
    now = datetime.now(UTC)
    alert = Alert(id=uuid.uuid4(), type="approach", priority="P1", state="new", sequence=1,
                  raised_at=now, updated_at=now, flags=[], exercise=False, police_unit="RE07",
                  recipients=[desk], escalation_step=0, escalation={"steps": [
                      {"index": 0, "target": "primary", "recipients": [desk]},
                      {"index": 3, "target": "police_unit", "recipients": [unit]}]})

    def planned() -> int:
        with sessions() as s:
            companions = hook.prepare(s, alert, alert_document(alert, device_role="victim"))
        return sum(len(rows) for _table, rows in companions)

    assert planned() == 0
    # The step to the police carried out: past it, and told (as the escalation loop marks it).
    alert.escalation_step, alert.sequence, alert.told_police = 3, 2, True
    assert planned() == 1
