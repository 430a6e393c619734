"""Locust users for Schildwacht: MQTT devices and HTTP/WebSocket operators.

    locust -f loadtests/locustfile.py --headless -u 20 -r 5 --run-time 60s \
        --host http://127.0.0.1:8000 --csv out/run --html out/run.html

Environment: see `loadtests.locust_config` (SW_LOAD_TOKEN is required; the devices are
registered through the API at test start). Request events:

- MQTT `publish loc` / `publish alarm`: publish until PUBACK (QoS 1);
- MQTT `alarm -> ack received`: from pressing panic to the backend's `received` ack on the
  device's ack topic; a failure for every alarm without one when the run ends (a device that
  stops waits up to ACK_GRACE_S for the acks of its last alarms first);
- HTTP `GET /api/v1/alerts`, `POST /api/v1/alerts/[id]/acknowledge`;
- WS `alarm -> console frame`: from pressing panic to the `alert.raised` frame on
  `/api/v1/stream`.
"""

from __future__ import annotations

import itertools
import random
import socket
import sys
import time
import uuid

import gevent
import orjson
import paho.mqtt.client as mqtt
from locust import HttpUser, User, between, constant_pacing, events, task
from locust.exception import StopUser
from locust.stats import CSV_STATS_INTERVAL_SEC
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect as ws_connect
from websockets.typing import Subprotocol

from device_protocol import Alarm, Fix, Topics, codec
from loadtests.locust_config import LoadConfig, UnsafeLoad, check_bounds
from loadtests.locust_tracker import AlarmTracker

CFG = LoadConfig.from_env()
TOPICS = Topics(CFG.topic_root)
TRACKER = AlarmTracker()
ACK_GRACE_S = 5.0  # how long a stopping device waits for the acks of its alarms
ROTTERDAM = (51.9225, 4.4792)
_device_index = itertools.count()


def _auth() -> dict[str, str]:
    return {"Authorization": f"Bearer {CFG.token}"}


@events.init.add_listener
def _check_bounds(environment, **_kwargs) -> None:
    """Refuse, before anything runs, a load that is not loopback-only and bounded: the reason
    on stderr and exit code 2. (Refused at test start, locust idled on with exit code 0, for
    ever without --run-time.)"""
    opts = environment.parsed_options
    try:
        check_bounds(CFG, environment.host, (opts.num_users or 0) if opts else 0,
                     opts.run_time if opts else None,
                     headless=bool(opts.headless) if opts else False)
    except UnsafeLoad as exc:
        print(f"refusing to run: {exc}", file=sys.stderr)
        sys.exit(2)


@events.test_start.add_listener
def _register_devices(environment, **_kwargs) -> None:
    """Register one victim device (own case) per device slot."""
    import httpx

    with httpx.Client(base_url=environment.host, headers=_auth(), timeout=10) as client:
        for i in range(CFG.devices):
            device_id = CFG.device_id(i)
            if client.get(f"/api/v1/devices/{device_id}").status_code == 200:
                continue
            case = client.post("/api/v1/cases", json={
                "reference": f"LT-{CFG.run_id}-{i:04d}", "home_police_unit": "RE07"})
            case.raise_for_status()
            client.post("/api/v1/devices", json={
                "id": device_id, "case_id": case.json()["id"], "role": "victim",
                "report_interval_s": 30}).raise_for_status()


@events.test_stop.add_listener
def _report_missing_acks(environment, **_kwargs) -> None:
    """Every alarm without a `received` ack when the run ends is a failure (only those older
    than 15 s were, so that the alarms of a run's last 15 s, all of a short run's, were never
    checked)."""
    missing = 0
    for alarm_id in TRACKER.overdue(0.0):
        sent = TRACKER.acked(alarm_id)
        if sent is not None:
            missing += 1
            _fire(environment, "MQTT", "alarm -> ack received", sent,
                  TimeoutError(f"no ack for alarm {alarm_id} before the run ended"))
    opts = environment.parsed_options
    if missing and opts is not None and opts.csv_prefix:
        # Locust writes its CSV files every CSV_STATS_INTERVAL_SEC and not once more at the
        # end: without this wait the failures reach the console and HTML report, not the CSV.
        gevent.sleep(CSV_STATS_INTERVAL_SEC + 0.5)


def _fire(environment, request_type: str, name: str, started: float,
          exception: Exception | None = None, length: int = 0) -> None:
    environment.events.request.fire(
        request_type=request_type, name=name,
        response_time=(time.perf_counter() - started) * 1e3, response_length=length,
        exception=exception, context={},
    )


