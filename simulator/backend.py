"""A running backend, seen from the simulator: register a scenario over the REST API and read
back the alerts it raised.

- `BackendClient`: bearer-token calls with explicit timeouts (httpx). Give it a URL and a token,
  or an `httpx.Client` of your own (tests pass the FastAPI TestClient).
- `register_scenario(client, scenario)`: one case per scenario run (marked `exercise`, so the
  routing policy sends its alerts to the exercise endpoints, never to live recipients), its
  devices in their roles, and its measures as one GeoJSON FeatureCollection.
- `register_fleet(client, devices, run_id)`: a fleet's devices, a victim and an offender per
  exercise case (no measures: a random fleet's alerts are its panic presses).
- `BackendAlertSource`: an `AlertSource` for `simulator.runner` that lists the backend's alerts
  (`GET /api/v1/alerts?state=all`) and maps each alert document to a `RaisedAlert`, with the
  time an `AlertStream` first saw it raised.
- `AlertStream`: follows the console stream (`/api/v1/stream?with_location=false`) in a thread
  and notes when each alert's `alert.raised` frame arrived: the end of the runner's latency.

The alerts are read without their positions (`with_location=false`): the simulator needs none,
and a position read would be released to it and audited at every poll. Errors name the request
and the status, never a position.
"""

from __future__ import annotations

import dataclasses
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Self

import httpx
import orjson
from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import ClientConnection
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from simulator.device import Role
from simulator.errors import BackendError
from simulator.runner import RaisedAlert
from simulator.scenarios import DeviceInfo, Scenario

ALERTS_LIMIT = 1_000  # the API's maximum page; P1 first, newest first within a priority
CASE_REFERENCE_MAX = 32  # backend.cases.schemas.CaseCreate.reference


def new_run_id() -> str:
    """A short random suffix that keeps one run's ids apart from every other run's."""
    return uuid.uuid4().hex[:8]


def case_reference(scenario: Scenario, run_id: str) -> str:
    """`SIM-<run id>-<scenario>`, within the backend's 3-32 characters `[A-Za-z0-9_-]`."""
    return f"SIM-{run_id}-{scenario.name}-{scenario.seed}"[:CASE_REFERENCE_MAX]


def measure_feature(measure: Mapping[str, Any], reference: str = "") -> dict[str, Any]:
    """One scenario measure (`Measure.to_dict()`) as the GeoJSON Feature of the measures API
    (see `geofences.geojson`): an exclusion zone by area, or a contact ban without geometry."""
    kind = measure["kind"]
    properties: dict[str, Any] = {
        "kind": kind,
        "subject_device_ids": [measure["offender_id"]],
        "authority": "simulator",
        "reference": reference,
    }
    geometry = None
    if kind == "contact_ban":
        properties["radius_m"] = measure["radius_m"]
        properties["protected_device_ids"] = [measure["victim_id"]]
    elif kind == "exclusion_zone":
        geometry = measure["geometry"]
    else:
        raise ValueError(f"unknown measure kind {kind!r}")
    return {
        "type": "Feature",
        "id": measure["measure_id"],
        "geometry": geometry,
        "properties": properties,
    }


