"""route(): priorities and recipients per alert type, regions, custody release, test, exercise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from backend.regions import RegionIndex, RegionMatch
from backend.routing import (
    AlertFacts,
    CaseFacts,
    CustodyStatus,
    InvalidFacts,
    Policy,
    UnknownAlertType,
    route,
)
from backend.routing.policy import default_policy_text, parse_policy

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)

# type -> (priority, police units, vt desks, 3RO contacts, case directors, victim devices)
EXPECTED = {
    "panic": ("P1", ["RE07"], ["VT4607"], [], [], ["alarm-dev"]),
    "fall": ("P1", ["RE07"], ["VT4607"], [], [], ["alarm-dev"]),
    "zone_breach": ("P1", ["RE07"], ["VT4607"], ["c-3ro"], [], ["victim-dev-1"]),
    "proximity": ("P1", ["RE07"], ["VT4607"], [], [], ["victim-dev-1"]),
    "approach": ("P2", [], ["VT4607"], [], [], []),
    "tamper": ("P1", ["RE07"], ["VT4607"], ["c-3ro"], [], []),
    "device_silent": ("P3", [], ["VT4607"], [], ["cd-1"], []),
    "battery_low": ("P3", [], ["VT4607"], [], ["cd-1"], []),
    "no_fix": ("P3", [], ["VT4607"], [], ["cd-1"], []),
    "test": ("P4", [], ["VT4607"], [], [], []),
}


@pytest.mark.parametrize("alert_type", sorted(EXPECTED))
def test_every_alert_type_routes_as_designed(
    alert_type: str, case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    alert = AlertFacts(alert_type, T0, device_id="alarm-dev")
    decision = route(alert, case, rotterdam, policy, T0)
    priority, police, desks, three_ro, directors, devices = EXPECTED[alert_type]
    assert decision.priority == priority
    assert decision.codes("police_unit") == police
    assert decision.codes("vt_desk") == desks
    assert decision.codes("three_ro") == three_ro
    assert decision.codes("case_director") == directors
    assert decision.codes("victim_device") == devices
    assert decision.codes("contact") == []
    assert decision.warnings == ()
    assert decision.region_source == "location"
    assert decision.test is (alert_type == "test")


def test_victim_feedback_reasons(case: CaseFacts, rotterdam: RegionMatch, policy: Policy) -> None:
    panic = route(AlertFacts("panic", T0, device_id="alarm-dev"), case, rotterdam, policy, T0)
    breach = route(
        AlertFacts("zone_breach", T0, device_id="offender-dev"), case, rotterdam, policy, T0
    )
    assert [r.reason for r in panic.recipients if r.kind == "victim_device"] == [
        "device ack: help is coming"
    ]
    assert [r.reason for r in breach.recipients if r.kind == "victim_device"] == ["warn the victim"]


def test_unknown_alert_type_is_an_error(
    case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    with pytest.raises(UnknownAlertType):
        route(AlertFacts("earthquake", T0), case, rotterdam, policy, T0)


def test_naive_datetimes_are_rejected(
    case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    with pytest.raises(InvalidFacts):
        AlertFacts("panic", T0.replace(tzinfo=None))
    with pytest.raises(InvalidFacts):
        route(AlertFacts("panic", T0), case, rotterdam, policy, T0.replace(tzinfo=None))


# --- region ---------------------------------------------------------------------------------


def test_region_comes_from_the_location_and_home_region_is_added(
    case: CaseFacts, regions: RegionIndex, policy: Policy
) -> None:
    amsterdam = regions.locate(52.3731, 4.8926)
    decision = route(AlertFacts("panic", T0), case, amsterdam, policy, T0)
    assert decision.region_source == "location"
    assert (decision.police_unit, decision.vt_desk) == ("RE05", "VT3406")
    # Location first, then the case's home unit and desk (they hold the case card).
    assert decision.codes("police_unit") == ["RE05", "RE07"]
    assert decision.codes("vt_desk") == ["VT3406", "VT4607"]
    # Escalation goes to the location's desk supervisor and police unit.
    assert [r.code for r in decision.escalation.steps[2].recipients] == ["VT3406"]
    assert [r.code for r in decision.escalation.steps[3].recipients] == ["RE05"]


def test_home_region_not_added_when_disabled(
    case: CaseFacts, regions: RegionIndex, policy: Policy
) -> None:
    no_home = policy.model_copy(update={"also_notify_home_region": False})
    decision = route(AlertFacts("panic", T0), case, regions.locate(52.3731, 4.8926), no_home, T0)
    assert decision.codes("police_unit") == ["RE05"]
    assert decision.codes("vt_desk") == ["VT3406"]


def test_home_region_is_the_fallback_without_location(case: CaseFacts, policy: Policy) -> None:
    decision = route(AlertFacts("panic", T0), case, None, policy, T0)
    assert decision.region_source == "home"
    assert decision.codes("police_unit") == ["RE07"]
    assert decision.codes("vt_desk") == ["VT4607"]
    assert decision.warnings == ()


def test_open_water_fallback_routes_to_the_nearest_region(
    case: CaseFacts, regions: RegionIndex, policy: Policy
) -> None:
    off_scheveningen = regions.locate(52.12, 4.25)
    assert off_scheveningen is not None and off_scheveningen.exact is False
    decision = route(AlertFacts("panic", T0), case, off_scheveningen, policy, T0)
    assert decision.region_source == "location"
    assert decision.codes("police_unit")[0] == "RE06"
    assert decision.codes("vt_desk")[0] == "VT7014"


def test_far_away_point_falls_back_to_home(
    case: CaseFacts, regions: RegionIndex, policy: Policy
) -> None:
    london = regions.locate(51.5074, -0.1278)
    assert london is None
    decision = route(AlertFacts("panic", T0), case, london, policy, T0)
    assert decision.region_source == "home"
    assert decision.codes("police_unit") == ["RE07"]


def test_no_region_at_all_still_routes_with_warnings(policy: Policy) -> None:
    bare = CaseFacts(case_id="case-x")
    decision = route(AlertFacts("panic", T0, device_id="d1"), bare, None, policy, T0)
    assert decision.priority == "P1"
    assert decision.region_source == "none"
    assert decision.codes("victim_device") == ["d1"]
    assert {"no_region", "no_police_unit", "no_vt_desk"} <= set(decision.warnings)


def test_the_fallback_unit_stands_in_where_no_unit_is_named(policy: Policy) -> None:
    bare = CaseFacts(case_id="case-x")
    panic = route(AlertFacts("panic", T0, device_id="d1"), bare, None, policy, T0,
                  fallback_police_unit="RE09")
    assert panic.codes("police_unit") == ["RE09"]
    assert "police_fallback" in panic.warnings and "no_police_unit" not in panic.warnings
    called = [s for s in panic.escalation.steps if s.target == "police_unit"]
    assert called and all([r.code for r in s.recipients] == ["RE09"] for s in called)


def test_the_fallback_unit_is_called_when_the_plan_calls_the_police_not_before() -> None:
    # A deployment whose approach is a P1 for the desk: its escalation calls the police, and
    # the fallback unit is called then, not at once.
    text = default_policy_text().replace(
        "approach:      {priority: P2, recipients: [vt_desk]}",
        "approach:      {priority: P1, recipients: [vt_desk]}")
    assert "approach:      {priority: P1" in text
    bare = CaseFacts(case_id="case-x")
    approach = route(AlertFacts("approach", T0), bare, None, parse_policy(text), T0,
                     fallback_police_unit="RE09")
    assert approach.codes("police_unit") == []
    steps = [[r.code for r in s.recipients] for s in approach.escalation.steps
             if s.target == "police_unit"]
    assert steps and all(codes == ["RE09"] for codes in steps)
    assert "police_fallback" in approach.warnings


def test_the_fallback_unit_is_not_used_where_a_unit_is_named(
    case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    decision = route(AlertFacts("panic", T0), case, rotterdam, policy, T0,
                     fallback_police_unit="RE09")
    assert decision.codes("police_unit") == ["RE07"]
    assert "police_fallback" not in decision.warnings


def test_a_drill_without_a_unit_reaches_the_exercise_endpoint_not_the_fallback(
    policy: Policy,
) -> None:
    bare = CaseFacts(case_id="case-x")
    drill = route(AlertFacts("panic", T0, exercise=True), bare, None, policy, T0,
                  fallback_police_unit="RE09")
    police = [r for r in drill.recipients if r.kind == "police_unit"]
    assert police and all(r.exercise and r.code != "RE09" for r in police)


def test_missing_named_contacts_are_warnings(rotterdam: RegionMatch, policy: Policy) -> None:
    bare = CaseFacts(case_id="case-x", home_vt_desk="VT4607")
    breach = route(AlertFacts("zone_breach", T0), bare, rotterdam, policy, T0)
    silent = route(AlertFacts("device_silent", T0), bare, rotterdam, policy, T0)
    assert "no_three_ro_contact" in breach.warnings
    assert "no_victim_device" in breach.warnings
    assert "no_case_director" in silent.warnings
    assert breach.codes("three_ro") == []


# --- custody release --------------------------------------------------------------------------


def _released(case: CaseFacts, days_ago: float) -> CaseFacts:
    return replace(case, custody=CustodyStatus("released", T0 - timedelta(days=days_ago)))


@pytest.mark.parametrize(
    ("alert_type", "normal", "tightened"),
    [("approach", "P2", "P1"), ("device_silent", "P3", "P2"), ("panic", "P1", "P1")],
)
def test_custody_release_raises_priority_one_step(
    alert_type: str,
    normal: str,
    tightened: str,
    case: CaseFacts,
    rotterdam: RegionMatch,
    policy: Policy,
) -> None:
    assert route(AlertFacts(alert_type, T0), case, rotterdam, policy, T0).priority == normal
    decision = route(AlertFacts(alert_type, T0), _released(case, 2), rotterdam, policy, T0)
    assert decision.priority == tightened
    assert decision.tightened is True


def test_custody_release_adds_the_named_contacts(
    case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    decision = route(AlertFacts("approach", T0), _released(case, 1), rotterdam, policy, T0)
    assert decision.codes("contact") == ["c-police", "c-vt", "c-3ro"]
    # The raised priority brings the P1 escalation chain with it.
    assert decision.escalation.priority == "P1"
    assert decision.first_escalation_deadline == T0 + timedelta(seconds=30)
    contacts_in_first_step = [
        r.code for r in decision.escalation.steps[0].recipients if r.kind == "contact"
    ]
    assert contacts_in_first_step == ["c-police", "c-vt", "c-3ro"]


@pytest.mark.parametrize(
    ("custody", "tightened"),
    [
        (CustodyStatus("in_custody"), False),
        (CustodyStatus(), False),
        (CustodyStatus("released", T0 - timedelta(days=14)), False),  # period ends (exclusive)
        (CustodyStatus("released", T0 - timedelta(days=14) + timedelta(seconds=1)), True),
        (CustodyStatus("released", T0), True),
        (CustodyStatus("released", T0 + timedelta(hours=1)), False),  # release still ahead
        # At the end of the datetime range: no period is added to it (it would overflow and
        # fail the routing of every alarm of the case).
        (CustodyStatus("released", datetime(9999, 12, 31, tzinfo=UTC)), False),
    ],
)
def test_custody_tightening_period_bounds(
    custody: CustodyStatus, tightened: bool, case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    decision = route(
        AlertFacts("approach", T0), replace(case, custody=custody), rotterdam, policy, T0
    )
    assert decision.tightened is tightened
    assert decision.priority == ("P1" if tightened else "P2")


def test_released_needs_a_release_time() -> None:
    with pytest.raises(InvalidFacts):
        CustodyStatus("released")
    with pytest.raises(InvalidFacts):
        CustodyStatus("in_custody", T0)


# --- test presses -----------------------------------------------------------------------------


@pytest.mark.parametrize("alert", [AlertFacts("test", T0), AlertFacts("panic", T0, test=True)])
def test_test_alarms_are_p4_desk_only(
    alert: AlertFacts, case: CaseFacts, regions: RegionIndex, policy: Policy
) -> None:
    amsterdam = regions.locate(52.3731, 4.8926)
    decision = route(alert, _released(case, 1), amsterdam, policy, T0)
    assert decision.priority == "P4"
    assert decision.test is True
    assert decision.tightened is False
    assert [(r.kind, r.code) for r in decision.recipients] == [("vt_desk", "VT3406")]
    assert all("marked test" in r.reason for r in decision.recipients)
    every_step_kind = {r.kind for s in decision.escalation.steps for r in s.recipients}
    assert every_step_kind <= {"vt_desk", "desk_supervisor"}


# --- exercise ---------------------------------------------------------------------------------


@pytest.mark.parametrize("alert_type", ["panic", "zone_breach", "tamper", "device_silent", "test"])
def test_exercise_never_routes_to_live_recipients(
    alert_type: str, case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    live = route(
        AlertFacts(alert_type, T0, device_id="alarm-dev"), _released(case, 1), rotterdam, policy, T0
    )
    drill = route(
        AlertFacts(alert_type, T0, device_id="alarm-dev", exercise=True),
        _released(case, 1),
        rotterdam,
        policy,
        T0,
    )
    assert drill.exercise is True
    assert drill.priority == live.priority
    endpoints = set(policy.exercise.endpoints.values())
    everyone = list(drill.recipients) + [r for s in drill.escalation.steps for r in s.recipients]
    everyone += list(drill.escalation.realert_recipients)
    assert everyone
    for recipient in everyone:
        assert recipient.exercise is True
        assert recipient.code in endpoints
    live_codes = {r.code for r in live.recipients}
    assert not live_codes & {r.code for r in everyone}
    # The live codes are kept for the exercise report.
    assert [r.stands_in_for for r in drill.recipients] == [r.code for r in live.recipients]


def test_a_tamper_of_the_victims_own_device_never_goes_to_the_offenders_3ro(
    case: CaseFacts, rotterdam: RegionMatch, policy: Policy
) -> None:
    """A tamper is P1 to the police and the desk whoever's device it is; the case's 3RO
    contact (the offender's probation officer) hears only of the offender's."""
    hers = route(AlertFacts("tamper", T0, device_id="victim-dev-1"), case, rotterdam, policy, T0)
    his = route(AlertFacts("tamper", T0, device_id="offender-dev"), case, rotterdam, policy, T0)
    assert hers.priority == his.priority == "P1"
    assert hers.codes("police_unit") == his.codes("police_unit") == ["RE07"]
    assert hers.codes("vt_desk") == ["VT4607"]
    assert hers.codes("three_ro") == [] and "no_three_ro_contact" not in hers.warnings
    assert his.codes("three_ro") == ["c-3ro"]
