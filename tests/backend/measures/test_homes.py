"""The offender's home registered or moved over the API, on both back ends, against the measures
of the case: refused (422 naming the measure, never the home's place, nothing stored or
audited) where a measure standing would raise an alarm on every return home; registered as
before where none does."""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections.abc import Callable

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from backend.audit.models import AuditEntry
from backend.caselog.models import CaseLogEntry
from backend.measures import flows, homes, service
from backend.measures.errors import HomeRejected, MeasureRejected
from tests.backend.measures.places import ROTTERDAM, offset, register_pair, square, zone_feature
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services  # the stack runs on both back ends, one of them services

FAR = offset(*ROTTERDAM, 3_000.0, 0.0)  # (lat, lon) well clear of a 200 m zone at ROTTERDAM


def _home_url(case_id: uuid.UUID) -> str:
    return f"/api/v1/cases/{case_id}/offender-home"


def _import(api, case_id: uuid.UUID, feature: dict) -> None:
    created = api.post(f"/api/v1/cases/{case_id}/measures", json=feature)
    assert created.status_code == 201, created.text


def _put_home(api, case_id: uuid.UUID, lat_lon: tuple[float, float]):
    return api.put(_home_url(case_id), json={"lat": lat_lon[0], "lon": lat_lon[1]})


def _trail(stack, case_id: uuid.UUID) -> tuple[int, int]:
    """(audit entries of the case's home, case log entries of the case)."""
    with stack.runtime.sessions() as s:
        audited = s.scalar(select(func.count()).select_from(AuditEntry).where(
            AuditEntry.resource == "offender_home", AuditEntry.case_id == case_id))
        logged = s.scalar(select(func.count()).select_from(CaseLogEntry).where(
            CaseLogEntry.case_id == case_id))
    return audited, logged


def _home(stack, case_id: uuid.UUID) -> tuple[float, float] | None:
    with stack.runtime.sessions() as s:
        return service.get_home(s, case_id)


def test_a_home_inside_an_area_ban_is_refused_naming_the_measure_and_nothing_changes(stack):
    case_id = register_pair(stack, "off-hban", "vic-hban")
    api = stack.api()
    assert _put_home(api, case_id, FAR).status_code == 200
    _import(api, case_id, zone_feature("off-hban", measure_id="zone-hban"))
    before = _home(stack, case_id), _trail(stack, case_id)

    response = _put_home(api, case_id, ROTTERDAM)

    assert response.status_code == 422, response.text
    body = response.json()
    assert [(p["code"], p["path"]) for p in body["problems"]] == [
        ("home_inside_zone", "measures[zone-hban].geometry")]
    assert "zone-hban" in body["detail"] and "registered home" in body["detail"]
    assert re.search(r"\d\.\d", response.text) is None, response.text  # no coordinate
    assert "coordinates" not in response.text
    assert (_home(stack, case_id), _trail(stack, case_id)) == before
    assert _home(stack, case_id) == pytest.approx((FAR[1], FAR[0]))


def test_a_first_home_too_close_to_a_measure_to_come_is_refused_and_none_stored(stack):
    """A measure not yet in force counts: it would raise the alarms from its first day."""
    case_id = register_pair(stack, "off-hsoon", "vic-hsoon")
    api = stack.api()
    _import(api, case_id, zone_feature("off-hsoon", measure_id="zone-hsoon",
                                       valid_from="2099-01-01T00:00:00+01:00"))
    just_outside = offset(*ROTTERDAM, 220.0, 0.0)  # 20 m beyond the border: a fix is a breach

    response = _put_home(api, case_id, just_outside)

    assert response.status_code == 422, response.text
    assert [p["path"] for p in response.json()["problems"]] == ["measures[zone-hsoon].geometry"]
    assert _home(stack, case_id) is None and _trail(stack, case_id) == (0, 1)


def test_a_home_an_exception_contains_is_registered(stack):
    case_id = register_pair(stack, "off-hexc", "vic-hexc")
    api = stack.api()
    corridor = {"geometry": {"type": "Polygon", "coordinates": [square(*ROTTERDAM, 20.0)]},
                "reason": "corridor to own address"}
    _import(api, case_id, zone_feature("off-hexc", measure_id="zone-hexc",
                                       exceptions=[corridor]))

    response = _put_home(api, case_id, ROTTERDAM)

    assert response.status_code == 200, response.text
    assert _home(stack, case_id) == pytest.approx((ROTTERDAM[1], ROTTERDAM[0]))


