"""Webhook test support: a real HTTP receiver on 127.0.0.1 that verifies every signature with its
own implementation of the Standard Webhooks specification, fixtures for receivers and for the
stack with a running delivery worker (short backoffs and deadline), and `subscribe`. Test modules
outside tests/backend/subscriptions import the fixtures they use from here."""

from __future__ import annotations

import base64
import hashlib
import hmac
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.police.retry import RetryPolicy
from backend.subscriptions.worker import WorkerConfig

# Short enough for quick tests; long enough for a few retries on a loaded machine.
TEST_POLICY = RetryPolicy(base_delay_s=0.1, factor=2.0, max_delay_s=0.4, min_delay_s=0.05,
                          max_retry_after_s=0.5, deadline_s=4.0)


def verify_standard_webhook(secret: str, headers: dict[str, str], body: bytes) -> str:
    """Independent Standard Webhooks verification; returns the webhook id or raises."""
    msg_id = headers["webhook-id"]
    timestamp = headers["webhook-timestamp"]
    if abs(time.time() - int(timestamp)) > 300:
        raise AssertionError("timestamp outside tolerance")
    assert secret.startswith("whsec_")
    key = base64.b64decode(secret[len("whsec_"):])
    signed = msg_id.encode() + b"." + timestamp.encode() + b"." + body
    expected = base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    offered = [s.split(",", 1)[1] for s in headers["webhook-signature"].split() if s.startswith("v1,")]
    if not any(hmac.compare_digest(expected, o) for o in offered):
        raise AssertionError("bad signature")
    return msg_id


@dataclass
class Received:
    webhook_id: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """Answers 503 to the first `fail_first` requests (or all while `down`), then 200. With
    `trickle_s`, it answers every request one byte every `trickle_s` seconds instead (never
    idle long enough for a read timeout), until `stop_trickling` is set."""

    secret: str = ""
    fail_first: int = 0
    down: bool = False
    trickle_s: float = 0.0
    stop_trickling: threading.Event = field(default_factory=threading.Event)
    requests: int = 0
    refused: int = 0
    bad_signatures: int = 0
    received: dict[str, Received] = field(default_factory=dict)
    duplicates: int = 0
    cond: threading.Condition = field(default_factory=threading.Condition)
    url: str = ""

    def handle(self, headers: dict[str, str], body: bytes) -> int:
        with self.cond:
            self.requests += 1
            try:
                msg_id = verify_standard_webhook(self.secret, headers, body)
            except (AssertionError, KeyError, ValueError):
                self.bad_signatures += 1
                return 400
            if self.down or self.requests <= self.fail_first:
                self.refused += 1
                return 503
            if msg_id in self.received:
                self.duplicates += 1
            else:
                self.received[msg_id] = Received(msg_id, headers, body, time.perf_counter())
            self.cond.notify_all()
            return 200

    def trickle(self, write) -> None:
        """Write a 200 answer one byte at a time (`write(byte)`), until told to stop."""
        with self.cond:
            self.requests += 1
        answer = b"HTTP/1.1 200 OK\r\nX-Padding: " + b"x" * 1_000 + b"\r\n\r\n"
        for i in range(len(answer)):
            if self.stop_trickling.wait(self.trickle_s):
                return
            write(answer[i:i + 1])

    def wait_for(self, count: int, timeout: float = 15.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while len(self.received) < count and (left := deadline - time.monotonic()) > 0:
                self.cond.wait(left)
            return list(self.received.values())


def _server(receiver: Receiver) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", "0")))
            if receiver.trickle_s:
                self.close_connection = True
                try:
                    receiver.trickle(self.wfile.write)
                except OSError:
                    pass  # the sender gave up
                return
            headers = {k.lower(): v for k, v in self.headers.items()}
            code = receiver.handle(headers, body)
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    return ThreadingHTTPServer(("127.0.0.1", 0), Handler)


@pytest.fixture
def receivers() -> Iterator[callable]:
    servers: list[tuple[ThreadingHTTPServer, Receiver]] = []

    def make(**kwargs) -> Receiver:
        receiver = Receiver(**kwargs)
        server = _server(receiver)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        receiver.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/alerts"
        servers.append((server, receiver))
        return receiver

    yield make
    for server, receiver in servers:
        receiver.stop_trickling.set()
        server.shutdown()
        server.server_close()


def start_deliveries(stack):
    """Start the stack's delivery worker on the short test policy; the worker."""
    worker = stack.runtime.deliveries
    # The lease outlasts an attempt's total time limit (the sender's 10 s), as settings require.
    worker.config = WorkerConfig(policy=TEST_POLICY, poll_interval_s=0.2, batch_size=20,
                                 concurrency=4, claim_lease_s=12.0)
    worker.start()
    return worker


@pytest.fixture
def webhooks(stack):
    """The stack with its delivery worker running on the short test policy, and a police system
    listening on every unit's MQTT feed: over MQTT 5 a feed message nobody subscribes to is not
    delivered and ends unconfirmed ("police not reached", `backend.mqtt.publisher`)."""
    stack.collector(stack.topics.police_filter())
    worker = start_deliveries(stack)
    yield stack
    worker.stop()


def subscribe(api, receiver: Receiver, **body) -> dict:
    r = api.post("/api/v1/subscriptions",
                 json={"name": "politie test", "url": receiver.url, **body})
    assert r.status_code == 201, r.text
    receiver.secret = r.json()["secret"]
    return r.json()


