"""The JSON format: a CloudEvents 1.0 structured event whose data is the alert document."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
import pytest
from cloudevents.core.formats.json import JSONFormat

from backend.police import cloudevent
from backend.police.errors import DocumentError

MakeAlert = Callable[..., dict[str, Any]]


def test_first_message_attributes(make_alert: MakeAlert) -> None:
    alert = make_alert()
    event = orjson.loads(cloudevent.render(alert))
    assert event["specversion"] == "1.0"
    assert event["id"] == f"{alert['alert_id']}/1"
    assert event["source"] == "urn:schildwacht:backend"
    assert event["type"] == "nl.schildwacht.alert.panic.raised"
    assert event["time"] == "2026-11-28T18:00:00.123+00:00"
    assert event["subject"] == alert["alert_id"]
    assert event["datacontenttype"] == "application/json"
    assert event["sequence"] == 1
    assert event["data"] == alert


def test_the_sdk_reads_our_event_back(make_alert: MakeAlert) -> None:
    alert = make_alert(sequence=2, state="acknowledged", updated_at="2026-11-28T18:00:40+01:00")
    event = JSONFormat().read(None, cloudevent.render(alert, source="urn:schildwacht:test"))
    assert event.get_id() == f"{alert['alert_id']}/2"
    assert event.get_source() == "urn:schildwacht:test"
    assert event.get_type() == "nl.schildwacht.alert.panic.updated"
    time = event.get_time()
    assert time is not None
    assert time.isoformat() == "2026-11-28T17:00:40+00:00"
    assert event.get_extension("sequence") == 2
    assert event.get_data() == alert


@pytest.mark.parametrize(
    ("sequence", "state", "suffix"),
    [
        (1, "new", "raised"),
        (2, "acknowledged", "updated"),
        (3, "dispatched", "updated"),
        (4, "resolved", "closed"),
        (2, "false_alarm", "closed"),
        (2, "cancelled", "closed"),
    ],
)
def test_type_follows_the_lifecycle(
    make_alert: MakeAlert, sequence: int, state: str, suffix: str
) -> None:
    alert = make_alert(type="zone_breach", sequence=sequence, state=state)
    assert cloudevent.event_type(alert) == f"nl.schildwacht.alert.zone_breach.{suffix}"


def test_id_is_stable_per_alert_and_sequence(make_alert: MakeAlert) -> None:
    assert cloudevent.render(make_alert()) == cloudevent.render(make_alert())
    ids = {cloudevent.event_id(make_alert(sequence=n)) for n in (1, 2, 3)}
    assert len(ids) == 3


def test_an_escalation_is_an_event_of_its_own(make_alert: MakeAlert) -> None:
    escalation = {"step": 3, "action": "escalate", "target": "police_unit", "after_s": 60}
    alert = make_alert(escalation=escalation)
    event = JSONFormat().read(None, cloudevent.render(alert))
    # The raise's sequence, yet not its id: a receiver that deduplicates on the id keeps it.
    assert event.get_id() == f"{alert['alert_id']}/1/escalation/3"
    assert event.get_id() != cloudevent.event_id(make_alert())
    assert event.get_type() == "nl.schildwacht.alert.panic.escalated"
    assert event.get_extension("sequence") == 1
    time = event.get_time()
    assert time is not None and time.isoformat() == "2026-11-28T18:01:00.123000+00:00"
    assert event.get_data() == alert
    closed = make_alert(sequence=2, state="resolved", escalation=escalation)
    assert cloudevent.event_type(closed) == "nl.schildwacht.alert.panic.closed"


def test_minimal_document_without_optional_parts(make_alert: MakeAlert) -> None:
    alert = {
        "alert_id": "a1",
        "sequence": 1,
        "type": "panic",
        "priority": "P1",
        "state": "new",
        "raised_at": "2026-11-28T18:00:00+00:00",
        "location": None,
    }
    event = orjson.loads(cloudevent.render(alert))
    assert event["data"]["location"] is None


@pytest.mark.parametrize("missing", ["alert_id", "sequence", "type", "state", "raised_at"])
def test_missing_required_field_is_a_document_error(make_alert: MakeAlert, missing: str) -> None:
    alert = make_alert()
    del alert[missing]
    with pytest.raises(DocumentError):
        cloudevent.render(alert)


def test_times_without_offset_are_read_as_utc(make_alert: MakeAlert) -> None:
    alert = make_alert(sequence=2, state="acknowledged", updated_at="2026-11-28T18:00:41.500")
    assert orjson.loads(cloudevent.render(alert))["time"] == "2026-11-28T18:00:41.500+00:00"
    with pytest.raises(DocumentError):
        cloudevent.render(make_alert(raised_at="yesterday"))
