"""The broker configuration in deploy/mosquitto/ enforces least privilege: a device may publish
only to its own topics, anonymous clients are refused; devices connect over TLS, on a listener
where a client's id is its user name, and the backend on listeners of its own.

The tests run the shipped mosquitto.conf with its paths in the broker's directory and its
listeners on free loopback ports; where a test has no certificate, the same listeners take
plain MQTT (`shipped`)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import tempfile
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.mqtt.client import connect as backend_connect
from backend.mqtt.client import make_client
from backend.mqtt.embedded import free_port
from backend.settings import BrokerSettings
from loadtests.broker import OwnMosquitto
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"
DEVICES = {"vic-001": "pw-vic-001", "vic-002": "pw-vic-002", "police": "pw-police",
           "anna": "pw-anna"}
BACKEND = {"schildwacht": "pw-backend"}
ALARM_WORKER = "schildwacht-ingest-alarm"  # the alarm worker's client id (`broker.client_id`)


def shipped(ports: dict[str, int], tls: bool = False, state: str = "{dir}") -> str:
    """deploy/mosquitto/mosquitto.conf, its files in the broker's directory (the device
    listener's password file `passwd`, the backend's `backend.passwd`), its state in `state`
    and its listeners on loopback: "backend" (1883), "backend_tls" (8884) and "devices"
    (8883). Without `tls` the TLS listeners take plain MQTT, each with its settings otherwise
    as shipped. (OwnMosquitto adds a listener of its own, which no account may log in on.)"""
    conf = (DEPLOY / "mosquitto.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/certs/broker.", "{dir}/broker.")
            .replace("/etc/mosquitto/schildwacht-backend.passwd", "{dir}/backend.passwd")
            .replace("/etc/mosquitto/schildwacht-backend.acl", "{dir}/backend.acl")
            .replace("/etc/mosquitto/schildwacht.passwd", "{dir}/passwd")
            .replace("/etc/mosquitto/schildwacht.acl", "{dir}/acl")
            .replace("/var/lib/mosquitto/", state.rstrip("/") + "/"))
    for name, shipped_as in (("backend", "1883 127.0.0.1"), ("backend_tls", "8884"),
                             ("devices", "8883")):
        assert f"listener {shipped_as}\n" in conf, name
        conf = conf.replace(f"listener {shipped_as}\n", f"listener {ports[name]} 127.0.0.1\n")
    if not tls:
        conf = re.sub(r"^(certfile|keyfile|tls_version) .*\n", "", conf, flags=re.MULTILINE)
    return conf


def shipped_broker(ports: dict[str, int], tls: bool = False, state: str = "{dir}",
                   files: dict[str, str] | None = None) -> OwnMosquitto:
    return OwnMosquitto(
        settings=shipped(ports, tls, state),
        files={"acl": (DEPLOY / "acl").read_text(),
               "backend.acl": (DEPLOY / "backend.acl").read_text(), **(files or {})},
        passwords={"passwd": DEVICES, "backend.passwd": BACKEND})


def listener_ports() -> dict[str, int]:
    return {name: free_port() for name in ("backend", "backend_tls", "devices")}


@pytest.fixture(scope="module")
def ports():
    ports = listener_ports()
    with shipped_broker(ports):
        yield ports


def connect(port: int, user: str | None, password: str | None, client_id: str | None = None,
            persistent: bool = False, on_message=None) -> tuple[mqtt.Client, object]:
    """A client logged in on this port (with a session that outlives the connection when
    `persistent`, and `on_message` set before what the session holds comes in) and the
    broker's answer."""
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                    client_id=client_id or f"t-{uuid.uuid4().hex[:8]}", protocol=mqtt.MQTTv5)
    if user:
        c.username_pw_set(user, password)
    result: dict = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        done.set()

    c.on_connect = on_connect
    c.on_message = on_message
    properties = None
    if persistent:
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3_600
    c.connect("127.0.0.1", port, clean_start=not persistent, properties=properties)
    c.loop_start()
    assert done.wait(5)
    return c, result["rc"]


def close(*clients: mqtt.Client) -> None:
    for c in clients:
        c.disconnect()
        c.loop_stop()


