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
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel

from device_protocol import ACK_STATES, ALARM_KINDS, ProtocolError, codec
from device_protocol.models import MAX_PAYLOAD_BYTES, Alarm, Fix
from tests.support.strategies import JSON_VALUES

BOUNDED = settings(max_examples=250, suppress_health_check=list(HealthCheck), deadline=None)

# -- valid messages ------------------------------------------------------------------------------
TST = st.floats(min_value=1e9, max_value=1e10, exclude_min=True, exclude_max=True)
LAT = st.floats(min_value=-90, max_value=90)
LON = st.floats(min_value=-180, max_value=180)
ACC = st.floats(min_value=0, max_value=100_000)
BATT = st.integers(min_value=0, max_value=100)
MESSAGE_ID = st.text(st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1,
                     max_size=64)
FIX = st.fixed_dictionaries(
    {"tst": TST, "lat": LAT, "lon": LON},
    optional={"acc": ACC, "vel": st.floats(min_value=0, max_value=350), "batt": BATT})
VALID: dict[str, st.SearchStrategy[dict[str, Any]]] = {
    "fix": FIX,
    "batch": st.fixed_dictionaries({"fixes": st.lists(FIX, min_size=1, max_size=5)}),
    "alarm": st.fixed_dictionaries(
        {"id": MESSAGE_ID},
        optional={"kind": st.sampled_from(ALARM_KINDS), "tst": TST, "lat": LAT, "lon": LON,
                  "acc": ACC, "batt": BATT}),
    "status": st.fixed_dictionaries({}, optional={
        "tst": TST, "online": st.booleans(), "batt": BATT, "charging": st.booleans(),
        "tamper": st.booleans(), "rssi": st.integers(-200, 0),
        "fw": st.text(st.characters(blacklist_categories=("Cs", "Cc")), max_size=64)}),
    "owntracks": st.fixed_dictionaries(
        {"_type": st.just("location"), "tst": TST, "lat": LAT, "lon": LON},
        optional={"acc": ACC, "vel": st.floats(min_value=0, max_value=1_300), "batt": BATT}),
    "ack": st.fixed_dictionaries(
        {"ref": MESSAGE_ID, "state": st.sampled_from(ACK_STATES), "tst": TST}),
    "config": st.fixed_dictionaries(
        {"cmd": st.just("config"), "report_interval_s": st.integers(1, 86_400)},
        optional={"notice": st.text(max_size=40)}),
    "warn": st.fixed_dictionaries(
        {"cmd": st.just("warn"), "reason": st.sampled_from(["proximity", "zone"]),
         "ref": MESSAGE_ID}),
}
# The fields of every message, and one no message has.
FIELDS = ["id", "kind", "tst", "lat", "lon", "acc", "vel", "batt", "online", "charging",
          "tamper", "rssi", "fw", "fixes", "_type", "ref", "state", "cmd", "report_interval_s",
          "reason", "notice", "x"]


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

# -- hostile values, as JSON text (so that NaN, numbers beyond 64 bits, escapes and nesting
# deeper than any encoder writes can be sent) ----------------------------------------------------
EDGE_NUMBERS = [
    0, -0.0, -1, 1, 5e-324, -5e-324, 1e308, -1e308, 2**53 + 1, 2**63, 2**64, 2**64 + 1,
    -(2**63) - 1, 10**30, 999_999_999.999, 1_000_000_000, 1_000_000_000.000001,
    9_999_999_999.999998, 10_000_000_000, 253_402_300_799, 253_402_300_800, -62_135_596_800,
    90, 90.000001, -90.000001, 180, 180.000001, -180.000001, 100, 101, 100.0, 350.000001,
    1_300.0001, 86_400, 86_401, -200, -201, 100_000, 100_000.001,
]
RAW_FRAGMENTS = [
    "NaN", "-NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e-400", "1" * 400, "01", "+1",
    ".5", "0x10", '"\\ud800"', '"\\udc00"', '"\\u0000"', '"\\u0085"', '"\\u202e"', '"\\ufeff"',
    '"51.92"', '""', "true", "false", "null", "[]", "{}", '"panic"',
]
SCALAR_TEXT = st.one_of(
    st.sampled_from(EDGE_NUMBERS).map(json.dumps),
    st.sampled_from(RAW_FRAGMENTS),
    st.floats().map(lambda v: json.dumps(v, allow_nan=True)),
    st.integers(min_value=-(2**80), max_value=2**80).map(json.dumps),
    st.text(max_size=80).map(json.dumps),
    st.integers(min_value=60, max_value=MAX_PAYLOAD_BYTES + 64).map(
        lambda n: json.dumps("x" * n)),
)
NESTED_TEXT = st.tuples(st.integers(1, 1100), st.booleans()).map(
    lambda t: "[" * t[0] + "]" * t[0] if t[1] else '{"a":' * t[0] + "1" + "}" * t[0])
