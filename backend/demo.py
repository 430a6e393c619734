"""`schildwacht demo`: the whole alarm path on embedded defaults, no services needed.

SQLite in `.demo/`, the embedded MQTT broker, in-process state and hub, the API on
http://127.0.0.1:8000, and a few simulated victim devices in Rotterdam that report their position
and now and then press the panic button, so that alerts arrive.
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
from backend.mqtt.client import connect, make_client
from backend.mqtt.embedded import EmbeddedBroker, free_port
from backend.mqtt.network_loop import NetworkLoop
from backend.runtime import Runtime
from backend.settings import Settings

log = logging.getLogger("schildwacht.demo")

DEMO_DIR = Path(".demo")
ROTTERDAM = (51.9225, 4.4792)  # Rotterdam centre, where the demo devices walk
FIX_INTERVAL_S = 3.0
PANIC_EVERY_S = 25.0  # mean time between panic presses across the fleet


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
    """One demo case per victim device, each with an offender monitor; returns both ids."""
    ids = []
    with runtime.sessions.begin() as s:
        for i in range(1, victims + 1):
            case = Case(reference=f"DEMO-{i:04d}", home_police_unit="RE07", home_vr_code="VR17",
                        risk_level="high", custody_status="released")
            s.add(case)
            s.flush()
            s.add(Device(id=f"demo-victim-{i}", case_id=case.id, role="victim", report_interval_s=60))
            s.add(Device(id=f"demo-offender-{i}", case_id=case.id, role="offender",
                         report_interval_s=60))
            ids += [f"demo-victim-{i}", f"demo-offender-{i}"]
    return ids


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
        positions = {d: (ROTTERDAM[0] + self._rng.uniform(-0.02, 0.02),
                         ROTTERDAM[1] + self._rng.uniform(-0.03, 0.03)) for d in self._ids}
        presses = 0
        while not self._stop.wait(FIX_INTERVAL_S):
            now = time.time()
            for device_id, (lat, lon) in positions.items():
                lat += self._rng.gauss(0, 0.0002)
                lon += self._rng.gauss(0, 0.0003)
                positions[device_id] = (lat, lon)
                fix = Fix(tst=now, lat=lat, lon=lon, acc=self._rng.uniform(4, 25),
                          batt=self._rng.randint(40, 100))
                self._clients[device_id].publish(self._topics.loc(device_id), codec.encode(fix), 1)
            if self._rng.random() < FIX_INTERVAL_S / PANIC_EVERY_S:
                presses += 1
                device_id = self._rng.choice([d for d in self._ids if "victim" in d])
                lat, lon = positions[device_id]
                alarm = Alarm(id=f"demo-{int(now)}-{presses}", kind="panic", tst=now,
                              lat=lat, lon=lon, acc=8.0)
                self._clients[device_id].publish(
                    self._topics.alarm(device_id), codec.encode(alarm), 1)
                log.info("demo device %s pressed panic", device_id)


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
        "  Simulated victims and offenders walk in Rotterdam; a victim presses panic about every"
        " 25 s. Ctrl-C stops.\n",
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
