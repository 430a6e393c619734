"""The API behind a real uvicorn server on a free loopback port, in a thread of the test."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn

from backend.mqtt.embedded import free_port
from tests.support.waiting import wait_until

STOP_TIMEOUT_S = 10.0


@contextmanager
def serving(app: Any, **config: Any) -> Iterator[str]:
    """Yield the server's base URL. On leaving, the server must stop within STOP_TIMEOUT_S: a
    server still running (a connection or task that outlives its shutdown) fails the test
    instead of being left to the interpreter's exit."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                           access_log=False, **config))
    thread = threading.Thread(target=server.run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        wait_until(lambda: server.started or not thread.is_alive(), timeout=10)
        assert server.started, "uvicorn did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=STOP_TIMEOUT_S)
    assert not thread.is_alive(), f"uvicorn did not stop within {STOP_TIMEOUT_S} s"
