"""Builds paho-mqtt 2 clients the way every part of Schildwacht needs them.

- TCP_NODELAY on the socket as soon as it opens (paho never sets it; without it the alarm path
  stalls 25-45 ms on Nagle's algorithm).
- MQTT 5 with a persistent session (clean_start False + session expiry) for the ingest worker, or
  MQTT 3.1.1 with clean_session False for the embedded broker.
- Explicit timeouts: connect is bounded (`broker.connect_timeout_s`); a QoS 1 publish is not
  awaited here: the outbox publishes it again until the broker acknowledges it, for a bounded
  time (`backend/outbox/`).
- Its network traffic driven by `NetworkLoop` (epoll), not paho's `select()` loop, which fails
  on a descriptor above 1023.
- TLS when the settings ask for it (`broker.tls`, `broker.ca_file`).
- A callback that raises is logged and the message dropped (paho's `suppress_exceptions`):
  otherwise paho leaves the packet half handled and hands it to the callback again, for ever.
"""

from __future__ import annotations

import logging
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from backend.mqtt.network_loop import NetworkLoop
from backend.settings import BrokerSettings

log = logging.getLogger(__name__)
# paho's own messages: its errors (a callback that raised) and warnings; not its debug lines,
# one or more for every packet.
paho_log = logging.getLogger("backend.mqtt.paho")
paho_log.setLevel(logging.WARNING)


class BrokerUnavailable(ConnectionError):
    """The broker did not accept the connection within the configured timeout."""


def _set_nodelay(_client, _userdata, sock) -> None:
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    except OSError:  # pragma: no cover - e.g. a websocket transport
        pass


def make_client(
    settings: BrokerSettings,
    client_id: str,
    *,
    persistent: bool = False,
    manual_ack: bool = False,
    userdata: object = None,
) -> mqtt.Client:
    v5 = settings.protocol == "5"
    client = mqtt.Client(
        mqtt.CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else not persistent,
        manual_ack=manual_ack,
        userdata=userdata,
    )
    if settings.username:
        password = settings.password.get_secret_value() if settings.password else None
        client.username_pw_set(settings.username, password)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file)  # the broker's certificate and name checked
    client.on_socket_open = _set_nodelay
    client.suppress_exceptions = True
    client.enable_logger(paho_log)
    client.max_inflight_messages_set(1000)
    client.max_queued_messages_set(0)
    return client


def connect(
    client: mqtt.Client, settings: BrokerSettings, *, persistent: bool = False,
    service: str | None = None,
) -> NetworkLoop:
    """Connect and start the network loop; raise BrokerUnavailable after the timeout.

    Reconnects after a lost connection are the loop's (a bounded exponential back-off,
    `broker.reconnect_min_s` to `reconnect_max_s`); `stop()` on the loop returned disconnects.
    `service` names the connection in the process's metrics (`NetworkLoop`).
    """
    connected = threading.Event()
    previous = client.on_connect

    def on_connect(c, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:  # e.g. a wrong password: tried again, as a lost connection
            log.error("the broker refused the connection: %s", reason_code)
        else:
            connected.set()
        if previous is not None:
            previous(c, userdata, flags, reason_code, properties)

    client.on_connect = on_connect
    kwargs: dict = {"keepalive": settings.keepalive_s}
    if settings.protocol == "5":
        kwargs["clean_start"] = not persistent
        props = Properties(PacketTypes.CONNECT)
        props.SessionExpiryInterval = settings.session_expiry_s if persistent else 0
        kwargs["properties"] = props
    deadline = time.monotonic() + settings.connect_timeout_s
    while True:
        try:
            client.connect(settings.host, settings.port, **kwargs)
            break
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise BrokerUnavailable(f"broker {settings.host}:{settings.port}: {exc}") from exc
            time.sleep(0.2)
    network = NetworkLoop(client, reconnect_min_s=settings.reconnect_min_s,
                          reconnect_max_s=settings.reconnect_max_s, service=service).start()
    if not connected.wait(max(0.1, deadline - time.monotonic())):
        network.stop(timeout_s=1.0)
        raise BrokerUnavailable(f"no CONNACK from {settings.host}:{settings.port}")
    return network
