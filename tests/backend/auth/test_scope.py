"""Pure scope decisions and the CLI scope parser."""

from __future__ import annotations

import pytest

from backend.auth.errors import InvalidScope
from backend.auth.passwords import hash_password, verify_password
from backend.auth.scope import AlertFacts, location_allowed, parse_scope, sees_alert
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


def test_parse_scope():
    assert parse_scope("dispatcher", "VR17, VR13") == {"regions": ["VR13", "VR17"]}
    assert parse_scope("police", "RE07") == {"units": ["RE07"]}
    assert parse_scope("case_director", "C-1") == {"cases": ["C-1"]}
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
