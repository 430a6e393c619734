"""Two operators acknowledge the same alert at the same moment (PostgreSQL, real concurrency):
one transition, one timeline entry, one case log entry; the other call is an idempotent no-op."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select

from backend.alerts.models import Alert, AlertEvent
from backend.caselog import service as caselog
from device_protocol import Alarm, codec
from tests.support.mqtt import publish


@pytest.mark.services
@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_concurrent_acknowledgements_make_one_transition(stack):
    stack.register("vic-race")
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-race")
    for n in range(5):
        publish(
            device,
            stack.topics.alarm("vic-race"),
            codec.encode(Alarm(id=f"r-{n}", tst=time.time())),
        )
    police.wait_for(5)
    with stack.runtime.sessions() as s:
        alert_ids = list(
            s.scalars(select(Alert.id).where(Alert.device_id == "vic-race"))
        )
    rt = stack.runtime

    for alert_id in alert_ids:
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def acknowledge(who: str, alert_id=alert_id, barrier=barrier, errors=errors) -> None:
            try:
                barrier.wait()
                with rt.sessions.begin() as s:
                    rt.flow.transition(s, alert_id, "acknowledge", actor=who)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [
            threading.Thread(target=acknowledge, args=(f"op-{i}",)) for i in range(2)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(10)
        assert errors == []
        with rt.sessions() as s:
            alert = s.get(Alert, alert_id)
            assert alert.state == "acknowledged" and alert.sequence == 2
            events = list(
                s.scalars(
                    select(AlertEvent).where(
                        AlertEvent.alert_id == alert_id, AlertEvent.kind == "transition"
                    )
                )
            )
            assert len(events) == 1
            logged = [
                e
                for e in caselog.entries(s, alert.case_id)
                if e.alert_id == alert_id and e.kind == "transition"
            ]
            assert len(logged) == 1
    with rt.sessions() as s:
        assert caselog.verify(s, alert.case_id).ok
    police.close()
    device.disconnect()
