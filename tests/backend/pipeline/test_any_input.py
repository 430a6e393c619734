"""Any message on any topic: the pipeline decides (accepts, rejects, ignores), it never raises,
and an alarm of a registered device always becomes an alert draft (safety invariants 2 and 5)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.backend.pipeline.test_steps import NOW, device, make, raw
from device_protocol.models import MAX_PAYLOAD_BYTES
from tests.support.strategies import JSON_VALUES, UPLINK_OBJECTS, mutated

FIX = st.fixed_dictionaries(
    {"tst": st.one_of(st.floats(allow_nan=False), st.integers(), st.just(NOW)),
     "lat": st.floats(-100, 100), "lon": st.floats(-200, 200)},
    optional={"acc": JSON_VALUES, "vel": JSON_VALUES, "batt": JSON_VALUES},
)
BATCHES = st.fixed_dictionaries({"fixes": st.lists(st.one_of(FIX, JSON_VALUES), max_size=5)})
BODIES = st.one_of(UPLINK_OBJECTS, FIX, BATCHES)
ALARM = "sd/v1/dev/vic-001/alarm"
TOPICS = st.sampled_from([ALARM, "sd/v1/dev/vic-001/loc", "sd/v1/dev/vic-001/status",
                          "sd/v1/dev/off-001/loc", "sd/v1/dev/unknown/alarm",
                          "owntracks/anna/phone", "owntracks/x/y", "sd/v1/dev//alarm",
                          "sd/v1/x", "garbage"])
PIPELINE, _ = make(None, device(), device("off-001", role="offender"))


@settings(max_examples=500, suppress_health_check=list(HealthCheck), deadline=None)
@given(TOPICS, BODIES, st.floats(1.7e9, 1.9e9))
def test_any_message_is_decided_and_an_alarm_is_always_raised(topic, body, at) -> None:
    ctx = PIPELINE.run(raw(topic, json.dumps(body).encode(), at))
    if topic == ALARM:
        assert ctx.rejection is None and len(ctx.alerts) == 1


# Each kind of message on the topic it belongs on; downlink messages sent up on an alarm topic.
TOPIC_OF = {"fix": "sd/v1/dev/vic-001/loc", "batch": "sd/v1/dev/vic-001/loc",
            "status": "sd/v1/dev/vic-001/status", "owntracks": "owntracks/anna/phone",
            "alarm": ALARM, "ack": ALARM, "config": ALARM, "warn": ALARM}
REASONS = {"topic_payload_mismatch", "payload_too_large", "malformed_payload", "invalid_payload"}


@settings(max_examples=250, suppress_health_check=list(HealthCheck), deadline=None)
@given(mutated())
def test_a_message_with_one_hostile_field_is_decided_and_an_alarm_keeps_its_fix(case) -> None:
    """A valid message with one field made hostile is rejected for a reason of the protocol's,
    or taken; an alarm is raised, and with its own fix when its position was not the field."""
    topic = TOPIC_OF[case.kind]
    ctx = PIPELINE.run(raw(topic, case.payload, NOW))
    if topic != ALARM:
        assert ctx.rejection is None or ctx.rejection.reason in REASONS, ctx.rejection
        return
    assert ctx.rejection is None
    [draft] = ctx.alerts
    base = case.base
    if case.kind != "alarm" or len(case.payload) > MAX_PAYLOAD_BYTES:
        return
    if case.key != "id":
        assert draft.message_id == base["id"]
    if {"lat", "lon"} <= base.keys() and case.key not in ("lat", "lon"):
        assert draft.location_source == "alarm"
        assert (draft.lat, draft.lon) == (base["lat"], base["lon"])
