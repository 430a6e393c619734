"""The routing policy file: the shipped default, region overrides, and clear errors."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from backend.regions import RegionIndex
from backend.routing import (
    AlertFacts,
    CaseFacts,
    PolicyError,
    load_policy,
    parse_policy,
    route,
)
from backend.routing.policy import REQUIRED_ALERT_TYPES, default_policy_text

T0 = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


def _document() -> dict:
    return yaml.safe_load(default_policy_text())


def _policy_with(**changes: object) -> str:
    document = _document()
    document.update(changes)
    return yaml.safe_dump(document)


def test_shipped_policy_routes_every_design_alert_type() -> None:
    policy = load_policy()
    assert set(REQUIRED_ALERT_TYPES) <= set(policy.alert_types)
    assert policy.escalation["P1"].steps[1].after_s == 30
    assert policy.custody_release.tightening_period == timedelta(days=14)


def test_policy_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(_policy_with(also_notify_home_region=False))
    assert load_policy(path).also_notify_home_region is False


def test_missing_file_is_a_policy_error(tmp_path: Path) -> None:
    with pytest.raises(PolicyError, match="cannot read"):
        load_policy(tmp_path / "absent.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("alert_types: [unclosed", "not valid YAML"),
        ("- a list", "must be a YAML mapping"),
    ],
)
def test_unreadable_policy_is_a_policy_error(text: str, message: str) -> None:
    with pytest.raises(PolicyError, match=message):
        parse_policy(text)


def _broken(mutate) -> dict:  # type: ignore[no-untyped-def]
    document = _document()
    mutate(document)
    return document


BAD_POLICIES = {
    "missing alert type": (lambda d: d["alert_types"].pop("proximity"), "proximity"),
    "unknown priority": (lambda d: d["alert_types"]["panic"].update(priority="P0"), "priority"),
    "unknown recipient role": (
        lambda d: d["alert_types"]["panic"].update(recipients=["mayor"]),
        "recipients",
    ),
    "test raised to P1": (lambda d: d["alert_types"]["test"].update(priority="P1"), "test alarms"),
    "chain out of order": (
        lambda d: d["escalation"]["P1"]["steps"].reverse(),
        "first step",
    ),
    "missing chain": (lambda d: d["escalation"].pop("P2"), "P2"),
    "bad region key": (lambda d: d.update(regions={"Rotterdam": {}}), "Rotterdam"),
    "override of unknown type": (
        lambda d: d.update(regions={"VR17": {"alert_types": {"earthquake": {"priority": "P1"}}}}),
        "earthquake",
    ),
    "override makes test P1": (
        lambda d: d.update(regions={"RE07": {"alert_types": {"test": {"priority": "P1"}}}}),
        "RE07",
    ),
    "unknown field": (lambda d: d.update(colour="red"), "colour"),
    "panic lowered": (lambda d: d["alert_types"]["panic"].update(priority="P2"), "panic alarms"),
    "fall without the police": (
        lambda d: d["alert_types"]["fall"].update(recipients=["vt_desk"]), "fall alarms"),
    "override lowers panic in one region": (
        lambda d: d.update(regions={"VR17": {"alert_types": {"panic": {"priority": "P3"}}}}),
        "VR17",
    ),
    "P1 chain never escalates": (
        lambda d: d["escalation"]["P1"].update(
            steps=[{"after_s": 0, "action": "notify", "target": "primary"},
                   {"after_s": 30, "action": "re_notify", "target": "primary"}]),
        "escalate step",
    ),
    "override with a P1 chain that never escalates": (
        lambda d: d.update(regions={"RE07": {"escalation": {"P1": {"steps": [
            {"after_s": 0, "action": "notify", "target": "primary"}]}}}}),
        "RE07",
    ),
    "missing exercise endpoint": (lambda d: d["exercise"]["endpoints"].pop("contact"), "contact"),
    "negative period": (
        lambda d: d["custody_release"].update(tightening_period="-P1D"),
        "tightening_period",
    ),
    "period of ages": (  # a release date plus this overflows the datetime range
        lambda d: d["custody_release"].update(tightening_period="P3000000D"),
        "at most 366 days",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_POLICIES))
def test_bad_policy_is_a_clear_error(name: str) -> None:
    mutate, fragment = BAD_POLICIES[name]
    with pytest.raises(PolicyError) as info:
        parse_policy(yaml.safe_dump(_broken(mutate)), source="test-policy.yaml")
    assert "test-policy.yaml" in str(info.value)
    assert fragment in str(info.value)


REGIONAL = {
    "RE07": {
        "alert_types": {"approach": {"priority": "P1"}, "battery_low": {"recipients": ["vt_desk"]}},
    },
    "VR18": {
        "alert_types": {"approach": {"priority": "P3"}},
        "escalation": {
            "P1": {
                "steps": [
                    {"after_s": 0, "action": "notify", "target": "primary"},
                    {"after_s": 20, "action": "re_notify", "target": "primary"},
                    {"after_s": 40, "action": "escalate", "target": "police_unit"},
                ],
                "realert_unresolved_after_s": 300,
            }
        },
    },
}


def test_region_overrides_by_police_unit_and_safety_region(regions: RegionIndex) -> None:
    policy = parse_policy(_policy_with(regions=REGIONAL))
    case = CaseFacts(case_id="c", case_director_id="cd")
    rotterdam = regions.locate(51.9244, 4.4690)  # VR17, RE07
    dordrecht = regions.locate(51.8133, 4.6901)  # VR18, RE07
    amsterdam = regions.locate(52.3731, 4.8926)  # VR13, RE05

    def decide(alert_type: str, where):  # type: ignore[no-untyped-def]
        return route(AlertFacts(alert_type, T0), case, where, policy, T0)

    # Police unit override applies in all of RE07 ...
    assert decide("approach", rotterdam).priority == "P1"
    assert decide("battery_low", rotterdam).codes("case_director") == []
    assert decide("battery_low", rotterdam).codes("vt_desk") == ["VT4607"]
    # ... the safety region override is more specific and wins in VR18 ...
    assert decide("approach", dordrecht).priority == "P3"
    assert decide("battery_low", dordrecht).codes("case_director") == []  # RE07 change still holds
    panic_dordrecht = decide("panic", dordrecht)
    assert [s.after_seconds for s in panic_dordrecht.escalation.steps] == [0, 20, 40]
    assert panic_dordrecht.first_escalation_deadline == T0 + timedelta(seconds=20)
    assert panic_dordrecht.escalation.realert_after_seconds == 300
    # ... and elsewhere the base policy holds.
    assert decide("approach", amsterdam).priority == "P2"
    assert [s.after_seconds for s in decide("panic", amsterdam).escalation.steps] == [0, 30, 45, 60]


def test_region_override_applies_to_home_region_fallback() -> None:
    policy = parse_policy(_policy_with(regions=REGIONAL))
    case = CaseFacts(case_id="c", home_police_unit="RE07", home_vr="VR18", home_vt_desk="VT4816")
    decision = route(AlertFacts("approach", T0), case, None, policy, T0)
    assert decision.region_source == "home"
    assert decision.priority == "P3"
