"""The network loop every service's MQTT client runs on (real Mosquitto): it works where paho's own
`select()` loop cannot (a connection on a descriptor above 1023, as in an API holding a thousand
connections), reconnects after a lost connection, is the only writer when many threads publish,
outlives a callback that raises, and stops within its bound whether the broker is there or not.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
import uuid

import paho.mqtt.client as mqtt
import pytest
from prometheus_client import REGISTRY

from backend.mqtt.client import BrokerUnavailable, connect, make_client
from backend.mqtt.network_loop import NetworkLoop, reconnect_wait_s
from backend.settings import BrokerSettings
from loadtests.broker import OwnMosquitto
from tests.conftest import MQTT_PORT
from tests.support.descriptors import descriptors_held
from tests.support.mqtt import Collector
from tests.support.waiting import wait_until

pytestmark = pytest.mark.services


def _settings(port: int = MQTT_PORT, **changes) -> BrokerSettings:
    return BrokerSettings(**{"embedded": False, "port": port, "protocol": "5",
                             "connect_timeout_s": 3.0, **changes})


def _topic() -> str:
    return f"sdtest/{uuid.uuid4().hex[:8]}/loop"


class Acks:
    """Counts PUBACKs by message id."""

    def __init__(self, client: mqtt.Client) -> None:
        self.mids: set[int] = set()
        self._lock = threading.Lock()
        client.on_publish = self._on_publish

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        with self._lock:
            self.mids.add(mid)

    def count(self) -> int:
        with self._lock:
            return len(self.mids)


def _connections(client: mqtt.Client) -> list[int]:
    """Appends to the list returned once per CONNACK accepted."""
    made: list[int] = []
    previous = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if not reason_code.is_failure:
            made.append(c.socket().fileno())
        if previous is not None:
            previous(c, userdata, flags, reason_code, properties)

    client.on_connect = on_connect
    return made


def test_paho_own_loop_gets_no_connack_on_a_descriptor_above_1023():
    """Why the loop exists: should paho's loop one day take such a descriptor, this fails."""
    client = make_client(_settings(), f"paho-{uuid.uuid4().hex[:8]}")
    connected = threading.Event()
    client.on_connect = lambda *a: connected.set()
    with descriptors_held():
        client.connect("127.0.0.1", MQTT_PORT, keepalive=30)
        assert client.socket().fileno() > 1023
        client.loop_start()
        try:
            assert not connected.wait(2.0)
        finally:
            client.disconnect()
            client.loop_stop()


def test_a_connection_above_descriptor_1023_delivers_and_comes_back_after_a_loss():
    topic = _topic()
    feed = Collector(MQTT_PORT, topic)
    client = make_client(_settings(), f"high-{uuid.uuid4().hex[:8]}")
    made = _connections(client)
    acks = Acks(client)
    try:
        with descriptors_held():
            network = connect(client, _settings())
            try:
                assert made and made[0] > 1023
                client.publish(topic, b"first", qos=1)
                wait_until(lambda: acks.count() == 1, timeout=5)

                client.socket().shutdown(socket.SHUT_RDWR)  # the connection is lost
                wait_until(lambda: len(made) == 2, timeout=10)  # back after the first wait
                assert made[1] > 1023
                client.publish(topic, b"second", qos=1)
                wait_until(lambda: acks.count() == 2, timeout=5)
            finally:
                network.stop()
        payloads = [m[1] for m in feed.wait_for(2, timeout=5)]
        assert payloads == [b"first", b"second"]
        assert not network.alive and not client.is_connected()
    finally:
        feed.close()


def _payload(n: int, i: int) -> bytes:
    return f"{n}-{i};".encode() * 20_000  # 80-100 kB


