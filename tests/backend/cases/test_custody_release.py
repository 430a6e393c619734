"""Custody release over the API: the case tightens by itself. Its devices get a faster report
interval on their cmd topic (the victim's with a notice), the named contacts are notified
(case log entry), and alerts of the case go one priority step up."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import orjson

from backend.pipeline.context import AlertDraft
from device_protocol import codec
from tests.backend.cases.support import case_with_devices


def test_release_changes_device_configuration_and_notifies_contacts(stack):
    case_id = case_with_devices(stack)
    victim_cmd = stack.collector(stack.topics.cmd("cr-victim"))
    offender_cmd = stack.collector(stack.topics.cmd("cr-offender"))
    released = datetime.now(UTC) - timedelta(hours=1)

    r = stack.api().patch(
        f"/api/v1/cases/{case_id}",
        json={"custody_status": "released", "released_at": released.isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["custody_status"] == "released"

    [(_, payload, _)] = victim_cmd.wait_for(1)
    command = orjson.loads(payload)
    assert command == {
        "cmd": "config",
        "report_interval_s": 30,
        "notice": "offender_released",
    }
    assert codec.decode_command(payload).report_interval_s == 30
    [(_, payload, _)] = offender_cmd.wait_for(1)
    assert orjson.loads(payload) == {"cmd": "config", "report_interval_s": 30}

    log = stack.api().get(f"/api/v1/cases/{case_id}/log").json()
    [release] = [e for e in log if e["kind"] == "custody_release"]
    assert sorted(c["organisation"] for c in release["data"]["contacts_notified"]) == [
        "police",
        "three_ro",
    ]  # the policy's notify_contacts that the case has
    assert release["data"]["devices"] == ["cr-offender", "cr-victim"]
    assert stack.api().get(f"/api/v1/cases/{case_id}/log/verify").json()["ok"] is True

    # While tightened, an approach alert (P2 by default) goes one step up to P1, and the named
    # contacts are among its recipients.
    with stack.runtime.sessions.begin() as s:
        effects = stack.runtime.flow.raise_alerts(
            s,
            [
                AlertDraft(
                    type="approach",
                    device_id="cr-offender",
                    case_id=uuid.UUID(case_id),
                    message_id="ap-1",
                    raised_at=time.time(),
                )
            ],
        )
    stack.runtime.dispatcher.send(effects.outbox)
    [alert] = effects.alerts
    assert alert.priority == "P1"
    assert "contact" in {r["kind"] for r in alert.recipients}
    for c in (victim_cmd, offender_cmd):
        c.close()


def test_release_in_the_future_tightens_nothing_yet(stack):
    case_id = case_with_devices(stack)
    victim_cmd = stack.collector(stack.topics.cmd("cr-victim"))
    r = stack.api().patch(
        f"/api/v1/cases/{case_id}",
        json={
            "custody_status": "released",
            "released_at": (datetime.now(UTC) + timedelta(days=3)).isoformat(),
        },
    )
    assert r.status_code == 200
    time.sleep(0.5)
    assert victim_cmd.messages == []
    log = stack.api().get(f"/api/v1/cases/{case_id}/log").json()
    assert [e["kind"] for e in log][-1] == "measure"
    victim_cmd.close()