def test_anonymous_and_wrong_password_are_refused(ports):
    for port in ports.values():
        for user, password in ((None, None), ("vic-001", "wrong"), ("schildwacht", "wrong")):
            c, rc = connect(port, user, password)
            assert rc.is_failure
            c.loop_stop()


def test_each_listener_takes_its_own_accounts_only(ports):
    """A device (or a police system) cannot log in on the backend's listeners, where client ids
    are not tied to accounts; the backend's account is no account on the device listener."""
    for port, user, password in (
            (ports["backend"], "vic-001", "pw-vic-001"), (ports["backend_tls"], "police",
                                                          "pw-police"),
            (ports["devices"], "schildwacht", "pw-backend")):
        c, rc = connect(port, user, password)
        assert rc.is_failure, (port, user)
        c.loop_stop()
    for port, user, password in ((ports["backend"], "schildwacht", "pw-backend"),
                                 (ports["devices"], "vic-001", "pw-vic-001")):
        c, rc = connect(port, user, password)
        assert not rc.is_failure, (port, user)
        close(c)


def test_device_publishes_only_on_its_own_topics(ports):
    backend, rc = connect(ports["backend"], "schildwacht", "pw-backend")
    assert not rc.is_failure
    got: list[str] = []
    backend.on_message = lambda c, u, m: got.append(m.topic)
    backend.subscribe("sd/v1/dev/+/alarm", qos=1)
    time.sleep(0.3)
    device, _ = connect(ports["devices"], "vic-001", "pw-vic-001")
    own = device.publish("sd/v1/dev/vic-001/alarm", b'{"id":"1"}', qos=1)
    forged = device.publish("sd/v1/dev/vic-002/alarm", b'{"id":"2"}', qos=1)
    own.wait_for_publish(5)
    forged.wait_for_publish(5)
    time.sleep(0.5)
    assert got == ["sd/v1/dev/vic-001/alarm"]
    close(backend, device)


def test_device_reads_only_its_own_acks(ports):
    backend, _ = connect(ports["backend"], "schildwacht", "pw-backend")
    victim, _ = connect(ports["devices"], "vic-001", "pw-vic-001")
    got: list[str] = []
    victim.on_message = lambda c, u, m: got.append(m.topic)
    victim.subscribe([("sd/v1/dev/vic-001/ack", 1), ("sd/v1/dev/vic-002/ack", 1)])
    time.sleep(0.3)
    for device_id in ("vic-001", "vic-002"):
        backend.publish(f"sd/v1/dev/{device_id}/ack", b"{}", qos=1).wait_for_publish(5)
    time.sleep(0.5)
    assert got == ["sd/v1/dev/vic-001/ack"]
    close(backend, victim)


def test_a_phone_publishes_only_on_its_own_owntracks_topics(ports):
    """OwnTracks fixes (a victim's phone, docs/protocol.md) reach the backend from the phone's
    own user; another user's topic is refused."""
    backend, _ = connect(ports["backend"], "schildwacht", "pw-backend")
    got: list[str] = []
    backend.on_message = lambda c, u, m: got.append(m.topic)
    backend.subscribe("owntracks/+/+", qos=1)
    time.sleep(0.3)
    phone, rc = connect(ports["devices"], "anna", "pw-anna")
    assert not rc.is_failure
    for topic in ("owntracks/anna/phone", "owntracks/bob/phone"):
        phone.publish(topic, b'{"_type":"location"}', qos=1).wait_for_publish(5)
    time.sleep(0.5)
    assert got == ["owntracks/anna/phone"]
    close(backend, phone)


def _subscribe(c: mqtt.Client, topic: str) -> None:
    subscribed = threading.Event()
    c.on_subscribe = lambda *a: subscribed.set()
    c.subscribe(topic, qos=1)
    assert subscribed.wait(5)


