"""`schildwacht demo`: the whole alarm path on embedded defaults, no services needed.

SQLite in `.demo/`, the embedded MQTT broker, in-process state and hub, the API on
http://127.0.0.1:8000, and a few simulated cases in Rotterdam: each victim's device reports its
position near her home and now and then she presses the panic button; each case has an
exclusion zone around her home and a contact ban for the offender, whose monitor reports from
a few kilometres away until, now and then, he drives to her home and back, so that geofence
alerts (approach, zone breach, proximity) arrive as well as panics.
"""

from __future__ import annotations

import logging
import random
import secrets
import shutil
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
from device_protocol import Alarm, Fix, Topics, codec
from pydantic import SecretStr

from backend.cases.models import Case
from backend.db.migrate import upgrade
from backend.devices.models import Device
from backend.measures import flows as measures
from backend.mqtt.client import connect, make_client
from backend.mqtt.embedded import EmbeddedBroker, free_port
from backend.mqtt.network_loop import NetworkLoop
from backend.runtime import Runtime
from backend.settings import Settings
from geofences.projection import projection_for

log = logging.getLogger("schildwacht.demo")

DEMO_DIR = Path(".demo")
ROTTERDAM = (51.9225, 4.4792)  # Rotterdam centre, where the victims live
FIX_INTERVAL_S = 3.0
PANIC_EVERY_S = 25.0  # mean time between panic presses across the fleet
ZONE_HALF_M = 250.0  # each victim's home is in an exclusion zone: a square this far each way
PRE_ALERT_M = 250.0  # around it, the ring where an approaching offender raises `approach`
BAN_RADIUS_M = 500.0  # the contact ban's distance
AWAY_M = (1_000.0, 0.0)  # where an offender's monitor reports from, east of her home
DRIVE_M = 60.0  # how far an approaching offender gets between two fixes (72 km/h)
STAY_FIXES = 5  # how many fixes he stays at her home before driving back
FIRST_APPROACH_FIX = 3  # the first approach starts at once (the third round of fixes) ...
APPROACH_EVERY_S = 90.0  # ... the next ones about this often across the fleet

_RD = projection_for("EPSG:28992")
offset = _RD.offset


def homes(victims: int, seed_value: int = 7) -> list[tuple[float, float]]:
    """Each demo victim's home (lat, lon), in Rotterdam, the same on every run."""
    rng = random.Random(seed_value)
    return [(ROTTERDAM[0] + rng.uniform(-0.02, 0.02), ROTTERDAM[1] + rng.uniform(-0.03, 0.03))
            for _ in range(victims)]


def demo_measures(home: tuple[float, float], victim: str, offender: str) -> dict:
    """The case's measures as the API imports them: an exclusion zone around her home and a
    contact ban, both for the offender's monitor."""
    corners = [offset(*home, e * ZONE_HALF_M, n * ZONE_HALF_M)
               for e, n in ((-1, -1), (1, -1), (1, 1), (-1, 1), (-1, -1))]
    common = {"subject_device_ids": [offender], "authority": "Rechtbank Rotterdam",
              "reference": "demo"}
    return {"type": "FeatureCollection", "features": [
        {"type": "Feature",
         "geometry": {"type": "Polygon", "coordinates": [[[lon, lat] for lat, lon in corners]]},
         "properties": {"kind": "exclusion_zone", "pre_alert_m": PRE_ALERT_M, **common}},
        {"type": "Feature", "geometry": None,
         "properties": {"kind": "contact_ban", "protected_device_ids": [victim],
                        "radius_m": BAN_RADIUS_M, "pre_alert_m": 0, **common}},
    ]}


