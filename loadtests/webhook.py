"""A webhook receiver on 127.0.0.1 for the alarm path, and its police subscription."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import orjson

from loadtests.broker import free_port

OnDelivery = Callable[[str | None, float], None]


def find_message_id(document: Any) -> str | None:
    """The alarm message id anywhere in a delivered body (plain document or an envelope)."""
    if isinstance(document, dict):
        value = document.get("message_id")
        if isinstance(value, str):
            return value
        for child in document.values():
            found = find_message_id(child)
            if found:
                return found
    elif isinstance(document, list):
        for child in document:
            found = find_message_id(child)
            if found:
                return found
    return None


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A sender closing its keep-alive connection is not an error worth a traceback."""
        return


class WebhookReceiver:
    def __init__(self, on_delivery: OnDelivery) -> None:
        self.port = free_port()
        self.received = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                at = time.perf_counter()
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                self.send_response(204)
                self.send_header("Content-Length", "0")
                self.end_headers()
                receiver.received += 1
                try:
                    message_id = find_message_id(orjson.loads(body))
                except orjson.JSONDecodeError:
                    message_id = None
                on_delivery(message_id, at)

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = _QuietServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="webhook",
                                        daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def subscribe(self, api_url: str, token: str) -> str:
        """Create a police subscription (JSON format, every alert) pointing here."""
        r = httpx.post(f"{api_url}/api/v1/subscriptions",
                       headers={"Authorization": f"Bearer {token}"},
                       json={"name": "bench", "url": self.url, "format": "json"}, timeout=10)
        r.raise_for_status()
        return str(r.json()["id"])

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
