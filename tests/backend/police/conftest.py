"""Fixtures for the police hand-off tests: alert documents and a real HTTP receiver."""

from __future__ import annotations

import copy
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

ALERT: dict[str, Any] = {
    "schema": "schildwacht.alert/1",
    "alert_id": "9b2f6c1e-7d4a-4c1b-9a51-2f0d1e6b7a01",
    "sequence": 1,
    "type": "panic",
    "priority": "P1",
    "state": "new",
    "raised_at": "2026-11-28T18:00:00.123+00:00",
    "updated_at": "2026-11-28T18:00:00.123+00:00",
    "message_id": "a-17",
    "device": {"id": "vic-001", "role": "victim"},
    "flags": ["late"],
    "location": {
        "lat": 51.92,
        "lon": 4.47,
        "acc_m": 12.0,
        "fix_time": "2026-11-28T17:59:58+00:00",
        "source": "alarm",
    },
    "region": {
        "police_unit": "RE07",
        "police_unit_name": "Rotterdam",
        "vr_code": "VR17",
        "gemeente_code": "GM0599",
        "vt_desk_code": "VT17",
    },
    "exercise": False,
    "case": {
        "id": "5d0c2f0e-1111-4a2b-8c3d-000000000001",
        "reference": "SW-2026-0001",
        "risk_level": "high",
        "custody_status": "released",
        "contacts": [
            {"organisation": "police", "name": "J. de Vries", "phone": "+31612345678"},
            {"organisation": "veilig_thuis", "name": "M. Bakker", "phone": "+31201234567"},
        ],
        "measures": [{"id": "m-1", "type": "exclusion_zone", "reference": "PV-2026-123"}],
    },
}


@pytest.fixture
def make_alert() -> Callable[..., dict[str, Any]]:
    """A full alert document; keyword arguments replace top-level fields."""

    def make(**overrides: Any) -> dict[str, Any]:
        alert = copy.deepcopy(ALERT)
        alert.update(overrides)
        return alert

    return make


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A real HTTP server on 127.0.0.1 whose answer depends on the request path.

    /ok 200 · /unavailable 503 with Retry-After: 7 · /busy 429 with an HTTP-date Retry-After ·
    /bad 400 · /moved 307 · /slow answers 200 after `slow_s` seconds · /trickle answers 200 one
    byte every `trickle_s` seconds (far slower in all than any sender waits, yet never idle long
    enough for a read timeout).
    """

    port: int
    slow_s: float
    trickle_s: float = 0.1
    requests: list[Received] = field(default_factory=list)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"


def _handler(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length", "0"))
            body = self.rfile.read(length)
            receiver.requests.append(
                Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            )
            extra: dict[str, str] = {}
            if self.path == "/ok":
                status = 200
            elif self.path == "/unavailable":
                status, extra = 503, {"Retry-After": "7"}
            elif self.path == "/busy":
                status, extra = 429, {"Retry-After": "Wed, 21 Oct 2099 07:28:00 GMT"}
            elif self.path == "/bad":
                status = 400
            elif self.path == "/moved":
                status, extra = 307, {"Location": receiver.url("/ok")}
            elif self.path == "/slow":
                time.sleep(receiver.slow_s)
                status = 200
            elif self.path == "/big":
                status = 200
            elif self.path == "/trickle":
                self._trickle()
                return
            else:
                status = 404
            payload = b'{"ok": true}' if status == 200 else b"{}"
            if self.path == "/big":
                payload = b" " * 1_000_000  # far more than a sender reads of an answer
            try:
                self.send_response(status)
                for name, value in extra.items():
                    self.send_header(name, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up (timeout test)

        def _trickle(self) -> None:
            answer = (b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 200
                      + b"\r\nContent-Length: 0\r\n\r\n")
            try:
                for i in range(len(answer)):
                    self.wfile.write(answer[i:i + 1])
                    time.sleep(receiver.trickle_s)
            except (BrokenPipeError, ConnectionResetError):
                pass  # the client gave up
            self.close_connection = True

    return Handler


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    server.block_on_close = False
    receiver = Receiver(port=server.server_address[1], slow_s=3.0)
    server.RequestHandlerClass = _handler(receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def closed_port() -> int:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
