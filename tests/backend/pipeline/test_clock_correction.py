"""The clock correction a contact ban's pairing takes from a device's latest clock reading:
only a recent reading of a clock clearly behind gives one."""

from __future__ import annotations

import math

import pytest

from backend.pipeline.clock_correction import ClockPolicy, clock_correction, corrections
from backend.settings import ProtocolSettings
from backend.state.store import ClockReading, InMemoryState

NOW = 1_800_000_000.0
POLICY = ClockPolicy(max_age_s=600.0, min_s=15.0)


def test_a_recent_reading_of_a_clock_behind_gives_how_far_it_runs_behind():
    assert clock_correction(ClockReading(NOW - 30, 150.0), NOW, POLICY) == 150.0
    assert clock_correction(ClockReading(NOW - 600, 7_200.0), NOW, POLICY) == 7_200.0


def test_an_old_reading_gives_none():
    """The device may have set its clock since: its fixes are taken at their word."""
    assert clock_correction(ClockReading(NOW - 601, 150.0), NOW, POLICY) == 0.0


@pytest.mark.parametrize("behind", [0.0, 3.0, 15.0, -150.0])
def test_a_tiny_reading_or_a_clock_ahead_gives_none(behind: float):
    """A right clock shows the seconds its message took to arrive; a clock ahead has its fixes
    dated at their arrival already."""
    assert clock_correction(ClockReading(NOW - 5, behind), NOW, POLICY) == 0.0


@pytest.mark.parametrize("reading", [None, ClockReading(math.nan, 150.0),
                                     ClockReading(NOW, math.inf), ClockReading(NOW, math.nan)])
def test_no_reading_or_an_unreadable_one_gives_none(reading):
    assert clock_correction(reading, NOW, POLICY) == 0.0


def test_the_policy_is_the_protocol_settings():
    settings = ProtocolSettings(clock_correction_max_age_s=300, clock_correction_min_s=40)
    policy = ClockPolicy.from_settings(settings)
    assert (policy.max_age_s, policy.min_s) == (300, 40)
    assert clock_correction(ClockReading(NOW - 10, 30.0), NOW, policy) == 0.0
    assert clock_correction(ClockReading(NOW - 301, 150.0), NOW, policy) == 0.0
    assert ClockPolicy.from_settings(ProtocolSettings()) == ClockPolicy()


def test_corrections_name_only_the_devices_that_have_one():
    state = InMemoryState()
    state.set_clocks({"vic": ClockReading(NOW - 10, 150.0), "off": ClockReading(NOW, 2.0)})
    assert corrections(state, ["vic", "off", "other"], NOW, POLICY) == {"vic": 150.0}
