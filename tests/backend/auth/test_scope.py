"""Pure scope decisions and the CLI scope parser."""

from __future__ import annotations

import pytest

from backend.auth.errors import InvalidScope
from backend.auth.models import ApiToken
from backend.auth.passwords import hash_password, verify_password
from backend.auth.scope import (
    AlertFacts,
    check_scope,
    desk_of,
    location_allowed,
    parse_scope,
    routed_unit,
    sees_alert,
    visible_regions,
)
from backend.auth.tokens import Principal

FACTS = AlertFacts(vr_code="VR17", police_unit="RE07", case_reference="C-1", case_home_vr="VR13",
                   case_home_unit="RE05")


@pytest.mark.parametrize(("principal", "sees"), [
    (Principal("a", "admin"), True),
    (Principal("d", "dispatcher", {"regions": ["VR17"]}), True),  # by the fix
    (Principal("d", "dispatcher", {"regions": ["VR13"]}), True),  # by the case's home
    (Principal("d", "dispatcher", {"regions": ["VR01"]}), False),
    (Principal("d", "dispatcher"), False),  # no scope: nothing
    (Principal("p", "police", {"units": ["RE07"]}), True),
    (Principal("p", "police", {"units": ["RE05"]}), True),  # the case's home unit
    (Principal("p", "police", {"units": ["RE01"]}), False),
    (Principal("c", "case_director", {"cases": ["C-1"]}), True),
    (Principal("c", "case_director", {"cases": ["C-2"]}), False),
])
def test_sees_alert(principal, sees):
    assert sees_alert(principal, FACTS) is sees


# A storm summary of the desk serving VR17: no place, no case; the fallback unit is no route.
STORM = AlertFacts(vr_code=None, police_unit=routed_unit("device_silent_storm", "RE07", True),
                   case_reference=None, case_home_vr=None, desk_regions=frozenset({"VR17"}))


@pytest.mark.parametrize(("principal", "sees"), [
    (Principal("a", "admin"), True),
    (Principal("d", "dispatcher", {"regions": ["VR17", "VR01"]}), True),
    (Principal("d", "dispatcher", {"regions": ["VR13"]}), False),
    (Principal("p", "police", {"units": ["RE07"]}), False),
    (Principal("c", "case_director", {"cases": ["C-1"]}), False),
])
def test_a_storm_summary_is_seen_by_the_dispatchers_of_its_desks_regions(principal, sees):
    assert sees_alert(principal, STORM) is sees


def test_the_desk_and_the_route_of_an_alert():
    assert desk_of(["desk:VT4607", "storm"]) == "VT4607"
    assert desk_of(["storm"]) is None and desk_of(["desk:"]) is None and desk_of(None) is None
    assert routed_unit("device_silent_storm", "RE07", True) is None
    assert routed_unit("panic", "RE07", True) == "RE07"
    # The desk's alone until the police are told of it: no route to the unit of its place.
    assert routed_unit("approach", "RE07", False) is None


def test_parse_scope():
    assert parse_scope("dispatcher", "VR17, VR13") == {"regions": ["VR13", "VR17"]}
    assert parse_scope("police", "RE07") == {"units": ["RE07"]}
    assert parse_scope("case_director", "C-1") == {"cases": ["C-1"]}
    assert parse_scope("partner", "C-1,C-2") == {"cases": ["C-1", "C-2"]}
    assert parse_scope("admin", "") == {}
    with pytest.raises(InvalidScope):
        parse_scope("dispatcher", "")
    with pytest.raises(InvalidScope):
        parse_scope("police", "VR17")


def test_location_needs_open_alert_or_reason():
    assert location_allowed(alert_open=True, reason=None)
    assert location_allowed(alert_open=False, reason="court order")
    assert not location_allowed(alert_open=False, reason="  ")


def test_argon2_hash():
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$")
    assert verify_password(h, "correct horse battery") and not verify_password(h, "wrong")


@pytest.mark.parametrize(("role", "scope", "stored"), [
    ("admin", {}, {}),
    ("police", {"units": ["RE07", "RE05", "RE07"]}, {"units": ["RE05", "RE07"]}),
    ("dispatcher", {"regions": ["VR17"]}, {"regions": ["VR17"]}),
])
def test_check_scope_keeps_a_scope_of_the_role(role, scope, stored):
    assert check_scope(role, scope) == stored


@pytest.mark.parametrize(("role", "scope"), [
    ("dispatcher", {"regions": "VR17"}),  # not a list: a token that would see nothing
    ("dispatcher", {"units": ["RE07"]}),  # another role's key
    ("dispatcher", {"regions": ["VR17"], "units": ["RE07"]}),
    ("police", {"units": []}),
    ("police", {"units": ["VR17"]}),
    ("police", {"units": [7]}),
    ("admin", {"regions": ["VR17"]}),
])
def test_check_scope_refuses_what_would_fail_silently(role, scope):
    with pytest.raises(InvalidScope):
        check_scope(role, scope)


def test_a_token_is_made_only_with_a_scope_of_its_role(stack):
    api = stack.api()
    refused = api.post("/api/v1/tokens", json={"name": "t-1", "role": "dispatcher",
                                               "scope": {"regions": "VR17"}})
    assert refused.status_code == 422 and "regions" in refused.text
    made = api.post("/api/v1/tokens", json={"name": "t-2", "role": "dispatcher",
                                            "scope": {"regions": ["VR17", "VR13"]}})
    assert made.status_code == 201
    with stack.runtime.sessions() as s:
        assert [t.scope for t in s.query(ApiToken).filter_by(name="t-2")] == [
            {"regions": ["VR13", "VR17"]}]
        assert s.query(ApiToken).filter_by(name="t-1").count() == 0


UNIT_REGIONS = {"RE07": frozenset({"VR17", "VR18"}), "RE05": frozenset({"VR13"})}


@pytest.mark.parametrize(("principal", "regions"), [
    (Principal("a", "admin"), None),  # every region
    (Principal("d", "dispatcher", {"regions": ["VR17", "VR13"]}), {"VR13", "VR17"}),
    (Principal("d", "dispatcher"), set()),
    (Principal("p", "police", {"units": ["RE07"]}), {"VR17", "VR18"}),
    (Principal("p", "police", {"units": ["RE07", "RE05", "RE99"]}), {"VR13", "VR17", "VR18"}),
    (Principal("p", "police"), set()),
    (Principal("c", "case_director", {"cases": ["C-1"]}), set()),
    (Principal("x", "auditor", {"regions": ["VR17"]}), set()),
])
def test_region_figures_are_seen_for_the_regions_a_scope_covers(principal, regions) -> None:
    assert visible_regions(principal, UNIT_REGIONS) == regions