def demo_settings(settings: Settings) -> Settings:
    """Embedded defaults for the demo, keeping anything the user set explicitly."""
    DEMO_DIR.mkdir(exist_ok=True)
    database = settings.database
    if database.url == "sqlite:///./schildwacht.db":
        database = database.model_copy(update={"url": f"sqlite:///{DEMO_DIR}/schildwacht.db"})
    port = settings.broker.port
    if settings.broker.embedded and not _port_free(settings.broker.host, port):
        port = free_port(settings.broker.host)
    broker = settings.broker.model_copy(update={"port": port, "protocol": "3.1.1"})
    api = settings.api
    if api.admin_token is None:
        api = api.model_copy(update={"admin_token": SecretStr(secrets.token_urlsafe(24))})
    # The demo serves plain HTTP on localhost: Secure cookies would never come back.
    console = settings.console.model_copy(update={"secure_cookies": False})
    return settings.model_copy(update={"database": database, "broker": broker, "api": api,
                                       "console": console})


def _port_free(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def seed(runtime: Runtime, victims: int) -> list[str]:
    """One demo case per victim device, each with an offender monitor and the case's
    measures; returns the device ids."""
    ids = []
    config = runtime.settings.geofence.to_config()
    with runtime.sessions.begin() as s:
        for i, home in enumerate(homes(victims), start=1):
            case = Case(reference=f"DEMO-{i:04d}", home_police_unit="RE07", home_vr_code="VR17",
                        risk_level="high", custody_status="released")
            s.add(case)
            s.flush()
            victim, offender = f"demo-victim-{i}", f"demo-offender-{i}"
            s.add(Device(id=victim, case_id=case.id, role="victim", report_interval_s=60))
            s.add(Device(id=offender, case_id=case.id, role="offender", report_interval_s=60))
            s.flush()
            measures.create(s, case.id, demo_measures(home, victim, offender), config)
            ids += [victim, offender]
    return ids


class Offender:
    """An offender's monitor: away from her home, or driving there, staying, driving back."""

    def __init__(self, home: tuple[float, float]) -> None:
        self.home = home
        self.away = offset(*home, *AWAY_M)
        self.at = self.away
        self.leg: list[tuple[float, float]] = []  # the positions still to report on the way

    @property
    def idle(self) -> bool:
        return not self.leg

    def approach(self) -> None:
        """Drive to her home, stay a while, drive back."""
        there = _route(self.away, self.home)
        self.leg = there + [self.home] * STAY_FIXES + there[::-1] + [self.away]

    def next_position(self, rng: random.Random) -> tuple[float, float]:
        if self.leg:
            self.at = self.leg.pop(0)
        else:
            self.at = (self.away[0] + rng.gauss(0, 0.0004), self.away[1] + rng.gauss(0, 0.0006))
        return self.at


def _route(a: tuple[float, float], b: tuple[float, float]) -> list[tuple[float, float]]:
    """Points from a to b (b included), `DRIVE_M` apart."""
    ax, ay = _RD.forward(a[1], a[0])
    bx, by = _RD.forward(b[1], b[0])
    steps = max(1, int(((bx - ax) ** 2 + (by - ay) ** 2) ** 0.5 // DRIVE_M))
    points = []
    for k in range(1, steps + 1):
        lon, lat = _RD.inverse(ax + (bx - ax) * k / steps, ay + (by - ay) * k / steps)
        points.append((lat, lon))
    return points


class DemoFleet:
    """Victim devices walking around Rotterdam, built only through `device_protocol`."""

    def __init__(self, settings: Settings, device_ids: list[str], seed_value: int = 7) -> None:
        self._settings = settings
        self._topics = Topics(settings.protocol.topic_root)
        self._ids = device_ids
        self._rng = random.Random(seed_value)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="demo-fleet", daemon=True)
        self._clients: dict[str, mqtt.Client] = {}
        self._networks: list[NetworkLoop] = []

    def start(self) -> None:
        for device_id in self._ids:
            client = make_client(self._settings.broker, device_id)
            self._networks.append(connect(client, self._settings.broker))
            self._clients[device_id] = client
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        for network in self._networks:
            network.stop()

    def _run(self) -> None:
        victims = [d for d in self._ids if "victim" in d]
        houses = dict(zip(victims, homes(len(victims)), strict=True))
        positions = dict(houses)
        offenders = {d.replace("victim", "offender"): Offender(houses[d]) for d in victims}
        presses = rounds = 0
        while not self._stop.wait(FIX_INTERVAL_S):
            now = time.time()
            rounds += 1
            idle = [o for o in offenders.values() if o.idle]
            if idle and (rounds == FIRST_APPROACH_FIX
                         or self._rng.random() < FIX_INTERVAL_S / APPROACH_EVERY_S):
                self._rng.choice(idle).approach()
                log.info("a demo offender drives to his victim's home")
            for device_id in victims:
                lat, lon = positions[device_id]
                home = houses[device_id]  # she stays near her home
                lat += self._rng.gauss(0, 0.0002) + (home[0] - lat) * 0.1
                lon += self._rng.gauss(0, 0.0003) + (home[1] - lon) * 0.1
                positions[device_id] = (lat, lon)
                self._report(device_id, lat, lon, now)
            for device_id, offender in offenders.items():
                self._report(device_id, *offender.next_position(self._rng), now)
            if self._rng.random() < FIX_INTERVAL_S / PANIC_EVERY_S:
                presses += 1
                device_id = self._rng.choice(victims)
                lat, lon = positions[device_id]
                alarm = Alarm(id=f"demo-{int(now)}-{presses}", kind="panic", tst=now,
                              lat=lat, lon=lon, acc=8.0)
                self._clients[device_id].publish(
                    self._topics.alarm(device_id), codec.encode(alarm), 1)
                log.info("demo device %s pressed panic", device_id)

    def _report(self, device_id: str, lat: float, lon: float, now: float) -> None:
        fix = Fix(tst=now, lat=lat, lon=lon, acc=self._rng.uniform(4, 25),
                  batt=self._rng.randint(40, 100))
        self._clients[device_id].publish(self._topics.loc(device_id), codec.encode(fix), 1)


def seed_desk_user(runtime: Runtime) -> str:
    """The demo's dispatcher account `desk` (Rotterdam-Rijnmond); returns its new password."""
    from backend.auth.users import add_user

    password = secrets.token_urlsafe(12)
    with runtime.sessions.begin() as s:
        add_user(s, "desk", password, "dispatcher", {"regions": ["VR17"]})
    return password


def run_demo(settings: Settings, devices: int = 4, duration_s: float | None = None) -> int:
    from backend.cli import _serve_api
    from backend.ingest.worker import IngestWorker

    shutil.rmtree(DEMO_DIR, ignore_errors=True)
    settings = demo_settings(settings)
    upgrade(settings.database.url)
    broker = EmbeddedBroker(settings.broker.host, settings.broker.port)
    broker.start()
    runtime = Runtime.build(settings)
    device_ids = seed(runtime, devices)
    desk_password = seed_desk_user(runtime)
    worker = IngestWorker(runtime)
    worker.start()
    runtime.start_background()
    fleet = DemoFleet(settings, device_ids)
    fleet.start()
    token = settings.api.admin_token.get_secret_value()  # type: ignore[union-attr]
    base = f"http://{settings.api.host}:{settings.api.port}"
    print(
        "\nSchildwacht demo is running (embedded: SQLite, in-process state, embedded MQTT broker"
        f" on port {settings.broker.port}).\n"
        f"  API docs:   {base}/docs\n"
        f"  Admin token (this run only): {token}\n"
        f"  Console:    {base}/console/  (user desk, password {desk_password}, dispatcher VR17)\n"
        f"  Open alerts: curl -H 'Authorization: Bearer {token}' {base}/api/v1/alerts\n"
        "  Simulated victims stay near their homes in Rotterdam and press panic about every 25 s;"
        " now and then an offender drives to his victim's home, into the exclusion zone around"
        " it. Ctrl-C stops.\n",
        flush=True,
    )
    try:
        _serve_api(runtime, settings, stop_after_s=duration_s)
    finally:
        fleet.stop()
        worker.stop()
        runtime.close()
        broker.stop()
    return 0
