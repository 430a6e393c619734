"""The alarm path rehearsed at start: it runs the raise and the follow-up, and leaves nothing
behind (no rows, no messages, no last fix, no "alert raised" log line)."""

from __future__ import annotations

import logging
import time

from sqlalchemy import func, select

from backend.alerts.models import Alert, AlertEvent, OutboxMessage
from backend.caselog.models import CaseLogEntry
from backend.ingest.rehearsal import rehearse_alarm
from tests.support.webhooks import (  # noqa: F401 - fixtures used below
    receivers,
    subscribe,
    webhooks,
)


def _rows(stack) -> dict[str, int]:
    with stack.runtime.sessions() as s:
        return {model.__tablename__: s.scalar(select(func.count()).select_from(model))
                for model in (Alert, AlertEvent, OutboxMessage, CaseLogEntry)}


def test_a_rehearsal_runs_the_alarm_path_and_leaves_nothing_behind(webhooks, receivers, caplog):
    stack = webhooks
    stack.register("vic-reh")
    stack.runtime.directory.load_all()  # as at a worker's start
    receiver = receivers()
    subscribe(stack.api(), receiver)
    police = stack.collector(stack.topics.police_filter())
    before = _rows(stack)
    raised = []
    original = stack.runtime.flow.raise_alerts

    def noting(session, drafts, **kw):
        effects = original(session, drafts, **kw)
        raised.extend(effects.alerts)
        return effects

    stack.runtime.flow.raise_alerts = noting
    try:
        with caplog.at_level(logging.INFO):
            took = rehearse_alarm(stack.runtime)
    finally:
        stack.runtime.flow.raise_alerts = original
    assert took is not None and took > 0
    assert [(a.type, a.device_id) for a in raised] == [("panic", "vic-reh")]
    time.sleep(0.5)  # anything published or sent would have arrived by now
    assert _rows(stack) == before
    assert police.messages == [] and receiver.requests == 0
    assert stack.runtime.state.get_last_fix("vic-reh") is None
    assert not [r for r in caplog.records if "alert raised" in r.getMessage()]
    police.close()


def test_without_a_victim_device_there_is_nothing_to_rehearse(stack):
    stack.register("off-only", role="offender")
    stack.runtime.directory.load_all()
    assert rehearse_alarm(stack.runtime) is None