HOSTILE_TEXT = st.one_of(SCALAR_TEXT, NESTED_TEXT, JSON_VALUES.map(json.dumps))


@dataclass(frozen=True)
class Mutated:
    kind: str  # of the valid message
    base: dict[str, Any]  # the valid message
    key: str  # the field made hostile
    value: str  # its hostile value, as JSON text
    how: str
    payload: bytes


@st.composite
def mutated(draw: st.DrawFn) -> Mutated:
    """A valid message with one field made hostile: replaced, or sent twice (before or after
    the valid one: the last one counts)."""
    kind = draw(st.sampled_from(sorted(VALID)))
    base = draw(VALID[kind])
    key = draw(st.sampled_from([*base, *FIELDS]))
    value = draw(HOSTILE_TEXT)
    how = draw(st.sampled_from(["replace", "duplicate_after", "duplicate_before"]))
    kept = {k: v for k, v in base.items() if how != "replace" or k != key}
    members = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in kept.items()]
    hostile = f"{json.dumps(key)}:{value}"
    members = [hostile, *members] if how == "duplicate_before" else [*members, hostile]
    return Mutated(kind, base, key, value, how, ("{" + ",".join(members) + "}").encode())


# -- what a decoder may answer -------------------------------------------------------------------
CLEAR = re.compile(r"(invalid fields: [\w.(), ]+|payload .+|.*not .+)")


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


@pytest.mark.parametrize("depth", [1, 254, 255, 900, 1024, 1025])
def test_an_alarm_with_a_deeply_nested_field(depth) -> None:
    nested = ("[" * depth + "]" * depth).encode()
    result = codec.decode_alarm_lenient(b'{"id":"a1","kind":' + nested + b"}")
    assert_within_contract("alarm", result.alarm)
    if depth <= 900:  # deeper than any JSON reader here goes: the body is unreadable
        assert result.alarm.id == "a1" and result.issues == ("invalid_kind",)


@pytest.mark.parametrize(("body", "issues"), [
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"acc":NaN}',
     ("invalid_acc",)),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"batt":-Infinity}',
     ("invalid_batt",)),
    (b'{"id":"a7","kind":"fall","tst":1795000000,"lat":51.9,"lon":4.4,"x":1e400}', ()),
])
def test_an_alarm_with_a_number_json_does_not_allow_keeps_the_rest(body, issues) -> None:
    """Firmware printing a missing value as C does (NaN, inf) still has its alarm's id, kind,
    time and position read."""
    result = codec.decode_alarm_lenient(body)
    alarm = result.alarm
    assert (alarm.id, alarm.kind, alarm.tst, alarm.lat, alarm.lon) == (
        "a7", "fall", 1795000000, 51.9, 4.4)
    assert result.issues == issues


@pytest.mark.parametrize("tst", [1_000_000_000, 10_000_000_000, 253_402_300_800, -1, 0])
def test_times_at_the_edges_of_the_range_are_refused(tst) -> None:
    assert _decoded("loc", json.dumps({"tst": tst, "lat": 1, "lon": 1}).encode()) is None


def test_times_just_inside_the_range_are_kept() -> None:
    for tst in (1_000_000_000.000001, 9_999_999_999.999998):
        [fix] = _decoded("loc", json.dumps({"tst": tst, "lat": 1, "lon": 1}).encode()) or []
        assert isinstance(fix, Fix) and fix.tst == tst
