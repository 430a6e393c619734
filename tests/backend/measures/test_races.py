"""Requests on one measure or one case at the same moment, on both back ends: each change of a
measure gets a version of its own, and a request that loses a race gets a clear 4xx, never a
500."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest
from fastapi.testclient import TestClient

from backend.api.app import create_app
from backend.measures import service
from tests.backend.conftest import ADMIN_TOKEN
from tests.backend.measures.places import register_pair, zone_feature
from tests.support import concurrent

pytestmark = pytest.mark.services  # the stack runs on both back ends, one of them services

TOGETHER = 4


def together(stack, call: Callable[[TestClient, int], httpx.Response]) -> list[httpx.Response]:
    """`call` made TOGETHER times at once, each with a client of its own."""
    return concurrent.together(create_app(stack.runtime), ADMIN_TOKEN, TOGETHER, call)


def _measure_log(api: TestClient, case_id) -> list[tuple[str, int]]:
    entries = api.get(f"/api/v1/cases/{case_id}/log").json()
    entries = entries["entries"] if isinstance(entries, dict) else entries
    return [(e["data"]["change"], e["data"]["version"]) for e in entries
            if e["kind"] == "measure" and "measure_id" in e["data"]]


def test_replacements_at_once_each_get_a_version(stack):
    case_id = register_pair(stack, "off-race", "vic-race")
    api = stack.api()
    url = f"/api/v1/cases/{case_id}/measures/zone-race"
    created = api.post(f"/api/v1/cases/{case_id}/measures",
                       json=zone_feature("off-race", measure_id="zone-race"))
    assert created.status_code == 201, created.text

    answers = together(stack, lambda c, i: c.put(
        url, json=zone_feature("off-race", half_m=100.0 + 50 * i, reference=f"ref-{i}")))

    assert [r.status_code for r in answers] == [200] * TOGETHER, [r.text for r in answers]
    versions = sorted(r.json()["properties"]["version"] for r in answers)
    assert versions == list(range(2, TOGETHER + 2))
    last = max(answers, key=lambda r: r.json()["properties"]["version"])
    stored = api.get(url).json()["properties"]
    assert stored["version"] == TOGETHER + 1
    assert stored["reference"] == last.json()["properties"]["reference"]
    assert _measure_log(api, case_id) == [("imported", 1)] + [
        ("replaced", v) for v in range(2, TOGETHER + 2)]


def test_a_deactivation_amid_replacements_gets_a_version_of_its_own(stack):
    case_id = register_pair(stack, "off-race", "vic-race")
    api = stack.api()
    url = f"/api/v1/cases/{case_id}/measures/zone-race"
    api.post(f"/api/v1/cases/{case_id}/measures",
             json=zone_feature("off-race", measure_id="zone-race"))

    answers = together(stack, lambda c, i: c.delete(url) if i == 0 else c.put(
        url, json=zone_feature("off-race", half_m=100.0 + 50 * i)))

    assert [r.status_code for r in answers] == [200] * TOGETHER, [r.text for r in answers]
    versions = sorted(r.json()["properties"]["version"] for r in answers)
    assert versions == list(range(2, TOGETHER + 2))
    assert api.get(url).json()["properties"]["version"] == TOGETHER + 1
    assert sorted(v for _, v in _measure_log(api, case_id)) == list(range(1, TOGETHER + 2))


def test_first_registrations_of_the_offenders_home_at_once_keep_one(stack):
    case_id = register_pair(stack, "off-home", "vic-home")
    url = f"/api/v1/cases/{case_id}/offender-home"
    sent = [(51.90 + i / 100, 4.40) for i in range(TOGETHER)]

    answers = together(stack, lambda c, i: c.put(url, json={"lat": sent[i][0], "lon": sent[i][1]}))

    assert [r.status_code for r in answers] == [200] * TOGETHER, [r.text for r in answers]
    with stack.runtime.sessions() as s:
        lon, lat = service.get_home(s, case_id)
    assert any(abs(lat - la) < 1e-9 and abs(lon - lo) < 1e-9 for la, lo in sent)
    moved = stack.api().put(url, json={"lat": 51.95, "lon": 4.45})
    assert moved.status_code == 200
    with stack.runtime.sessions() as s:
        assert service.get_home(s, case_id) == pytest.approx((4.45, 51.95))


def test_imports_of_one_id_at_once_store_it_once_and_refuse_the_others(stack):
    case_id = register_pair(stack, "off-imp", "vic-imp")
    url = f"/api/v1/cases/{case_id}/measures"
    for attempt in range(3):  # the checks before the insert pass for all of them in most
        mid = f"zone-imp-{attempt}"
        answers = together(stack, lambda c, i: c.post(
            url, json=zone_feature("off-imp", measure_id=mid, reference=f"ref-{i}")))

        codes = sorted(r.status_code for r in answers)
        assert codes == [201] + [409] * (TOGETHER - 1), [r.text for r in answers]
        for r in answers:
            if r.status_code == 409:
                assert r.json()["detail"] == f"measure id already in use: {mid}"
        [stored] = [r.json() for r in answers if r.status_code == 201]
        got = stack.api().get(f"{url}/{mid}").json()
        assert got["properties"]["reference"] == stored["properties"]["reference"]
        assert got["properties"]["version"] == 1
    log = _measure_log(stack.api(), case_id)
    assert log == [("imported", 1)] * 3
