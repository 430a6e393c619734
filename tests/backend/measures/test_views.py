"""Measures over the API on both back ends: GeoJSON round trip, readable 422s, the offender's
home, devices of another case, deactivation kept for the record."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from shapely.geometry import shape

from geofences import Exemption, measure_from_feature
from backend.measures import repository, service
from backend.measures.views import MAX_BODY_BYTES
from tests.backend.measures.places import (
    ROTTERDAM,
    ban_feature,
    offset,
    register_pair,
    square,
    zone_feature,
)

pytestmark = pytest.mark.services  # the stack runs on both back ends, one of them services


def _url(case_id, rest: str = "") -> str:
    return f"/api/v1/cases/{case_id}/measures{rest}"


def test_import_export_round_trip(stack):
    case_id = register_pair(stack, "off-rt", "vic-rt")
    api = stack.api()
    zone = zone_feature("off-rt", measure_id="zone-rt", pre_alert_m=150,
                        time_windows=[{"days": ["mon", "fri"], "start": "08:00", "end": "18:00"}],
                        valid_from="2026-01-01T00:00:00+01:00")
    ban = ban_feature("off-rt", "vic-rt", measure_id="ban-rt")
    created = api.post(_url(case_id), json={"type": "FeatureCollection", "features": [zone, ban]})
    assert created.status_code == 201, created.text
    assert [f["id"] for f in created.json()["features"]] == ["zone-rt", "ban-rt"]

    exported = api.get(_url(case_id)).json()
    assert exported["type"] == "FeatureCollection"
    by_id = {f["id"]: f for f in exported["features"]}
    z = by_id["zone-rt"]
    assert z["geometry"]["type"] == "Polygon"
    ring = z["geometry"]["coordinates"][0]
    for got, sent in zip(ring, zone["geometry"]["coordinates"][0], strict=True):
        assert abs(got[0] - sent[0]) < 1e-9 and abs(got[1] - sent[1]) < 1e-9
    props = z["properties"]
    assert props["case_id"] == str(case_id) and props["kind"] == "exclusion_zone"
    assert props["pre_alert_m"] == 150 and props["reference"] == "C/10/123456"
    assert props["time_windows"][0]["days"] == ["mon", "fri"]
    assert props["valid_from"].startswith("2025-12-31T23:00:00")
    assert props["active"] is True and props["version"] == 1
    b = by_id["ban-rt"]
    assert b["geometry"] is None and b["properties"]["protected_device_ids"] == ["vic-rt"]
    assert b["properties"]["radius_m"] == 500

    # The export imports again (into another case it names no devices of: refused there).
    again = dict(z, id="zone-rt-2")
    assert api.post(_url(case_id), json=again).status_code == 201
    assert len(api.get(_url(case_id)).json()["features"]) == 3


def test_single_feature_without_id_gets_one(stack):
    case_id = register_pair(stack, "off-id", "vic-id")
    api = stack.api()
    r = api.post(_url(case_id), json=zone_feature("off-id"))
    assert r.status_code == 201, r.text
    assert r.json()["type"] == "Feature" and r.json()["id"]
    assert api.get(_url(case_id, f"/{r.json()['id']}")).json()["id"] == r.json()["id"]


def test_update_and_deactivate_keep_the_record(stack):
    case_id = register_pair(stack, "off-up", "vic-up")
    api = stack.api()
    api.post(_url(case_id), json=zone_feature("off-up", measure_id="zone-up"))
    wider = zone_feature("off-up", half_m=300.0)
    r = api.put(_url(case_id, "/zone-up"), json=wider)
    assert r.status_code == 200, r.text
    assert r.json()["properties"]["version"] == 2
    gone = api.delete(_url(case_id, "/zone-up"))
    assert gone.status_code == 200 and gone.json()["properties"]["active"] is False
    assert gone.json()["properties"]["version"] == 3
    assert api.get(_url(case_id)).json()["features"] == []
    kept = api.get(_url(case_id), params={"include_inactive": True}).json()["features"]
    assert [f["id"] for f in kept] == ["zone-up"]
    assert api.get(_url(case_id, "/nope")).status_code == 404
    assert api.post(_url(case_id), json=zone_feature("off-up", measure_id="zone-up")).status_code == 409


def _problems(response) -> list[dict]:
    assert response.status_code == 422, response.text
    body = response.json()
    assert body["detail"]  # a readable sentence
    return body["problems"]


def test_self_intersecting_geometry_is_refused_with_reason(stack):
    case_id = register_pair(stack, "off-bow", "vic-bow")
    lat, lon = ROTTERDAM
    a, b, c, d = (offset(lat, lon, e, n) for e, n in ((0, 0), (300, 300), (300, 0), (0, 300)))
    bowtie = zone_feature("off-bow")
    bowtie["geometry"]["coordinates"] = [[[p[1], p[0]] for p in (a, b, c, d, a)]]
    [problem] = _problems(stack.api().post(_url(case_id), json=bowtie))
    assert problem["code"] == "invalid_geometry" and problem["path"] == "geometry"
    assert "Self-intersection" in problem["message"]


def test_refusals_never_repeat_a_coordinate_or_a_value_sent(stack):
    """A bow-tie, a ring of three positions and other bad values get a 422 that says why
    without the positions of the zone or the values sent; nothing is stored."""
    case_id = register_pair(stack, "off-echo", "vic-echo")
    lat, lon = ROTTERDAM
    a, b, c, d = (offset(lat, lon, e, n) for e, n in ((0, 0), (300, 300), (300, 0), (0, 300)))
    bowtie = zone_feature("off-echo")
    bowtie["geometry"]["coordinates"] = [[[p[1], p[0]] for p in (a, b, c, d, a)]]
    short = zone_feature("off-echo")
    short["geometry"]["coordinates"] = [[[p[1], p[0]] for p in (a, b, a)]]
    values = zone_feature("off-echo", valid_from="yesterday 12.5", pre_alert_m=-3.25,
                          time_windows=[{"days": ["someday"], "start": "08:00", "end": "9.75"}])
    huge = ban_feature("off-echo", "vic-echo", radius_m=123456789.5)
    for body, reason in ((bowtie, "Self-intersection"), (short, "Too few points"),
                         (values, "ISO 8601"), (huge, "radius")):
        response = stack.api().post(_url(case_id), json=body)
        problems = _problems(response)
        assert any(reason in p["message"] for p in problems), problems
        assert re.search(r"\d\.\d", response.text) is None, response.text
        for sent in ("yesterday", "someday", "123456789"):
            assert sent not in response.text
    assert stack.api().get(_url(case_id)).json()["features"] == []


def test_absurd_size_is_refused_with_reason(stack):
    case_id = register_pair(stack, "off-big", "vic-big")
    problems = _problems(stack.api().post(
        _url(case_id), json=zone_feature("off-big", half_m=40_000.0)))
    assert [p["code"] for p in problems] == ["absurd_size"]
    assert "km²" in problems[0]["message"]
    ban = ban_feature("off-big", "vic-big", radius_m=500_000)
    assert [p["code"] for p in _problems(stack.api().post(_url(case_id), json=ban))] == [
        "absurd_size"]


def test_zone_around_offenders_home_needs_an_exception(stack):
    case_id = register_pair(stack, "off-home", "vic-home")
    api = stack.api()
    lat, lon = ROTTERDAM
    assert api.put(f"/api/v1/cases/{case_id}/offender-home",
                   json={"lat": lat, "lon": lon}).status_code == 200
    [problem] = _problems(api.post(_url(case_id), json=zone_feature("off-home")))
    assert problem["code"] == "home_inside_zone"
    assert "registered home" in problem["message"] and "exception" in problem["message"]
    corridor = {"geometry": {"type": "Polygon", "coordinates": [square(lat, lon, 20.0)]},
                "reason": "corridor to own address"}
    allowed = zone_feature("off-home", exceptions=[corridor])
    assert api.post(_url(case_id), json=allowed).status_code == 201


def test_devices_must_belong_to_the_case(stack):
    case_id = register_pair(stack, "off-own", "vic-own")
    register_pair(stack, "off-other", "vic-other")
    api = stack.api()
    problems = _problems(api.post(_url(case_id), json=zone_feature("off-other")))
    assert problems == [{"code": "device_not_in_case",
                         "path": "properties.subject_device_ids[0]",
                         "message": "device off-other is not a device of this case"}]
    problems = _problems(api.post(_url(case_id), json=ban_feature("off-own", "vic-other")))
    assert [p["code"] for p in problems] == ["device_not_in_case"]
    swapped = _problems(api.post(_url(case_id), json=ban_feature("vic-own", "off-own")))
    assert {p["code"] for p in swapped} == {"wrong_device_role"}
    assert api.get(_url(case_id)).json()["features"] == []


def test_collection_is_all_or_nothing_with_every_reason(stack):
    case_id = register_pair(stack, "off-col", "vic-col")
    api = stack.api()
    good = zone_feature("off-col", measure_id="good")
    bad = zone_feature("off-col", measure_id="bad", half_m=40_000.0)
    problems = _problems(api.post(_url(case_id), json={"type": "FeatureCollection",
                                                       "features": [good, bad, {"x": 1}]}))
    paths = [p["path"] for p in problems]
    assert paths[0] == "features[1].geometry" and paths[1].startswith("features[2].")
    assert api.get(_url(case_id)).json()["features"] == []
    assert api.post(_url(case_id), json={"type": "Point"}).status_code == 422


def test_a_reference_or_authority_the_record_cannot_keep_is_refused(stack):
    case_id = register_pair(stack, "off-ref", "vic-ref")
    api = stack.api()
    long_ref = zone_feature("off-ref", measure_id="zone-ref", reference="C/10/" + "9" * 85)
    problems = _problems(api.post(_url(case_id), json=long_ref))
    assert [(p["code"], p["path"]) for p in problems] == [
        ("invalid_field", "properties.reference")]
    bad_authority = zone_feature("off-ref", measure_id="zone-ref", authority="R" * 129)
    problems = _problems(api.post(_url(case_id), json=bad_authority))
    assert [p["path"] for p in problems] == ["properties.authority"]
    control = zone_feature("off-ref", measure_id="zone-ref", reference="C/10\x00/1")
    assert [p["path"] for p in _problems(api.post(_url(case_id), json=control))] == [
        "properties.reference"]
    assert api.get(_url(case_id), params={"include_inactive": True}).json()["features"] == []
    assert api.post(_url(case_id), json=zone_feature("off-ref", measure_id="zone-ref")
                    ).status_code == 201
    assert _problems(api.put(_url(case_id, "/zone-ref"), json=long_ref))
    assert api.get(_url(case_id, "/zone-ref")).json()["properties"]["version"] == 1


def test_an_exception_whose_reason_is_too_long_is_refused_and_nothing_stored(stack):
    case_id = register_pair(stack, "off-why", "vic-why")
    api = stack.api()
    lat, lon = ROTTERDAM
    corridor = {"geometry": {"type": "Polygon", "coordinates": [square(lat, lon, 20.0)]},
                "reason": "corridor " * 100}
    zone = zone_feature("off-why", measure_id="zone-why", exceptions=[corridor])
    response = api.post(_url(case_id), json=zone)
    [problem] = _problems(response)
    assert problem["path"] == "properties.exceptions[0].reason"
    assert "at most 500 characters" in problem["message"]
    assert "at most 500 characters" in response.json()["detail"]
    assert api.get(_url(case_id), params={"include_inactive": True}).json()["features"] == []

    corridor["reason"] = "corridor to own address"
    assert api.post(_url(case_id), json=zone).status_code == 201
    corridor["reason"] = "R" * 501
    assert _problems(api.put(_url(case_id, "/zone-why"), json=zone))
    stored = api.get(_url(case_id, "/zone-why")).json()
    assert stored["properties"]["version"] == 1
    assert stored["properties"]["exceptions"][0]["reason"] == "corridor to own address"


def _with_altitudes(feature: dict) -> dict:
    """The feature with an altitude on every position, as GIS exports may write them."""
    rings = feature["geometry"]["coordinates"]
    feature["geometry"]["coordinates"] = [[[lon, lat, 12.5] for lon, lat in r] for r in rings]
    return feature


def test_positions_with_altitudes_are_stored_in_two_dimensions(stack):
    case_id = register_pair(stack, "off-alt", "vic-alt")
    api = stack.api()
    lat, lon = ROTTERDAM
    corridor = {"geometry": {"type": "Polygon", "coordinates": [square(lat, lon, 20.0)]},
                "reason": "corridor"}
    zone = _with_altitudes(zone_feature("off-alt", measure_id="zone-alt",
                                        exceptions=[_with_altitudes(corridor)]))
    created = api.post(_url(case_id), json=zone)
    assert created.status_code == 201, created.text
    wider = _with_altitudes(zone_feature("off-alt", half_m=300.0))
    replaced = api.put(_url(case_id, "/zone-alt"), json=wider)
    assert replaced.status_code == 200, replaced.text
    stored = api.get(_url(case_id, "/zone-alt")).json()
    ring = stored["geometry"]["coordinates"][0]
    assert all(len(p) == 2 for p in ring)
    for got, sent in zip(ring, square(lat, lon, 300.0), strict=True):
        assert abs(got[0] - sent[0]) < 1e-9 and abs(got[1] - sent[1]) < 1e-9
    assert stored["properties"]["version"] == 2
    created_ring = created.json()["properties"]["exceptions"][0]["geometry"]["coordinates"][0]
    assert all(len(p) == 2 for p in created_ring)


def test_every_change_of_a_measure_is_in_the_case_log_without_its_geometry(stack):
    """Imported, replaced, deactivated: each a `measure` entry of the case log (which the
    police read too), naming the measure and its version, never a coordinate; a refused
    import leaves no entry."""
    case_id = register_pair(stack, "off-log", "vic-log")
    api = stack.api()
    log_url = f"/api/v1/cases/{case_id}/log"

    def measure_entries() -> list[dict]:
        entries = api.get(log_url).json()
        entries = entries["entries"] if isinstance(entries, dict) else entries
        return [e for e in entries if e["kind"] == "measure" and "measure_id" in e["data"]]

    assert api.post(_url(case_id), json=zone_feature("off-log", measure_id="zone-log"))\
        .status_code == 201
    assert api.put(_url(case_id, "/zone-log"), json=zone_feature("off-log", half_m=300.0))\
        .status_code == 200
    assert api.delete(_url(case_id, "/zone-log")).status_code == 200
    assert api.post(_url(case_id), json=zone_feature("off-else", measure_id="zone-bad"))\
        .status_code == 422
    entries = measure_entries()
    assert [(e["data"]["measure_id"], e["data"]["change"], e["data"]["version"])
            for e in entries] == [("zone-log", "imported", 1), ("zone-log", "replaced", 2),
                                  ("zone-log", "deactivated", 3)]
    assert entries[0]["data"]["reference"] == "C/10/123456"
    lat, lon = ROTTERDAM
    for e in entries:
        text = str(e["data"])
        assert "coordinates" not in text and f"{lat:.3f}"[:6] not in text


T_MS = 1_767_261_600_000  # 2026-01-01 in Unix milliseconds (the year 57972 read as seconds)


def test_a_time_in_milliseconds_is_a_clear_422_and_nothing_is_stored(stack):
    case_id = register_pair(stack, "off-ms", "vic-ms")
    api = stack.api()
    [problem] = _problems(api.post(_url(case_id), json=zone_feature(
        "off-ms", measure_id="zone-ms", valid_from=T_MS)))
    assert problem["path"] == "properties.valid_from" and "milliseconds" in problem["message"]
    corridor = {"geometry": {"type": "Polygon", "coordinates": [square(*ROTTERDAM, 10.0)]},
                "valid_from": T_MS}
    [problem] = _problems(api.post(_url(case_id), json=zone_feature(
        "off-ms", measure_id="zone-ms2", exceptions=[corridor])))
    assert problem["path"] == "properties.exceptions[0].valid_from"
    exported = api.get(_url(case_id), params={"include_inactive": True})
    assert exported.status_code == 200 and exported.json()["features"] == []


def test_an_exception_time_stored_before_times_were_checked_still_exports(stack):
    """A measure stored with an exception time in milliseconds (before the check) no longer
    makes the export of the whole case fail: the time is given as the number stored."""
    case_id = register_pair(stack, "off-old", "vic-old")
    measure = measure_from_feature(dict(zone_feature("off-old", measure_id="zone-old"),
                                        properties={**zone_feature("off-old")["properties"],
                                                    "case_id": str(case_id)}))
    corridor = Exemption(geometry=shape({"type": "Polygon",
                                         "coordinates": [square(*ROTTERDAM, 10.0)]}),
                         valid_from=T_MS)
    with stack.runtime.sessions.begin() as s:
        service.insert(s, "zone-old", case_id, repository.measure_values(
            replace(measure, exceptions=(corridor,))))
    exported = stack.api().get(_url(case_id))
    assert exported.status_code == 200, exported.text
    [feature] = exported.json()["features"]
    assert feature["properties"]["exceptions"][0]["valid_from"] == T_MS


def test_string_coordinates_are_refused(stack):
    case_id = register_pair(stack, "off-str", "vic-str")
    zone = zone_feature("off-str", measure_id="zone-str")
    ring = zone["geometry"]["coordinates"][0]
    zone["geometry"]["coordinates"][0] = [[str(lon), str(lat)] for lon, lat in ring]
    [problem] = _problems(stack.api().post(_url(case_id), json=zone))
    assert problem["path"] == "geometry" and "numbers" in problem["message"]


def test_a_body_beyond_the_limit_is_refused_unread_and_nothing_stored(stack):
    case_id = register_pair(stack, "off-big", "vic-big")
    api = stack.api()
    zone = zone_feature("off-big", measure_id="zone-big",
                        reference="C/10/1", authority="R" * 100)
    zone["properties"]["padding"] = "x" * MAX_BODY_BYTES
    response = api.post(_url(case_id), json=zone)
    assert response.status_code == 413 and "in parts" in response.json()["detail"]
    replaced = api.put(_url(case_id, "/zone-big"), json=zone)
    assert replaced.status_code == 413
    assert api.get(_url(case_id), params={"include_inactive": True}).json()["features"] == []
    response = api.post(_url(case_id), content=b"{not json",
                        headers={"Content-Type": "application/json"})
    [problem] = _problems(response)
    assert problem["path"] == "body"
