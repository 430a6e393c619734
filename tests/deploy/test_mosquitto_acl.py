"""The broker configuration in deploy/mosquitto/ enforces least privilege: a device may publish
only to its own topics, anonymous clients are refused."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest

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
               "schildwacht": "pw-backend", "police": "pw-police"},
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
