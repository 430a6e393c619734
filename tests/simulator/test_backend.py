"""The backend client's pure parts and its error handling, over httpx's MockTransport."""

from __future__ import annotations

import httpx
import pytest

from device_protocol import Topics
from simulator import scenarios
from simulator.backend import (
    AlertStream,
    BackendAlertSource,
    BackendClient,
    case_reference,
    measure_feature,
    raised_alert,
    raised_frame,
    register_fleet,
    register_scenario,
    retire_devices,
    stream_url,
)
from simulator.errors import BackendError
from simulator.runner import build_fleet


def test_measures_become_features_of_the_measures_api() -> None:
    ban, zone = (
        scenarios.build(n).measures[0].to_dict() for n in ("approach", "zone_breach")
    )

    feature = measure_feature(ban, "SIM-x")
    assert feature["geometry"] is None and feature["id"] == ban["measure_id"]
    assert feature["properties"]["kind"] == "contact_ban"
    assert feature["properties"]["radius_m"] == 250.0
    assert feature["properties"]["subject_device_ids"] == [ban["offender_id"]]
    assert feature["properties"]["protected_device_ids"] == [ban["victim_id"]]

    feature = measure_feature(zone)
    assert feature["geometry"]["type"] == "Polygon"
    assert "radius_m" not in feature["properties"]
    with pytest.raises(ValueError):
        measure_feature({**zone, "kind": "curfew"})


def test_run_id_reaches_every_id_and_the_case_reference() -> None:
    scenario = scenarios.build("zone_breach", 3, run_id="ab12cd34")
    assert all(d.device_id.endswith("-ab12cd34") for d in scenario.devices)
    assert scenario.measures[0].measure_id.endswith("-ab12cd34")
    assert case_reference(scenario, "ab12cd34") == "SIM-ab12cd34-zone_breach-3"
    with pytest.raises(ValueError):
        scenarios.build("panic", run_id="no/slash")


def test_alert_documents_map_to_raised_alerts() -> None:
    document = {
        "type": "panic",
        "device": {"id": "vic-1", "role": "victim"},
        "raised_at": "2026-11-28T19:00:00+00:00",
        "flags": ["late"],
        "message_id": "a-1",
    }
    alert = raised_alert(document)
    assert alert is not None
    assert (alert.type, alert.device_id, alert.flags, alert.ref) == (
        "panic",
        "vic-1",
        ("late",),
        "a-1",
    )
    assert alert.raised_at == 1_795_892_400.0
    assert (
        raised_alert({**document, "device": None}) is None
    )  # a desk-wide storm summary


def _client(handler) -> BackendClient:
    http = httpx.Client(
        base_url="http://backend", transport=httpx.MockTransport(handler)
    )
    return BackendClient(client=http, token="t0ken")


def test_register_and_read_alerts_through_the_api() -> None:
    calls: list[tuple[str, str, str | None]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(
            (request.method, request.url.path, request.headers.get("authorization"))
        )
        if request.url.path == "/api/v1/cases":
            return httpx.Response(201, json={"id": "c0ffee"})
        if request.url.path.endswith("/measures"):
            features = httpx.Response(200, content=request.content).json()["features"]
            return httpx.Response(
                201, json={"type": "FeatureCollection", "features": features}
            )
        if request.url.path == "/api/v1/alerts":
            assert request.url.params["state"] == "all"
            # No position: none is released to the simulator or audited at each poll.
            assert request.url.params["with_location"] == "false"
            return httpx.Response(
                200,
                json=[{"type": "proximity", "device": {"id": "off-1"}, "flags": []}],
            )
        return httpx.Response(201, json={})

    client = _client(handler)
    done = register_scenario(client, scenarios.build("approach", run_id="r1"), "r1")

    assert (
        done.case_id == "c0ffee"
        and len(done.device_ids) == 2
        and len(done.measure_ids) == 1
    )
    assert [c[1] for c in calls] == [
        "/api/v1/cases",
        "/api/v1/devices",
        "/api/v1/devices",
        "/api/v1/cases/c0ffee/measures",
    ]
    assert {c[2] for c in calls} == {"Bearer t0ken"}
    assert [a.device_id for a in BackendAlertSource(client)()] == ["off-1"]


def test_refusals_name_the_problem_codes_never_the_body() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            422,
            json={
                "detail": "geometry: self-intersection at 4.47 51.92",
                "problems": [
                    {
                        "code": "invalid_geometry",
                        "path": "geometry",
                        "message": "at 4.47",
                    }
                ],
            },
        )

    with pytest.raises(BackendError) as caught:
        _client(handler).import_measures("c1", [])
    assert "invalid_geometry at geometry" in str(caught.value)
    assert "4.47" not in str(caught.value)


