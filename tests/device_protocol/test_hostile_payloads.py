"""Hostile input to every decoder of the protocol: arbitrary bytes, and valid messages with one
field made hostile (wrong type, out of range, NaN and infinity, huge numbers, deep nesting, long
or odd text, duplicated keys, times at the edges). Each decoder gives a message within the
contract or a ProtocolError with a clear message, never another exception (safety invariant 5);
the lenient alarm decoder always gives an alarm, and keeps its id and every readable field
(safety invariant 2)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from device_protocol import ProtocolError, codec
from device_protocol.models import MAX_PAYLOAD_BYTES, Alarm, Fix
from tests.support.strategies import VALID, Mutated, mutated

BOUNDED = settings(max_examples=250, suppress_health_check=list(HealthCheck), deadline=None)


def _decode_loc(payload: bytes) -> list[BaseModel]:
    return list(codec.decode_fixes(payload))


def _decode_owntracks(payload: bytes) -> list[BaseModel]:
    fix = codec.decode_owntracks(payload)
    return [] if fix is None else [fix]


def _one(decode: Callable[[bytes], BaseModel]) -> Callable[[bytes], list[BaseModel]]:
    return lambda payload: [decode(payload)]


DECODERS: dict[str, Callable[[bytes], list[BaseModel]]] = {
    "loc": _decode_loc, "status": _one(codec.decode_status), "alarm": _one(codec.decode_alarm),
    "owntracks": _decode_owntracks, "ack": _one(codec.decode_ack),
    "command": _one(codec.decode_command),
}
DECODER_OF = {"fix": "loc", "batch": "loc", "alarm": "alarm", "status": "status",
              "owntracks": "owntracks", "ack": "ack", "config": "command", "warn": "command"}

# What a refusal may say: field names (list positions too), sizes, never a value.
CLEAR = re.compile(r"invalid fields: [\w.(), ]+|payload of \d+ bytes exceeds \d+"
                   r"|payload is not (UTF-8 JSON|a JSON object)")


def _decoded(decoder: str, payload: bytes) -> list[BaseModel] | None:
    """The decoded messages, each checked to be within the contract, or None for a clear
    ProtocolError. Any other exception fails the test."""
    try:
        messages = DECODERS[decoder](payload)
    except ProtocolError as exc:
        assert CLEAR.fullmatch(str(exc)), f"unclear error: {exc}"
        return None
    for message in messages:
        assert_within_contract(decoder, message)
    return messages


def assert_within_contract(decoder: str, message: BaseModel) -> None:
    """Valid against its own model (every number finite and in range), and the same message
    after an encoding and a decoding (fields without a value are not written)."""
    model = type(message)
    assert model.model_validate(message.model_dump(by_alias=True)) == message
    encoded = codec.encode(message)
    [again] = DECODERS["loc" if decoder == "owntracks" else decoder](encoded)
    assert codec.encode(again) == encoded


@BOUNDED
@given(st.sampled_from(sorted(VALID)).flatmap(
    lambda kind: st.tuples(st.just(kind), VALID[kind])))
def test_every_valid_message_decodes(kind_and_body) -> None:
    kind, body = kind_and_body
    messages = _decoded(DECODER_OF[kind], json.dumps(body).encode())
    assert messages, f"a valid {kind} was refused"


@BOUNDED
@given(st.binary(max_size=400))
def test_any_bytes_decode_or_are_refused(payload: bytes) -> None:
    for decoder in DECODERS:
        _decoded(decoder, payload)


@BOUNDED
@given(mutated())
def test_a_message_with_one_hostile_field_decodes_or_is_refused(case: Mutated) -> None:
    for decoder in DECODERS:
        messages = _decoded(decoder, case.payload)
        if messages and decoder == DECODER_OF[case.kind]:
            assert_taken_as_sent(case, messages)


def assert_taken_as_sent(case: Mutated, messages: list[BaseModel]) -> None:
    """A hostile value a decoder accepts is taken as sent, not converted: no flag from a
    number, no number from a flag or a text (a whole number may stand for a fractional one)."""
    if case.how == "duplicate_before" or case.kind in ("batch", "owntracks"):
        return
    [message] = messages
    if case.key not in {*type(message).model_fields, *(message.model_extra or {})}:
        return
    sent = orjson.loads(case.value)  # as the decoder read it (beyond 64 bits: a float)
    kept = getattr(message, case.key)
    assert type(kept) is type(sent) or (type(kept), type(sent)) == (float, int), (
        f"{case.key}: {type(sent).__name__} taken as {type(kept).__name__}")
    assert kept == sent


@BOUNDED
@given(mutated())
def test_an_alarm_keeps_its_id_and_every_field_not_made_hostile(case: Mutated) -> None:
    kind, base, key, payload = case.kind, case.base, case.key, case.payload
    result = codec.decode_alarm_lenient(payload)
    assert_within_contract("alarm", result.alarm)
    assert set(result.issues) <= ISSUES
    if kind != "alarm" or len(payload) > MAX_PAYLOAD_BYTES:
        return
    alarm = result.alarm
    if key != "id":
        assert alarm.id == base["id"]
    untouched = {k: v for k, v in base.items() if k != key and k in Alarm.model_fields}
    if key in ("lat", "lon") or not {"lat", "lon"} <= base.keys():  # only as a pair
        untouched = {k: v for k, v in untouched.items() if k not in ("lat", "lon")}
    assert {k: getattr(alarm, k) for k in untouched} == untouched


ISSUES = {"payload_too_large", "malformed_body", "invalid_id", "incomplete_position",
          *(f"invalid_{name}" for name in ("kind", "tst", "lat", "lon", "acc", "batt"))}


@pytest.mark.parametrize("depth", [1, 254, 255, 1023, 1024, 1025])
def test_an_alarm_with_a_deeply_nested_field(depth) -> None:
    nested = ("[" * depth + "]" * depth).encode()
    result = codec.decode_alarm_lenient(b'{"id":"a1","kind":' + nested + b"}")
    assert_within_contract("alarm", result.alarm)
    if depth < 1024:  # with the body's own level, deeper than the reader goes: unreadable
        assert result.alarm.id == "a1" and result.issues == ("invalid_kind",)


@pytest.mark.parametrize(("body", "issues"), [
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"acc":NaN}',
     ("invalid_acc",)),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"batt":-Infinity}',
     ("invalid_batt",)),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"x":1e400}', ()),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"acc":-nan,"batt":inf}',
     ("invalid_acc", "invalid_batt")),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"acc":.5,"batt":07}',
     ("invalid_acc", "invalid_batt")),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"acc":unknown}',
     ("invalid_acc",)),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"x":['
     + b"nan," * 15 + b"nan]}", ()),
])
def test_an_alarm_with_a_value_json_does_not_allow_keeps_the_rest(body, issues) -> None:
    """Firmware printing a missing or odd value as C (nan, inf, 07) or JavaScript (NaN,
    Infinity) does still has its alarm's id, kind, time and position read."""
    result = codec.decode_alarm_lenient(body)
    alarm = result.alarm
    assert (alarm.id, alarm.kind, alarm.tst, alarm.lat, alarm.lon) == (
        "a7", "fall", 1795000000, 51.9, 4.4)
    assert result.issues == issues


def test_an_alarm_with_more_values_json_does_not_allow_than_are_read_is_unreadable() -> None:
    body = b'{"id":"a7","lat":51.9,"lon":4.4,"x":[' + b"nan," * 16 + b"nan]}"
    result = codec.decode_alarm_lenient(body)
    assert result.issues == ("malformed_body",) and result.alarm.id.startswith("body-")


@pytest.mark.parametrize("tst", [1_000_000_000, 10_000_000_000, 253_402_300_800, -1, 0])
def test_times_at_the_edges_of_the_range_are_refused(tst) -> None:
    assert _decoded("loc", json.dumps({"tst": tst, "lat": 1, "lon": 1}).encode()) is None


def test_times_just_inside_the_range_are_kept() -> None:
    for tst in (1_000_000_000.000001, 9_999_999_999.999998):
        [fix] = _decoded("loc", json.dumps({"tst": tst, "lat": 1, "lon": 1}).encode()) or []
        assert isinstance(fix, Fix) and fix.tst == tst
