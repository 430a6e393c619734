"""Hypothesis strategies for what a device could send: any JSON value, objects with the
fields of the protocol's uplink messages (docs/protocol.md) holding any value, and valid
messages of every kind with one field made hostile (`mutated`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from device_protocol import ACK_STATES, ALARM_KINDS
from device_protocol.models import MAX_PAYLOAD_BYTES

SCALARS = st.one_of(
    st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=40),
)
JSON_VALUES = st.recursive(
    SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
        st.text(max_size=8), inner, max_size=4),
    max_leaves=8,
)
# The fields of every uplink message, and one no message has.
UPLINK_KEYS = st.sampled_from(["id", "kind", "tst", "lat", "lon", "acc", "batt", "vel", "fixes",
                               "online", "charging", "tamper", "rssi", "fw", "_type", "x"])
UPLINK_OBJECTS = st.dictionaries(UPLINK_KEYS, JSON_VALUES, max_size=8)

# -- valid messages ------------------------------------------------------------------------------
TST = st.floats(min_value=1e9, max_value=1e10, exclude_min=True, exclude_max=True)
LAT = st.floats(min_value=-90, max_value=90)
LON = st.floats(min_value=-180, max_value=180)
ACC = st.floats(min_value=0, max_value=100_000)
BATT = st.integers(min_value=0, max_value=100)
# Any script, spaces included; no control characters (C0, DEL, C1) nor lone surrogates.
MESSAGE_ID = st.text(st.characters(blacklist_categories=("Cc", "Cs")), min_size=1, max_size=64)
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
    "NaN", "-NaN", "Infinity", "-Infinity", "nan", "-nan", "inf", "-inf", "1e400", "-1e400",
    "1e-400", "1" * 400, "01", "+1", ".5", "0x10", '"\\ud800"', '"\\udc00"', '"\\u0000"',
    '"\\u0085"', '"\\u202e"', '"\\ufeff"',
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