def test_an_unreachable_backend_is_a_backend_error() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    with pytest.raises(BackendError, match="create case"):
        _client(handler).create_case("SIM-1")


def test_the_console_stream_is_followed_without_positions() -> None:
    assert stream_url("http://127.0.0.1:8000") == (
        "ws://127.0.0.1:8000/api/v1/stream?with_location=false"
    )
    assert stream_url("https://api.example/base/").startswith("wss://api.example/base/api/v1/")
    with pytest.raises(ValueError):
        stream_url("ftp://127.0.0.1")


def test_only_raised_frames_name_an_alert() -> None:
    raised = b'{"event": "alert.raised", "alert": {"alert_id": "a1", "type": "panic"}}'
    assert raised_frame(raised) == "a1"
    assert raised_frame('{"event": "alert.updated", "alert": {"alert_id": "a1"}}') is None
    assert raised_frame('{"event": "alert.raised", "alert": null}') is None
    assert raised_frame("not json") is None
    assert raised_alert({"type": "panic", "device": {"id": "v"}, "alert_id": "a1"}).alert_id == (
        "a1"
    )


def test_a_stream_that_cannot_open_is_a_backend_error() -> None:
    from backend.mqtt.embedded import free_port

    with pytest.raises(BackendError, match="alert stream"):
        AlertStream(f"http://127.0.0.1:{free_port()}", "t0ken", open_timeout_s=2.0)


def test_a_fleet_is_registered_a_victim_and_an_offender_per_case() -> None:
    cases: list[dict] = []
    devices: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = httpx.Response(200, content=request.content).json()
        if request.url.path == "/api/v1/cases":
            cases.append(body)
            return httpx.Response(201, json={"id": f"case-{len(cases)}"})
        devices.append(body)
        return httpx.Response(201, json={})

    fleet = build_fleet(
        seed=1, victims=3, offenders=2, duration_s=60, start_epoch=scenarios.DEFAULT_START,
        topics=Topics(), run_id="r2",
    )
    assert register_fleet(_client(handler), fleet.infos, "r2") == ["case-1", "case-2", "case-3"]
    assert [c["reference"] for c in cases] == ["SIM-r2-F00000", "SIM-r2-F00001", "SIM-r2-F00002"]
    assert all(c["exercise"] is True and c["home_police_unit"] == "RE07" for c in cases)
    assert [(d["case_id"], d["role"]) for d in devices] == [
        ("case-1", "victim"), ("case-1", "offender"),
        ("case-2", "victim"), ("case-2", "offender"),
        ("case-3", "victim"),
    ]
    assert {d["id"] for d in devices} == {i.device_id for i in fleet.infos}
    assert all(d["id"].endswith("-r2") for d in devices)


def test_retiring_deactivates_each_device_and_names_those_left_active() -> None:
    patched: list[tuple[str, dict]] = []

    def handler(request: httpx.Request) -> httpx.Response:
        patched.append((request.method + " " + request.url.path,
                        httpx.Response(200, content=request.content).json()))
        if request.url.path.endswith("/vic-b"):
            return httpx.Response(503, json={"detail": "busy"})
        return httpx.Response(200, json={})

    left = retire_devices(_client(handler), ["vic-a", "vic-b", "off-c"])
    assert left == ["vic-b"]  # one refusal does not stop the others
    assert patched == [(f"PATCH /api/v1/devices/{d}", {"active": False})
                       for d in ("vic-a", "vic-b", "off-c")]
