"""The broker configuration in deploy/mosquitto/ enforces least privilege: a device may publish
only to its own topics, anonymous clients are refused; devices connect over TLS."""

from __future__ import annotations

import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

from backend.mqtt.client import connect as backend_connect
from backend.mqtt.client import make_client
from backend.mqtt.embedded import free_port
from backend.settings import BrokerSettings
from loadtests.broker import OwnMosquitto

pytestmark = pytest.mark.services
DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "mosquitto"


@pytest.fixture(scope="module")
def broker():
    acl = (DEPLOY / "acl").read_text()
    with OwnMosquitto(
        settings="per_listener_settings false\nallow_anonymous false\n"
                 "password_file {dir}/passwd\nacl_file {dir}/acl\n",
        files={"acl": acl},
        users={"vic-001": "pw-vic-001", "vic-002": "pw-vic-002",
               "schildwacht": "pw-backend", "police": "pw-police", "anna": "pw-anna"},
    ) as b:
        yield b


def connect(port: int, user: str | None, password: str | None) -> tuple[mqtt.Client, object]:
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"t-{uuid.uuid4().hex[:8]}",
                    protocol=mqtt.MQTTv5)
    if user:
        c.username_pw_set(user, password)
    result: dict = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties):
        result["rc"] = reason_code
        done.set()

    c.on_connect = on_connect
    c.connect("127.0.0.1", port)
    c.loop_start()
    assert done.wait(5)
    return c, result["rc"]


def test_anonymous_and_wrong_password_are_refused(broker):
    for user, password in ((None, None), ("vic-001", "wrong")):
        c, rc = connect(broker.port, user, password)
        assert rc.is_failure
        c.loop_stop()


def test_device_publishes_only_on_its_own_topics(broker):
    backend, rc = connect(broker.port, "schildwacht", "pw-backend")
    assert not rc.is_failure
    got: list[str] = []
    backend.on_message = lambda c, u, m: got.append(m.topic)
    backend.subscribe("sd/v1/dev/+/alarm", qos=1)
    time.sleep(0.3)
    device, _ = connect(broker.port, "vic-001", "pw-vic-001")
    own = device.publish("sd/v1/dev/vic-001/alarm", b'{"id":"1"}', qos=1)
    forged = device.publish("sd/v1/dev/vic-002/alarm", b'{"id":"2"}', qos=1)
    own.wait_for_publish(5)
    forged.wait_for_publish(5)
    time.sleep(0.5)
    assert got == ["sd/v1/dev/vic-001/alarm"]
    for c in (backend, device):
        c.disconnect()
        c.loop_stop()


def test_device_reads_only_its_own_acks(broker):
    backend, _ = connect(broker.port, "schildwacht", "pw-backend")
    victim, _ = connect(broker.port, "vic-001", "pw-vic-001")
    got: list[str] = []
    victim.on_message = lambda c, u, m: got.append(m.topic)
    victim.subscribe([("sd/v1/dev/vic-001/ack", 1), ("sd/v1/dev/vic-002/ack", 1)])
    time.sleep(0.3)
    for device_id in ("vic-001", "vic-002"):
        backend.publish(f"sd/v1/dev/{device_id}/ack", b"{}", qos=1).wait_for_publish(5)
    time.sleep(0.5)
    assert got == ["sd/v1/dev/vic-001/ack"]
    for c in (backend, victim):
        c.disconnect()
        c.loop_stop()


def test_a_phone_publishes_only_on_its_own_owntracks_topics(broker):
    """OwnTracks fixes (a victim's phone, docs/protocol.md) reach the backend from the phone's
    own user; another user's topic is refused."""
    backend, _ = connect(broker.port, "schildwacht", "pw-backend")
    got: list[str] = []
    backend.on_message = lambda c, u, m: got.append(m.topic)
    backend.subscribe("owntracks/+/+", qos=1)
    time.sleep(0.3)
    phone, rc = connect(broker.port, "anna", "pw-anna")
    assert not rc.is_failure
    for topic in ("owntracks/anna/phone", "owntracks/bob/phone"):
        phone.publish(topic, b'{"_type":"location"}', qos=1).wait_for_publish(5)
    time.sleep(0.5)
    assert got == ["owntracks/anna/phone"]
    for c in (backend, phone):
        c.disconnect()
        c.loop_stop()


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
    TLS too (`broker.tls`, `broker.ca_file`); plain MQTT on that port gets nowhere. An alarm
    beyond the protocol's 8 KiB still reaches the backend; one beyond the broker's packet
    limit does not."""
    cert, key = _self_signed()
    tls_port = free_port()
    conf = (DEPLOY / "mosquitto.conf").read_text()
    conf = (conf.replace("/etc/mosquitto/certs/broker.", "{dir}/broker.")
            .replace("/etc/mosquitto/schildwacht.passwd", "{dir}/passwd")
            .replace("/etc/mosquitto/schildwacht.acl", "{dir}/acl")
            .replace("/var/lib/mosquitto/", "{dir}/")
            .replace("listener 1883 127.0.0.1\n", "")  # the test's own plain listener instead
            .replace("listener 8883\n", f"listener {tls_port}\n"))
    with OwnMosquitto(settings=conf, files={"acl": (DEPLOY / "acl").read_text(),
                                            "broker.crt": cert, "broker.key": key},
                      users={"vic-001": "pw-vic-001", "schildwacht": "pw-backend"}) as b:
        (tmp_path / "ca.pem").write_text(cert)
        settings = BrokerSettings(embedded=False, host="localhost", port=tls_port, tls=True,
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
    reserved names hold every `user` of the shipped ACL (the API then refuses them)."""
    users = {line.split()[1] for line in (DEPLOY / "acl").read_text().splitlines()
             if line.startswith("user ")}
    assert users and users <= BrokerSettings().reserved_names()
