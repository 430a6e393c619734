"""Who receives a case's notices (a release from detention, pursuit mode): whoever sees the
case, and the police of its home unit; the same rule as a list filter (the console's standing
notices), one case at a time, and on the console stream's database path."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from backend.alerts.models import Alert
from backend.audit.guard import screen_event
from backend.auth.scoping import case_notice_filter, receives_case_notices
from backend.auth.tokens import Principal
from backend.cases.models import Case
from tests.backend.auth import test_scope_matrix as matrix
from tests.backend.auth.world import World

world = matrix.world  # the fixture: two cases in two regions, each with an alert

PRINCIPALS = {
    "admin": Principal("admin", "admin"),
    "desk-home": Principal("user:a", "dispatcher", {"regions": ["VR17"]}),
    "desk-other": Principal("user:b", "dispatcher", {"regions": ["VR13"]}),
    "police-home": Principal("user:c", "police", {"units": ["RE07"]}),
    "police-other": Principal("user:d", "police", {"units": ["RE05"]}),
    "director": Principal("user:e", "case_director", {"cases": ["C-RDAM"]}),
}


def _receivers(stack, case_id) -> tuple[set[str], set[str]]:
    """Who receives the case's notices, by the filter and by the one-case rule."""
    with stack.runtime.sessions() as s:
        case = s.get(Case, case_id)
        by_rule = {k for k, p in PRINCIPALS.items() if receives_case_notices(s, p, case)}
        by_filter = {k for k, p in PRINCIPALS.items() if s.scalar(
            select(Case.id).where(Case.id == case_id, case_notice_filter(p)))}
    return by_rule, by_filter


def _notice(case_id) -> dict:
    return {"event": "case.custody_released", "case_id": str(case_id), "reference": "C-RDAM",
            "scope": {"police_unit": "RE07", "told_police": True, "case_id": str(case_id),
                      "case_reference": "C-RDAM", "case_home_vr": "VR17",
                      "case_director": None}}


def _alert_elsewhere(stack, case_id) -> None:
    """An alert of the Rotterdam case raised in Amsterdam (VR13): its desk now sees the case."""
    with stack.runtime.sessions.begin() as s:
        s.add(Alert(case_id=case_id, device_id="vic-rdam", message_id="m-away", type="panic",
                    priority="P1", state="new", raised_at=datetime.now(UTC), flags=[],
                    police_unit="RE05", region={"vr_code": "VR13"}))


def test_the_filter_and_the_rule_agree(stack, world: World) -> None:
    home = {"admin", "desk-home", "police-home", "director"}
    assert _receivers(stack, world.rotterdam_case) == (home, home)
    _alert_elsewhere(stack, world.rotterdam_case)
    assert _receivers(stack, world.rotterdam_case) == (home | {"desk-other"},) * 2


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
def test_the_stream_screens_a_case_event_by_the_rule(stack, world: World, who: str) -> None:
    _alert_elsewhere(stack, world.rotterdam_case)
    with stack.runtime.sessions() as s:
        case = s.get(Case, world.rotterdam_case)
        screened = screen_event(s, PRINCIPALS[who], _notice(case.id))
        receives = receives_case_notices(s, PRINCIPALS[who], case)
    assert (screened is not None) is receives
    if receives:
        assert "scope" not in screened and screened["reference"] == "C-RDAM"