def test_no_account_on_the_device_listener_takes_a_session_that_is_not_its_own(ports):
    """Client ids are tied to accounts where devices log in: a device that connects with the
    alarm worker's client id, and a police system with a victim's device id, each get the
    session of their own user name. The worker and the victim stay connected, her alarm
    reaches the worker, and the ack another backend process publishes (the same account, a
    client id of its own) reaches her."""
    settings = BrokerSettings(embedded=False, port=ports["backend"], username="schildwacht",
                              password="pw-backend")
    ended: list[str] = []  # connections the broker ended
    alarms: list[bytes] = []
    worker = make_client(settings, ALARM_WORKER, persistent=True)
    worker.on_message = lambda c, u, m: alarms.append(m.payload)
    worker.on_disconnect = lambda *a: ended.append("worker")
    worker_network = backend_connect(worker, settings, persistent=True)
    _subscribe(worker, "sd/v1/dev/+/alarm")
    api = make_client(settings, f"schildwacht-api-{uuid.uuid4().hex[:8]}")
    api.on_disconnect = lambda *a: ended.append("api")
    api_network = backend_connect(api, settings)
    acks: list[bytes] = []
    victim, _ = connect(ports["devices"], "vic-001", "pw-vic-001", client_id="vic-001",
                        persistent=True)
    victim.on_message = lambda c, u, m: acks.append(m.payload)
    victim.on_disconnect = lambda *a: ended.append("victim")
    _subscribe(victim, "sd/v1/dev/vic-001/ack")
    intruders = [connect(ports["devices"], "vic-002", "pw-vic-002", client_id=ALARM_WORKER),
                 connect(ports["devices"], "police", "pw-police", client_id="vic-001")]
    assert not any(rc.is_failure for _, rc in intruders)

    victim.publish("sd/v1/dev/vic-001/alarm", b'{"id":"a1"}', qos=1).wait_for_publish(5)
    wait_until(lambda: alarms, timeout=5)
    api.publish("sd/v1/dev/vic-001/ack", b'{"ref":"a1"}', qos=1).wait_for_publish(5)
    wait_until(lambda: acks, timeout=5)

    assert alarms == [b'{"id":"a1"}'] and acks == [b'{"ref":"a1"}']
    assert ended == []
    worker_network.stop()
    api_network.stop()
    close(victim, *(c for c, _ in intruders))


def test_a_broker_killed_comes_back_with_what_it_had_queued_before_its_last_save():
    """A broker that crashes (kill -9) starts again with the sessions and queued messages of
    its last save, which the shipped configuration makes every 10 s: an alarm the broker took
    while the worker was away reaches the worker after the crash and restart."""
    state = Path(tempfile.mkdtemp(prefix="sw-mosquitto-state-"))
    state.chmod(0o777)  # Mosquitto started as root writes it as its own user
    ports = listener_ports()
    try:
        with shipped_broker(ports, state=str(state)) as broker:
            worker, rc = connect(ports["backend"], "schildwacht", "pw-backend",
                                 client_id=ALARM_WORKER, persistent=True)
            assert not rc.is_failure
            _subscribe(worker, "sd/v1/dev/+/alarm")
            close(worker)
            victim, _ = connect(ports["devices"], "vic-001", "pw-vic-001")
            victim.publish("sd/v1/dev/vic-001/alarm", b'{"id":"a1"}', qos=1).wait_for_publish(5)
            close(victim)
            database = state / "mosquitto.db"
            before = _saved(database)
            # The shipped autosave_interval and a margin; without a save by then, the crash
            # below loses the alarm.
            deadline = time.monotonic() + 12
            while _saved(database) == before and time.monotonic() < deadline:
                time.sleep(0.1)
            os.kill(broker.pid, signal.SIGKILL)
        with shipped_broker(ports, state=str(state)):
            alarms: list[bytes] = []
            worker, rc = connect(ports["backend"], "schildwacht", "pw-backend",
                                 client_id=ALARM_WORKER, persistent=True,
                                 on_message=lambda c, u, m: alarms.append(m.payload))
            wait_until(lambda: alarms, timeout=5)
            close(worker)
            assert alarms == [b'{"id":"a1"}']
    finally:
        shutil.rmtree(state, ignore_errors=True)


def _saved(database: Path) -> tuple[int, int] | None:
    """Which save of the broker's state file this is (each save writes a new file)."""
    try:
        found = database.stat()
    except FileNotFoundError:
        return None
    return found.st_ino, found.st_mtime_ns


