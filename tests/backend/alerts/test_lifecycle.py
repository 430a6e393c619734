from __future__ import annotations

import pytest

from backend.alerts.lifecycle import (
    ACTIONS,
    DEVICE_ACK_STATE,
    Outcome,
    already_reported,
    decide,
)

STATES = ["new", "acknowledged", "dispatched", "resolved", "false_alarm", "cancelled"]
EXPECTED = {  # (state, action) -> outcome; everything not listed is invalid
    ("new", "acknowledge"): Outcome.APPLY,
    ("acknowledged", "acknowledge"): Outcome.NOOP,
    ("new", "dispatch"): Outcome.APPLY,
    ("acknowledged", "dispatch"): Outcome.APPLY,
    ("dispatched", "dispatch"): Outcome.NOOP,
    **{(s, a): Outcome.APPLY for s in ("new", "acknowledged", "dispatched")
       for a in ("resolve", "false_alarm", "cancel")},
    ("resolved", "resolve"): Outcome.NOOP,
    ("false_alarm", "false_alarm"): Outcome.NOOP,
    ("cancelled", "cancel"): Outcome.NOOP,
}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("action", sorted(ACTIONS))
def test_every_state_and_action(state, action):
    assert decide(state, action).outcome is EXPECTED.get((state, action), Outcome.INVALID)


def test_unknown_action_is_a_programming_error():
    with pytest.raises(ValueError):
        decide("new", "explode")


def test_every_state_tells_the_device_a_protocol_ack_state():
    from device_protocol import ACK_STATES

    assert set(DEVICE_ACK_STATE) == set(STATES)
    assert set(DEVICE_ACK_STATE.values()) <= set(ACK_STATES)


@pytest.mark.parametrize(("action", "acknowledged", "dispatched", "covered"), [
    ("acknowledge", False, False, False),
    ("acknowledge", True, False, True),
    ("acknowledge", False, True, True),  # dispatched from new: a unit sent covers it
    ("dispatch", True, False, False),
    ("dispatch", False, True, True),
    ("resolve", True, True, False),  # only the police's reports
])
def test_a_police_report_is_covered_by_what_the_alert_went_through(action, acknowledged,
                                                                   dispatched, covered):
    assert already_reported(action, acknowledged, dispatched) is covered
