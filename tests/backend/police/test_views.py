"""Which police reports on a visible alert are refused: a police token answers only for an
alert routed to one of its units, in the name of one of them; an administrator for any."""

from __future__ import annotations

import pytest

from backend.auth.tokens import Principal
from backend.police.views import refusal

RE07 = Principal("token:re07", "police", {"units": ["RE07"]})
BOTH = Principal("token:re05-re07", "police", {"units": ["RE05", "RE07"]})
ADMIN = Principal("admin", "admin")


@pytest.mark.parametrize("who, alert_units, body_unit", [
    (RE07, {"RE07"}, "RE07"), (BOTH, {"RE05"}, "RE07"), (BOTH, {"RE05"}, "RE05"),
    (RE07, {"RE05", "RE07"}, "RE07"),  # routed to the home unit too (an alarm away from home)
    (ADMIN, {"RE05"}, "RE01"), (ADMIN, set(), "RE01"),
])
def test_a_report_within_the_units_is_admitted(who, alert_units, body_unit):
    assert refusal(who, alert_units, body_unit) is None


def test_a_unit_the_alert_is_not_routed_to_may_not_report_on_it():
    assert refusal(RE07, {"RE05"}, "RE07") == (
        "the alert is routed to a police unit outside this token's scope")


def test_an_alert_routed_to_no_unit_is_the_administrators():
    assert refusal(RE07, set(), "RE07") is not None


def test_a_body_naming_another_unit_is_refused():
    assert refusal(RE07, {"RE07"}, "RE05") == "unit RE05 is outside this token's scope"
    assert refusal(Principal("token:none", "police", {}), {"RE07"}, "RE07") is not None