def test_sessions_without_an_expiry_end_and_the_state_is_saved_by_time():
    """MQTT 3.1.1 sessions (clean session false) never expire unless the broker ends them; the
    state is saved every few seconds, not after a count of changes (at thousands of fixes a
    second a count would save many times a second, each save holding the broker)."""
    settings = dict(line.split(None, 1) for line in
                    (DEPLOY / "mosquitto.conf").read_text().splitlines()
                    if line and not line.startswith("#"))
    assert settings["persistence"] == "true"
    assert 0 < int(settings["autosave_interval"]) <= 10
    assert settings.get("autosave_on_changes", "false") == "false"
    assert re.fullmatch(r"\d+[hdw]", settings["persistent_client_expiration"])


def _self_signed() -> tuple[str, str]:
    """A certificate for localhost and its key (PEM), made for the test."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(minutes=1)).not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return (cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode())


def test_the_shipped_configuration_takes_devices_over_tls_only(tmp_path):
    """deploy/mosquitto/mosquitto.conf as shipped (its paths and ports moved for the test):
    a device logs in and publishes over TLS, and a backend on another host takes it in over
    TLS too, on its own listener (`broker.tls`, `broker.ca_file`); plain MQTT on the device
    port gets nowhere. An alarm beyond the protocol's 8 KiB still reaches the backend; one
    beyond the broker's packet limit does not."""
    cert, key = _self_signed()
    ports = listener_ports()
    tls_port = ports["devices"]
    with shipped_broker(ports, tls=True, files={"broker.crt": cert, "broker.key": key}):
        (tmp_path / "ca.pem").write_text(cert)
        settings = BrokerSettings(embedded=False, host="localhost", port=ports["backend_tls"],
                                  tls=True,
                                  ca_file=str(tmp_path / "ca.pem"), username="schildwacht",
                                  password="pw-backend")
        backend = make_client(settings, f"backend-{uuid.uuid4().hex[:6]}")
        got: list[str] = []
        backend.on_message = lambda c, u, m: got.append(m.topic)
        network = backend_connect(backend, settings)
        backend.subscribe("sd/v1/dev/+/alarm", qos=1)
        time.sleep(0.3)
        device = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        device.tls_set(ca_certs=str(tmp_path / "ca.pem"))
        device.username_pw_set("vic-001", "pw-vic-001")
        device.connect("localhost", tls_port)
        device.loop_start()
        device.publish("sd/v1/dev/vic-001/alarm", b'{"id":"1"}', qos=1).wait_for_publish(5)
        time.sleep(0.5)
        assert got == ["sd/v1/dev/vic-001/alarm"]
        sizes: list[int] = []
        backend.on_message = lambda c, u, m: sizes.append(len(m.payload))
        oversize = b'{"id":"2","pad":"' + b"x" * 100_000 + b'"}'
        device.publish("sd/v1/dev/vic-001/alarm", oversize, qos=1).wait_for_publish(5)
        device.publish("sd/v1/dev/vic-001/alarm", b"x" * 300_000, qos=1)
        time.sleep(1.0)
        assert sizes == [len(oversize)]  # the 300 KB one never reached the backend
        plain = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        plain.username_pw_set("vic-001", "pw-vic-001")
        connected = threading.Event()
        plain.on_connect = lambda *a: connected.set()
        try:
            plain.connect("127.0.0.1", tls_port)
            plain.loop_start()
            assert not connected.wait(2)
        except OSError:
            pass  # refused outright: nowhere as well
        finally:
            plain.loop_stop()
        network.stop()
        device.disconnect()
        device.loop_stop()


def test_every_account_of_the_acl_is_a_name_no_device_may_take():
    """The ACL's device patterns apply to its service accounts too: the settings' default
    reserved names hold every `user` of the shipped ACLs (the API then refuses them)."""
    users = {line.split()[1] for name in ("acl", "backend.acl")
             for line in (DEPLOY / name).read_text().splitlines() if line.startswith("user ")}
    assert users and users <= BrokerSettings().reserved_names()