def _timestamp(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        return None


def raised_alert(document: Mapping[str, Any]) -> RaisedAlert | None:
    """An alert document (`schildwacht.alert/1`) as a `RaisedAlert`; None for an alert without a
    device (a desk-wide storm summary)."""
    device = document.get("device")
    device_id = device.get("id") if isinstance(device, Mapping) else None
    if not isinstance(device_id, str):
        return None
    message_id = document.get("message_id")
    alert_id = document.get("alert_id")
    return RaisedAlert(
        type=str(document.get("type")),
        device_id=device_id,
        raised_at=_timestamp(document.get("raised_at")),
        flags=tuple(str(f) for f in document.get("flags") or ()),
        ref=message_id if isinstance(message_id, str) else None,
        alert_id=alert_id if isinstance(alert_id, str) else None,
    )


@dataclass(frozen=True, slots=True)
class Registration:
    """What one scenario run registered with the backend."""

    run_id: str
    case_id: str
    case_reference: str
    device_ids: tuple[str, ...]
    measure_ids: tuple[str, ...]


class BackendClient:
    """The backend's REST API with an admin (or case director) bearer token. The timeouts apply
    to a client made here; a client passed in keeps its own."""

    def __init__(
        self,
        base_url: str | None = None,
        token: str | None = None,
        *,
        client: httpx.Client | None = None,
        timeout_s: float = 10.0,
        connect_timeout_s: float = 3.0,
    ) -> None:
        if client is None:
            if base_url is None:
                raise ValueError("give a base URL or an httpx.Client")
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            client = httpx.Client(
                base_url=base_url,
                headers=headers,
                timeout=httpx.Timeout(timeout_s, connect=connect_timeout_s),
            )
            self._owned = True
        else:
            if token:
                client.headers["Authorization"] = f"Bearer {token}"
            self._owned = False
        self._http = client

    def close(self) -> None:
        if self._owned:
            self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- plumbing -------------------------------------------------------------------------------
    def _call(
        self, method: str, path: str, what: str, *, json: Any = None, params: Any = None
    ) -> Any:
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise BackendError(f"{what}: {type(exc).__name__}: {exc}") from exc
        if response.status_code >= 400:
            raise BackendError(
                f"{what}: HTTP {response.status_code}{_reason(response)}"
            )
        try:
            return response.json()
        except ValueError as exc:
            raise BackendError(f"{what}: the answer is not JSON") from exc

    # -- the calls ------------------------------------------------------------------------------
    def create_case(
        self,
        reference: str,
        *,
        home_police_unit: str | None = None,
        exercise: bool = True,
    ) -> str:
        body: dict[str, Any] = {"reference": reference, "exercise": exercise}
        if home_police_unit:
            body["home_police_unit"] = home_police_unit
        case = self._call(
            "POST", "/api/v1/cases", f"create case {reference}", json=body
        )
        return str(case["id"])

    def register_device(self, device_id: str, case_id: str, role: str) -> None:
        body = {"id": device_id, "case_id": case_id, "role": role}
        self._call("POST", "/api/v1/devices", f"register device {device_id}", json=body)

    def deactivate_device(self, device_id: str) -> None:
        body = {"active": False}
        self._call("PATCH", f"/api/v1/devices/{device_id}", f"deactivate device {device_id}",
                   json=body)

    def import_measures(
        self, case_id: str, features: Sequence[Mapping[str, Any]]
    ) -> list[str]:
        body = {"type": "FeatureCollection", "features": list(features)}
        stored = self._call(
            "POST",
            f"/api/v1/cases/{case_id}/measures",
            f"import measures of case {case_id}",
            json=body,
        )
        return [str(f["id"]) for f in stored.get("features", [])]

    def alerts(
        self, state: str = "all", limit: int = ALERTS_LIMIT
    ) -> list[dict[str, Any]]:
        documents = self._call(
            "GET",
            "/api/v1/alerts",
            "list alerts",
            params={"state": state, "limit": limit, "with_location": "false"},
        )
        if not isinstance(documents, list):
            raise BackendError("list alerts: expected a list")
        return documents


def _reason(response: httpx.Response) -> str:
    """The error's problem codes or detail, never a request body (which may hold positions)."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, Mapping):
        return ""
    problems = body.get("problems")
    if isinstance(problems, list) and problems:
        codes = [
            f"{p.get('code')} at {p.get('path')}"
            for p in problems
            if isinstance(p, Mapping)
        ]
        return ": " + "; ".join(codes[:10])
    detail = body.get("detail")
    if isinstance(detail, str):
        return f": {detail[:200]}"
    if isinstance(detail, list):  # FastAPI validation errors: field locations only
        locations = [
            ".".join(str(x) for x in d.get("loc", ()))
            for d in detail
            if isinstance(d, Mapping)
        ]
        return ": invalid " + ", ".join(locations[:10])
    return ""


def register_scenario(
    client: BackendClient, scenario: Scenario, run_id: str, *, exercise: bool = True
) -> Registration:
    """Create the scenario's case, register its devices and import its measures."""
    data = scenario.registration()
    reference = case_reference(scenario, run_id)
    units = [d["police_unit"] for d in data["devices"] if d.get("police_unit")]
    case_id = client.create_case(
        reference, home_police_unit=units[0] if units else None, exercise=exercise
    )
    device_ids = []
    for device in data["devices"]:
        client.register_device(device["device_id"], case_id, device["role"])
        device_ids.append(device["device_id"])
    measure_ids: list[str] = []
    if data["measures"]:
        features = [measure_feature(m, reference) for m in data["measures"]]
        measure_ids = client.import_measures(case_id, features)
    return Registration(
        run_id, case_id, reference, tuple(device_ids), tuple(measure_ids)
    )


def stream_url(base_url: str) -> str:
    """The console stream of the API at `base_url`, without positions (nothing to audit)."""
    url = httpx.URL(base_url)
    scheme = {"http": "ws", "https": "wss"}.get(url.scheme)
    if scheme is None:
        raise ValueError(f"not an http(s) URL: {base_url!r}")
    path = url.path.rstrip("/") + "/api/v1/stream"
    return str(url.copy_with(scheme=scheme, path=path, query=b"with_location=false"))


def raised_frame(frame: str | bytes) -> str | None:
    """The alert id of an `alert.raised` console frame; None for any other frame."""
    try:
        event = orjson.loads(frame)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(event, dict) or event.get("event") != "alert.raised":
        return None
    alert = event.get("alert")
    alert_id = alert.get("alert_id") if isinstance(alert, dict) else None
    return alert_id if isinstance(alert_id, str) else None


class AlertStream:
    """When each alert was first seen raised on the console stream (wall-clock Unix time).

    Connects at once (bounded by `open_timeout_s`; a `BackendError` when it cannot) and reads
    frames in a daemon thread until `close()` or until the server ends the stream.
    """

    def __init__(
        self,
        base_url: str,
        token: str,
        *,
        open_timeout_s: float = 5.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self.opened_at = clock()
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        try:
            self._ws: ClientConnection = ws_connect(
                stream_url(base_url),
                subprotocols=[Subprotocol("bearer"), Subprotocol(token)],
                open_timeout=open_timeout_s,
                close_timeout=2.0,
            )
        except (OSError, TimeoutError, WebSocketException) as exc:
            raise BackendError(f"follow the alert stream: {type(exc).__name__}") from exc
        self._thread = threading.Thread(target=self._read, name="alert-stream", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                frame = self._ws.recv(timeout=0.5)
            except TimeoutError:
                continue
            except ConnectionClosed:
                return
            alert_id = raised_frame(frame)
            if alert_id is not None:
                with self._lock:
                    self._seen.setdefault(alert_id, self._clock())

    @property
    def open(self) -> bool:
        return self._thread.is_alive()

    def seen_at(self, alert_id: str | None) -> float | None:
        if alert_id is None:
            return None
        with self._lock:
            return self._seen.get(alert_id)

    def close(self) -> None:
        self._stop.set()
        self._ws.close()
        self._thread.join(5.0)


def fleet_case_reference(run_id: str, index: int) -> str:
    """`SIM-<run id>-F<index>`: the fleet's case `index` of one run."""
    return f"SIM-{run_id}-F{index:05d}"


def register_fleet(
    client: BackendClient, devices: Sequence[DeviceInfo], run_id: str, *, exercise: bool = True
) -> list[str]:
    """Register a fleet (`runner.Fleet.infos`): victim i and offender i share case i (an
    exercise case, home region that of the victim's municipality, else the offender's); a
    device without a counterpart has a case of its own. Returns the case ids."""
    victims = [d for d in devices if d.role is Role.VICTIM]
    offenders = [d for d in devices if d.role is Role.OFFENDER]
    case_ids = []
    for index in range(max(len(victims), len(offenders))):
        members = [group[index] for group in (victims, offenders) if index < len(group)]
        case_id = client.create_case(
            fleet_case_reference(run_id, index),
            home_police_unit=next((d.police_unit for d in members if d.police_unit), None),
            exercise=exercise,
        )
        for device in members:
            client.register_device(device.device_id, case_id, device.role.value)
        case_ids.append(case_id)
    return case_ids


def retire_devices(client: BackendClient, device_ids: Sequence[str]) -> list[str]:
    """Deactivate the devices a run registered: a simulated device that stops publishing would
    otherwise stay registered, fall silent and raise exercise `device_silent` alerts long after
    the run. Their cases and alerts stay for inspection. Returns the ids that could not be
    deactivated (each call has the client's timeouts; one failure does not stop the rest)."""
    left = []
    for device_id in device_ids:
        try:
            client.deactivate_device(device_id)
        except BackendError:
            left.append(device_id)
    return left


class BackendAlertSource:
    """The alerts the backend has raised (all states), as `RaisedAlert`s; an `AlertSource`.

    With a `stream`, each carries the time the stream first saw it raised. The list can be
    read a moment before the stream's frame arrives: an alert raised since the stream opened
    and not seen yet is waited for, at most `catch_up_s` per call.
    """

    def __init__(
        self,
        client: BackendClient,
        limit: int = ALERTS_LIMIT,
        stream: AlertStream | None = None,
        catch_up_s: float = 1.0,
    ) -> None:
        self.client = client
        self.limit = limit
        self.stream = stream
        self.catch_up_s = catch_up_s

    def __call__(self) -> list[RaisedAlert]:
        found = (raised_alert(d) for d in self.client.alerts("all", self.limit))
        alerts = [a for a in found if a is not None]
        stream = self.stream
        if stream is None:
            return alerts
        deadline = time.monotonic() + self.catch_up_s
        while stream.open and time.monotonic() < deadline and any(
            stream.seen_at(a.alert_id) is None
            and a.raised_at is not None
            and a.raised_at >= stream.opened_at
            for a in alerts
        ):
            time.sleep(0.02)
        return [dataclasses.replace(a, seen_at=stream.seen_at(a.alert_id)) for a in alerts]
