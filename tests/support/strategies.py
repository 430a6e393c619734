"""Hypothesis strategies for what a device could send: any JSON value, and objects with the
fields of the protocol's uplink messages (docs/protocol.md) holding any value."""

from __future__ import annotations

from hypothesis import strategies as st

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
