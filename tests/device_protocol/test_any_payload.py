"""Any JSON a device can send: strict decoding gives a model or a ProtocolError, never another
error, and an alarm is always decoded (safety invariants 2 and 5)."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from device_protocol import codec
from device_protocol.errors import ProtocolError
from device_protocol.models import Alarm
from tests.support.strategies import JSON_VALUES, UPLINK_OBJECTS

BODIES = st.one_of(UPLINK_OBJECTS, JSON_VALUES)


@settings(max_examples=400, suppress_health_check=list(HealthCheck), deadline=None)
@given(BODIES)
def test_any_json_decodes_or_is_a_protocol_error(body) -> None:
    payload = json.dumps(body).encode()  # json: integers beyond 64 bits too
    for decode in (codec.decode_fixes, codec.decode_status, codec.decode_alarm,
                   codec.decode_owntracks):
        try:
            decode(payload)
        except ProtocolError:
            pass
    lenient = codec.decode_alarm_lenient(payload)
    assert isinstance(lenient.alarm, Alarm) and lenient.alarm.id


@settings(max_examples=200, suppress_health_check=list(HealthCheck), deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_still_raise_an_alarm(payload: bytes) -> None:
    lenient = codec.decode_alarm_lenient(payload)
    assert lenient.alarm.id
    assert lenient.alarm.id == codec.decode_alarm_lenient(payload).alarm.id  # stable
