"""Drives one paho client's network traffic in a thread of its own, on the system's selector.

paho's own loop (`loop_start`) waits in `select()`, which takes no descriptor above 1023: in a
process holding more (the API with a thousand console and HTTP connections open), the broker
connection made after that point is reported lost at every turn of the loop, and paho
reconnects for ever without delivering a message. This loop waits on `selectors`' choice for
the platform (epoll on Linux), which has no such limit, and otherwise does what `loop_start`
does: it reads, writes and keeps the connection alive through paho's documented external-loop
calls (`loop_read`, `loop_write`, `loop_misc`), and reconnects after a lost connection with a
bounded exponential back-off (`reconnect_wait_s`).

This thread is the only one that writes to the socket: a publish from another thread wakes it
(paho's `on_socket_register_write`), as a publish wakes paho's own loop thread. Without that
callback paho would write from the publishing thread itself, and two threads publishing at
once could interleave their packets on the wire.
"""

from __future__ import annotations

import logging
import selectors
import socket
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.enums import _ConnectionState

from backend import metrics

log = logging.getLogger(__name__)

_LOST = (mqtt.MQTT_ERR_CONN_LOST, mqtt.MQTT_ERR_NO_CONN)
ERROR_LOG_EVERY_S = 10.0
# A connection that held this long starts the reconnect waits from the shortest again; one that
# did not (the broker drops it at once: another client took the session over, a limit) goes on
# doubling them, so that two processes with one client id do not take turns ten times a second.
STABLE_AFTER_S = 10.0
# Connections in a row that the broker ended sooner than that: said once, as an error (another
# process with the same client id takes the session over each time it connects).
SHORT_LIVED_ERROR_AFTER = 3


# What paho's state is after `disconnect()` was called: paho's own loop ends then instead of
# reconnecting, and so does this one. paho offers no public way to tell a disconnect asked for
# from a lost connection; its loop reads the same attribute (paho 2.2, pinned).
_ASKED_TO_DISCONNECT = (_ConnectionState.MQTT_CS_DISCONNECTING,
                        _ConnectionState.MQTT_CS_DISCONNECTED)


def _asked_to_disconnect(client: mqtt.Client) -> bool:
    return getattr(client, "_state", None) in _ASKED_TO_DISCONNECT


def reconnect_wait_s(failures: int, min_s: float, max_s: float) -> float:
    """The wait before the next try after `failures` tries since the last stable connection."""
    return min(max_s, min_s * 2.0 ** min(failures, 32))


