"""The embedded MQTT broker (amqtt, MQTT 3.1.1) for the demo and the embedded test run.

It runs in its own thread with its own event loop. Fine for a demo and tests on loopback
(~1 ms p50); production uses Mosquitto (or EMQX for clusters). It lets every client in
anonymously, and amqtt keeps no messages for an anonymous client while it is disconnected: an
alarm sent while the worker's connection to it is down is not delivered when it reconnects, as
Mosquitto's persistent session delivers it (`tests/backend/ingest/test_connection_loss.py`).
"""

from __future__ import annotations

import asyncio
import logging
import socket
import threading
from concurrent.futures import Future

from amqtt.broker import Broker

log = logging.getLogger(__name__)


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class EmbeddedBroker:
    def __init__(self, host: str = "127.0.0.1", port: int = 1883) -> None:
        self.host = host
        self.port = port
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="amqtt", daemon=True)
        self._broker: Broker | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        self._thread.start()
        future: Future[None] = asyncio.run_coroutine_threadsafe(self._start(), self._loop)
        future.result(timeout=timeout_s)
        log.info("embedded broker listening on %s:%d", self.host, self.port)

    async def _start(self) -> None:
        config = {
            "listeners": {"default": {"type": "tcp", "bind": f"{self.host}:{self.port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True},
            },
        }
        self._broker = Broker(config, loop=self._loop)
        await self._broker.start()

    def stop(self, timeout_s: float = 10.0) -> None:
        if self._broker is not None:
            future = asyncio.run_coroutine_threadsafe(self._broker.shutdown(), self._loop)
            try:
                future.result(timeout=timeout_s)
            except Exception:  # noqa: BLE001 - best effort at shutdown
                log.warning("embedded broker did not shut down cleanly")
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=timeout_s)