def _nodelay(_client, _userdata, sock) -> None:
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class DeviceUser(User):
    """A victim device: reports fixes and now and then presses panic (paho-mqtt 2, QoS 1)."""

    wait_time = constant_pacing(CFG.fix_every_s)

    def on_start(self) -> None:
        self.device_id = CFG.device_id(next(_device_index) % CFG.devices)
        self.rng = random.Random(self.device_id)
        self.alarms: list[str] = []
        self.lat = ROTTERDAM[0] + self.rng.uniform(-0.03, 0.03)
        self.lon = ROTTERDAM[1] + self.rng.uniform(-0.05, 0.05)
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                                  client_id=f"{self.device_id}-{uuid.uuid4().hex[:4]}",
                                  protocol=mqtt.MQTTv5)
        self.client.on_socket_open = _nodelay
        self.client.on_message = self._on_message
        started = time.perf_counter()
        try:
            self.client.connect("127.0.0.1", CFG.mqtt_port, keepalive=30)
            self.client.loop_start()
            self.client.subscribe(TOPICS.ack(self.device_id), qos=1)
        except OSError as exc:
            _fire(self.environment, "MQTT", "connect", started, exc)
            raise StopUser() from exc
        _fire(self.environment, "MQTT", "connect", started)

    def on_stop(self) -> None:
        """Wait (at most ACK_GRACE_S) for the acks of this device's alarms, then disconnect."""
        deadline = time.monotonic() + ACK_GRACE_S
        while time.monotonic() < deadline and any(TRACKER.waiting(a) for a in self.alarms):
            gevent.sleep(0.05)
        self.client.disconnect()
        self.client.loop_stop()

    def _on_message(self, client, userdata, msg) -> None:
        try:
            ack = codec.decode_ack(msg.payload)
        except Exception as exc:  # noqa: BLE001 - reported as a failed request
            _fire(self.environment, "MQTT", "alarm -> ack received", time.perf_counter(), exc)
            return
        if ack.state != "received":
            return
        sent = TRACKER.acked(ack.ref)
        if sent is not None:
            _fire(self.environment, "MQTT", "alarm -> ack received", sent, length=len(msg.payload))

    def _publish(self, name: str, topic: str, payload: bytes) -> None:
        started = time.perf_counter()
        info = self.client.publish(topic, payload, qos=1)
        error: Exception | None
        try:
            info.wait_for_publish(timeout=10)
            error = None if info.is_published() else TimeoutError("no PUBACK within 10 s")
        except (RuntimeError, ValueError) as exc:
            error = exc
        _fire(self.environment, "MQTT", name, started, error, len(payload))

    @task
    def tick(self) -> None:
        """One report: a panic press with probability SW_LOAD_ALARM_SHARE, else a fix."""
        if self.rng.random() < CFG.alarm_share:
            self.press_panic()
        else:
            self.report_fix()

    def report_fix(self) -> None:
        self.lat += self.rng.gauss(0, 0.0002)
        self.lon += self.rng.gauss(0, 0.0003)
        fix = Fix(tst=time.time(), lat=self.lat, lon=self.lon, acc=self.rng.choice((5.0, 10.0)),
                  vel=self.rng.uniform(0, 1.5), batt=80)
        self._publish("publish loc", TOPICS.loc(self.device_id), codec.encode(fix))

    def press_panic(self) -> None:
        alarm = Alarm(id=f"lt-{uuid.uuid4().hex[:16]}", kind="panic", tst=time.time(),
                      lat=self.lat, lon=self.lon, acc=8.0, batt=80)
        TRACKER.sent(alarm.id)  # before the publish: its ack may come before the PUBACK
        self.alarms.append(alarm.id)
        reported = False
        try:
            self._publish("publish alarm", TOPICS.alarm(self.device_id), codec.encode(alarm))
            reported = True
        finally:
            if not reported:  # the run ended during the publish: neither counted nor due
                TRACKER.unsent(alarm.id)


class OperatorUser(HttpUser):
    """A dispatcher console's queue: follows the stream, lists open alerts, acknowledges new
    ones; as the console's queue page, without positions (`with_location=false`), so that no
    read is released or audited."""

    wait_time = between(0.5, 1.5)
    fixed_count = 1

    def on_start(self) -> None:
        self.client.headers.update(_auth())
        self._ws_greenlet = gevent.spawn(self._follow_stream)

    def on_stop(self) -> None:
        self._ws_greenlet.kill(block=False)

    def _follow_stream(self) -> None:
        url = ((self.host or "").replace("http://", "ws://").rstrip("/")
               + "/api/v1/stream?with_location=false")
        started = time.perf_counter()
        try:
            ws = ws_connect(url, subprotocols=[Subprotocol("bearer"), Subprotocol(CFG.token)],
                            open_timeout=10)
        except Exception as exc:  # noqa: BLE001 - reported as a failed request
            _fire(self.environment, "WS", "connect /api/v1/stream", started, exc)
            return
        _fire(self.environment, "WS", "connect /api/v1/stream", started)
        with ws:
            while True:
                try:
                    frame = ws.recv(timeout=1.0)
                except TimeoutError:
                    continue
                except ConnectionClosed:
                    return
                event = orjson.loads(frame)
                if event.get("event") != "alert.raised":
                    continue
                sent = TRACKER.sent_at(event.get("alert", {}).get("message_id") or "")
                if sent is not None:
                    _fire(self.environment, "WS", "alarm -> console frame", sent, length=len(frame))

    @task
    def work_the_queue(self) -> None:
        with self.client.get("/api/v1/alerts?state=open&limit=100&with_location=false",
                             name="GET /api/v1/alerts",
                             catch_response=True) as r:
            if r.status_code != 200:
                r.failure(f"status {r.status_code}")
                return
            alerts = r.json()
        for alert in alerts:
            if alert.get("state") == "new" and str(alert.get("message_id", "")).startswith("lt-"):
                self.client.post(f"/api/v1/alerts/{alert['alert_id']}/acknowledge",
                                 json={"note": "load test"},
                                 name="POST /api/v1/alerts/[id]/acknowledge")