class NetworkLoop:
    """`start()` after `client.connect(...)`; `stop()` disconnects and ends the thread (as
    `client.disconnect()` does once the DISCONNECT is written)."""

    def __init__(
        self,
        client: mqtt.Client,
        *,
        reconnect_min_s: float = 0.1,
        reconnect_max_s: float = 30.0,
        tick_s: float = 1.0,
        service: str | None = None,
    ) -> None:
        """`service` (a code: "ingest", "api") names the connection in this process's metrics
        (`schildwacht_broker_connected`, `_connections_lost_total`); None: not reported."""
        self._client = client
        self._service = service
        self._reconnect_min_s = reconnect_min_s
        self._reconnect_max_s = reconnect_max_s
        self._tick_s = tick_s  # the longest wait without traffic: keepalive is checked after it
        self._selector = selectors.DefaultSelector()
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self._selector.register(self._wake_r, selectors.EVENT_READ)
        self._watched: object | None = None  # the paho socket registered with the selector
        self._watched_events = 0
        self._stopping = threading.Event()
        self._stop_by = float("inf")
        self._thread: threading.Thread | None = None
        self._failures = 0  # reconnect tries since the last stable connection
        self._short_lived = 0  # connections in a row that ended before STABLE_AFTER_S
        self._up_since: float | None = None  # when the current connection was first seen up
        self._lost_at: float | None = None  # when the last connection was found lost
        client.on_socket_register_write = self._on_register_write

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> NetworkLoop:
        client_id = getattr(self._client, "_client_id", b"")  # paho has no public accessor
        self._thread = threading.Thread(
            target=self._run, name=f"mqtt-{client_id.decode(errors='replace')}", daemon=True)
        self._thread.start()
        return self

    @property
    def alive(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Send DISCONNECT if connected, then end the thread; returns within about timeout_s."""
        self._stop_by = time.monotonic() + timeout_s
        self._stopping.set()
        self._wake()
        if self._thread is None:
            self._close()
        elif self._thread is not threading.current_thread():
            self._thread.join(timeout_s + self._tick_s)
            if self._thread.is_alive():
                log.warning("mqtt network loop did not end within %.1fs", timeout_s)

    def _close(self) -> None:
        self._selector.close()
        self._wake_r.close()
        self._wake_w.close()

    # -- the thread -----------------------------------------------------------------------------
    def _run(self) -> None:
        failed_at = 0.0  # when a failed turn was last logged: at most one in ERROR_LOG_EVERY_S
        try:
            while True:
                try:
                    if not self._turn():
                        return
                except Exception:  # noqa: BLE001 - a failed turn must not end the connection
                    if time.monotonic() - failed_at >= ERROR_LOG_EVERY_S:
                        failed_at = time.monotonic()
                        log.exception("mqtt network loop: a turn failed; going on")
                    self._stopping.wait(0.05)
        finally:
            self._close()

    def _turn(self) -> bool:
        """One wait and what it found; False once the loop should end."""
        client = self._client
        sock = client.socket()
        if sock is None:
            self._watch(None, 0)
            ending = self._stopping.is_set() or _asked_to_disconnect(client)
            if self._up_since is not None:
                self._went_down(ending)
            if ending:
                return False
            self._reconnect()
            return True
        if self._up_since is None and client.is_connected():
            self._came_up()
        if self._stopping.is_set():
            if time.monotonic() >= self._stop_by:
                return False  # the DISCONNECT could not be written in time
            if not client.want_write():
                client.disconnect()  # written next: paho closes the socket after it
        events = selectors.EVENT_READ | (selectors.EVENT_WRITE if client.want_write() else 0)
        self._watch(sock, events)
        pending = getattr(sock, "pending", None)  # TLS: bytes decrypted but not yet read
        timeout = 0.0 if pending is not None and pending() > 0 else self._tick_s
        ready = 0
        for key, mask in self._selector.select(timeout):
            if key.fileobj is self._wake_r:
                self._drain_wake()
            else:
                ready |= mask
        if ready & selectors.EVENT_READ or timeout == 0.0:
            if client.loop_read() in _LOST:
                return True
        if client.want_write() and client.loop_write() in _LOST:
            return True
        client.loop_misc()
        return True

    def _came_up(self) -> None:
        self._up_since = time.monotonic()
        if self._lost_at is not None:
            log.info("mqtt connection back after %.1fs", self._up_since - self._lost_at)
            self._lost_at = None
        if self._service is not None:
            metrics.BROKER_CONNECTED.labels(self._service).set(1)

    def _went_down(self, ending: bool) -> None:
        """A connection that came up (`_came_up`) is gone; `ending`: this loop ended it."""
        now = time.monotonic()
        if now - self._up_since >= STABLE_AFTER_S:
            self._failures = 0
            self._short_lived = 0
        elif not ending:
            self._short_lived += 1
            if self._short_lived == SHORT_LIVED_ERROR_AFTER:
                log.error(
                    "mqtt: the broker ended this connection %d times in a row within %.0fs of "
                    "its start: is another process using client id %s? (each needs its own: "
                    "--client-id or SCHILDWACHT_BROKER__CLIENT_ID)", self._short_lived,
                    STABLE_AFTER_S, self._client._client_id.decode(errors="replace"))
        self._up_since = None
        if self._service is not None:
            metrics.BROKER_CONNECTED.labels(self._service).set(0)
        if ending:
            return
        self._lost_at = now
        log.warning("mqtt connection lost; trying again in %.1fs", reconnect_wait_s(
            self._failures, self._reconnect_min_s, self._reconnect_max_s))
        if self._service is not None:
            metrics.BROKER_CONNECTIONS_LOST.labels(self._service).inc()

    def _reconnect(self) -> None:
        wait_s = reconnect_wait_s(self._failures, self._reconnect_min_s, self._reconnect_max_s)
        self._failures += 1
        if self._stopping.wait(wait_s):
            return
        try:
            self._client.reconnect()
        except OSError as exc:
            log.warning("mqtt reconnect failed (%s); next try in %.1fs", type(exc).__name__,
                        reconnect_wait_s(self._failures, self._reconnect_min_s,
                                         self._reconnect_max_s))

    # -- the selector ---------------------------------------------------------------------------
    def _watch(self, sock: object | None, events: int) -> None:
        if sock is self._watched and events == self._watched_events:
            return
        if self._watched is not None and sock is not self._watched:
            try:
                self._selector.unregister(self._watched)
            except (KeyError, ValueError):
                pass  # closed by paho, already gone from epoll
            self._watched = None
        if sock is None:
            return
        if self._watched is None:
            self._selector.register(sock, events)
        else:
            self._selector.modify(sock, events)
        self._watched, self._watched_events = sock, events

    def _on_register_write(self, client, userdata, sock) -> None:
        if threading.current_thread() is not self._thread:
            self._wake()

    def _wake(self) -> None:
        try:
            self._wake_w.send(b"\0")
        except OSError:  # full (a wake is already waiting to be read), or the loop has ended
            pass

    def _drain_wake(self) -> None:
        try:
            self._wake_r.recv(4096)
        except OSError:  # nothing to read (woken already), or the loop has ended
            pass