def test_many_threads_publishing_at_once_reach_the_broker_whole_written_by_the_loop_alone():
    topic = _topic()
    feed = Collector(MQTT_PORT, topic)
    client = make_client(_settings(), f"many-{uuid.uuid4().hex[:8]}")
    acks = Acks(client)
    writers: set[str] = set()  # paho calls this in the thread that emptied its queue of packets
    client.on_socket_unregister_write = (
        lambda c, u, sock: writers.add(threading.current_thread().name))
    network = connect(client, _settings())
    writers.clear()  # the CONNECT, written by connect() before the loop started
    threads, per_thread = 4, 60  # payloads large enough to fill the socket's buffer
    start = threading.Barrier(threads)

    def publish_all(n: int) -> None:
        start.wait()
        for i in range(per_thread):
            client.publish(topic, _payload(n, i), qos=1)

    try:
        workers = [threading.Thread(target=publish_all, args=(n,)) for n in range(threads)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(10)
        wait_until(lambda: acks.count() == threads * per_thread, timeout=10)
        received = [m[1] for m in feed.wait_for(threads * per_thread, timeout=10)]
    finally:
        network.stop()
        feed.close()
    expected = {_payload(n, i) for n in range(threads) for i in range(per_thread)}
    assert len(received) == len(expected) and set(received) == expected
    assert writers == {f"mqtt-{client._client_id.decode()}"}  # the loop's thread alone wrote


def test_a_callback_that_raises_is_logged_and_the_loop_goes_on(caplog):
    topic = _topic()
    client = make_client(_settings(), f"raise-{uuid.uuid4().hex[:8]}")
    seen: list[bytes] = []
    subscribed = threading.Event()

    def on_message(c, userdata, msg) -> None:
        seen.append(msg.payload)
        if msg.payload == b"bad":
            raise RuntimeError("a handler's bug")

    client.on_message = on_message
    client.on_subscribe = lambda *a: subscribed.set()
    network = connect(client, _settings())
    sender = make_client(_settings(), f"send-{uuid.uuid4().hex[:8]}")
    sender_network = connect(sender, _settings())
    try:
        client.subscribe(topic, qos=0)
        assert subscribed.wait(5)
        sender.publish(topic, b"bad", qos=0)
        wait_until(lambda: seen == [b"bad"], timeout=5)
        sender.publish(topic, b"good", qos=0)
        wait_until(lambda: seen[-1:] == [b"good"], timeout=5)
        assert seen == [b"bad", b"good"]  # the bad one handled once, not again and again
        assert network.alive
        assert any("on_message" in r.getMessage() and r.levelname == "ERROR"
                   for r in caplog.records)
    finally:
        sender_network.stop()
        network.stop()


def test_the_loop_waits_out_a_broker_away_and_stops_promptly_while_it_waits():
    with OwnMosquitto() as broker:
        settings = _settings(broker.port)
        client = make_client(settings, f"away-{uuid.uuid4().hex[:8]}")
        made = _connections(client)
        network = connect(client, settings)
        port = broker.port
    try:
        wait_until(lambda: not client.is_connected(), timeout=5)
        with OwnMosquitto(port=port):  # the broker back on its port: the loop reconnects
            wait_until(lambda: len(made) == 2, timeout=10)
        wait_until(lambda: not client.is_connected(), timeout=5)  # away again: retrying
        began = time.monotonic()
        network.stop(timeout_s=2.0)
        assert time.monotonic() - began < 2.5
        assert not network.alive
    finally:
        network.stop(timeout_s=0.5)


def test_connect_to_no_broker_raises_within_its_timeout():
    with OwnMosquitto() as broker:
        port = broker.port  # free again once it stopped
    client = make_client(_settings(port), f"none-{uuid.uuid4().hex[:8]}")
    began = time.monotonic()
    with pytest.raises(BrokerUnavailable):
        connect(client, _settings(port, connect_timeout_s=1.0))
    assert time.monotonic() - began < 3.0


def test_stop_sends_a_clean_disconnect():
    client = make_client(_settings(), f"stop-{uuid.uuid4().hex[:8]}")
    reasons: list[object] = []
    client.on_disconnect = lambda c, u, flags, reason_code, props: reasons.append(reason_code)
    network = connect(client, _settings())
    network.stop()
    assert not network.alive
    assert len(reasons) == 1 and not reasons[0].is_failure  # paho's own: DISCONNECT sent


def test_a_loop_never_started_stops_at_once():
    client = make_client(_settings(), f"idle-{uuid.uuid4().hex[:8]}")
    network = NetworkLoop(client)
    began = time.monotonic()
    network.stop()
    assert time.monotonic() - began < 0.5 and not network.alive


def test_reconnect_waits_double_from_the_shortest_up_to_the_longest():
    assert [reconnect_wait_s(n, 0.1, 30.0) for n in range(4)] == [0.1, 0.2, 0.4, 0.8]
    assert reconnect_wait_s(9, 0.1, 30.0) == 30.0
    assert reconnect_wait_s(10**6, 0.1, 30.0) == 30.0  # no overflow however long it fails
    with pytest.raises(ValueError, match="reconnect_min_s"):
        BrokerSettings(reconnect_min_s=5.0, reconnect_max_s=1.0)


def test_two_clients_with_one_id_back_off_instead_of_taking_turns_ten_times_a_second():
    """Each takes the session from the other (the broker drops the older connection): a
    connection that did not hold `STABLE_AFTER_S` does not start the waits from 0.1 s again."""
    client_id = f"twin-{uuid.uuid4().hex[:8]}"
    twins = [make_client(_settings(), client_id) for _ in range(2)]
    counts = [_connections(twin) for twin in twins]
    networks = [connect(twin, _settings()) for twin in twins]
    try:
        time.sleep(3.0)
    finally:
        for network in networks:
            network.stop(timeout_s=1.0)
    made = sum(len(c) for c in counts)
    # Waits of 0.1, 0.2, 0.4, 0.8 and 1.6 s: about five connections each in 3 s (with every
    # connection starting from 0.1 s again, about thirty each).
    assert 3 <= made <= 16, made


def test_a_disconnect_asked_of_the_client_ends_the_loop_without_reconnecting():
    client = make_client(_settings(), f"asked-{uuid.uuid4().hex[:8]}")
    made = _connections(client)
    network = connect(client, _settings(reconnect_min_s=0.05))
    client.disconnect()
    wait_until(lambda: not network.alive, timeout=5)
    time.sleep(0.3)  # a reconnect would have come after 0.05 s
    assert len(made) == 1 and not client.is_connected()


def test_a_lost_connection_is_logged_and_counted_and_its_return_too(caplog):
    caplog.set_level(logging.INFO, logger="backend.mqtt.network_loop")
    service = f"test-{uuid.uuid4().hex[:6]}"

    def sample(name: str) -> float | None:
        return REGISTRY.get_sample_value(f"schildwacht_broker_{name}", {"service": service})

    client = make_client(_settings(), f"count-{uuid.uuid4().hex[:8]}")
    made = _connections(client)
    network = connect(client, _settings(), service=service)
    try:
        wait_until(lambda: sample("connected") == 1, timeout=5)
        client.socket().shutdown(socket.SHUT_RDWR)
        wait_until(lambda: len(made) == 2, timeout=5)
        wait_until(lambda: sample("connected") == 1, timeout=5)
        assert sample("connections_lost_total") == 1
    finally:
        network.stop()
    assert sample("connected") == 0 and sample("connections_lost_total") == 1  # a stop is no loss
    messages = [r.getMessage() for r in caplog.records if r.name == "backend.mqtt.network_loop"]
    assert any(m.startswith("mqtt connection lost; trying again in 0.1s") for m in messages)
    assert any(m.startswith("mqtt connection back after") for m in messages)


def test_a_refused_connection_is_logged(caplog):
    with OwnMosquitto(settings="allow_anonymous false\npassword_file {dir}/passwd\n",
                      users={"schildwacht": "right"}) as broker:
        settings = _settings(broker.port, username="schildwacht", password="wrong",
                             connect_timeout_s=1.0)
        with pytest.raises(BrokerUnavailable):
            connect(make_client(settings, f"refused-{uuid.uuid4().hex[:8]}"), settings)
    assert any(r.levelname == "ERROR" and "refused the connection" in r.getMessage()
               for r in caplog.records)


def test_a_client_id_two_processes_share_is_named_in_the_log(caplog):
    """A second connection with the same client id (two ingest workers of a share group
    started with the same id) takes the session over, and each reconnect takes it back: the
    loops say so, naming the id, once each."""
    client_id = f"sdtest-twice-{uuid.uuid4().hex[:8]}"
    first = make_client(_settings(), client_id)
    first_loop = connect(first, _settings())
    second = make_client(_settings(), client_id)
    second_loop = None
    try:
        with caplog.at_level(logging.ERROR, logger="backend.mqtt.network_loop"):
            second_loop = connect(second, _settings())
            wait_until(lambda: "is another process using client id" in caplog.text,
                       timeout=15)
        assert client_id in caplog.text and "--client-id" in caplog.text
        assert caplog.text.count("is another process using client id") <= 2  # once each
    finally:
        first_loop.stop()
        if second_loop is not None:
            second_loop.stop()