def test_a_home_in_an_ended_or_deactivated_measure_is_registered(stack):
    case_id = register_pair(stack, "off-hold", "vic-hold")
    api = stack.api()
    _import(api, case_id, zone_feature("off-hold", measure_id="zone-ended",
                                       valid_from="2025-01-01T00:00:00+01:00",
                                       valid_until="2025-06-01T00:00:00+02:00"))
    _import(api, case_id, zone_feature("off-hold", measure_id="zone-gone"))
    assert _put_home(api, case_id, ROTTERDAM).status_code == 422  # the one still in force
    assert api.delete(f"/api/v1/cases/{case_id}/measures/zone-gone").status_code == 200

    response = _put_home(api, case_id, ROTTERDAM)

    assert response.status_code == 200, response.text
    assert _home(stack, case_id) == pytest.approx((ROTTERDAM[1], ROTTERDAM[0]))


def test_a_home_far_from_every_measure_is_registered_and_moved_as_before(stack):
    case_id = register_pair(stack, "off-hfar", "vic-hfar")
    api = stack.api()
    _import(api, case_id, zone_feature("off-hfar", measure_id="zone-hfar", pre_alert_m=250))

    assert _put_home(api, case_id, FAR).status_code == 200
    farther = offset(*ROTTERDAM, 0.0, -4_000.0)
    moved = _put_home(api, case_id, farther)

    assert moved.status_code == 200, moved.text
    assert moved.json() == {"type": "Point", "coordinates": [farther[1], farther[0]]}
    assert _home(stack, case_id) == pytest.approx((farther[1], farther[0]))
    assert _trail(stack, case_id)[0] == 2  # each registration audited, as before


def _while_held(stack, first: Callable[[Session], None], second: Callable[[Session], None]
                ) -> MeasureRejected | None:
    """`first` done in a transaction held open until `second`, in another thread and session,
    waits for a lock (or is done); then `first` commits. What `second` was refused with."""
    sessions = stack.runtime.sessions
    seen: dict = {}

    def run() -> None:
        with sessions() as s:
            seen["pid"] = s.connection().exec_driver_sql("SELECT pg_backend_pid()").scalar()
            try:
                second(s)
                s.commit()
                seen["refused"] = None
            except MeasureRejected as exc:
                seen["refused"] = exc

    waiting = text("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = :pid")
    with sessions() as held:
        first(held)
        thread = threading.Thread(target=run)
        thread.start()
        with held.get_bind().connect() as watcher:
            wait_until(lambda: not thread.is_alive() or ("pid" in seen and watcher.execute(
                waiting, {"pid": seen["pid"]}).scalar()), timeout=10)
        held.commit()
    thread.join(10)
    assert not thread.is_alive()
    return seen["refused"]


@pytest.mark.parametrize("home_first", [False, True])
@pytest.mark.parametrize("change", ["import", "replace"])
def test_a_home_and_a_zone_registered_at_once_are_checked_one_after_the_other(
        stack, change, home_first):
    """Each waits for the other's case lock and then meets what the other stored: without it,
    each checked against the state before the other and both were stored."""
    if stack.backend != "services":
        pytest.skip("SQLite takes one write lock for the database before either reads")
    case_id = register_pair(stack, "off-hrace", "vic-hrace")
    config = stack.settings.geofence.to_config()
    lat, lon = ROTTERDAM
    zone = zone_feature("off-hrace", measure_id="zone-hrace")
    if change == "replace":  # the zone stood far away, and is moved over the home
        _import(stack.api(), case_id, zone_feature("off-hrace", centre=FAR,
                                                   measure_id="zone-hrace"))

    def register_home(s: Session) -> None:
        homes.register(s, case_id, lon, lat, config, time.time())

    def change_zone(s: Session) -> None:
        if change == "import":
            flows.create(s, case_id, zone, config)
        else:
            flows.replace(s, case_id, "zone-hrace", zone, config)

    first, second = (register_home, change_zone) if home_first else (change_zone, register_home)
    refused = _while_held(stack, first, second)

    assert refused is not None
    if home_first:
        assert [p.code for p in refused.problems] == ["home_inside_zone"]
        stored = stack.api().get(f"/api/v1/cases/{case_id}/measures").json()["features"]
        assert [f["properties"]["version"] for f in stored] == ([1] if change == "replace"
                                                                 else [])
    else:
        assert isinstance(refused, HomeRejected)
        assert [p.path for p in refused.problems] == ["measures[zone-hrace].geometry"]
        assert _home(stack, case_id) is None
