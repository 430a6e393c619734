"""The service manager is told ready, alive and stopping over its socket, and "alive" only
while the worker's own check finds nothing wrong; without a service manager nothing is sent."""

from __future__ import annotations

import os
import socket
import uuid
from pathlib import Path

import pytest

from backend.service_notify import Watchdog, notify, supervised, watchdog_interval_s
from tests.support.notify import notify_socket


@pytest.fixture
def manager():
    with notify_socket(timeout_s=5) as (sock, path):
        yield sock, {"NOTIFY_SOCKET": path}


def test_a_notification_reaches_the_managers_socket(manager) -> None:
    sock, env = manager
    assert notify("READY=1", env)
    assert sock.recv(64) == b"READY=1"


def test_an_abstract_socket_is_reached_too() -> None:
    name = f"sw-notify-{uuid.uuid4().hex[:8]}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind("\0" + name)
        sock.settimeout(5)
        assert notify("WATCHDOG=1", {"NOTIFY_SOCKET": "@" + name})
        assert sock.recv(64) == b"WATCHDOG=1"


def test_without_a_manager_nothing_is_sent_and_nothing_raised(tmp_path: Path, caplog) -> None:
    assert not notify("READY=1", {})
    assert not notify("READY=1", {"NOTIFY_SOCKET": str(tmp_path / "gone")})
    assert "service manager not notified" in caplog.text


def test_the_watchdog_is_told_twice_per_period_and_only_for_this_process() -> None:
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000"}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000",
                                "WATCHDOG_PID": str(os.getpid())}) == 15.0
    assert watchdog_interval_s({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"}) is None
    assert watchdog_interval_s({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval_s({}) is None


def test_alive_is_said_only_while_nothing_is_wrong(caplog) -> None:
    sent: list[str] = []
    found: list[str] = []

    def send(message: str) -> bool:
        sent.append(message)
        return True

    watchdog = Watchdog(lambda: found, interval_s=60, send=send)
    assert watchdog.run_once()
    found.append("thread ingest-alarm showed no progress for 31 s")
    assert not watchdog.run_once()
    assert sent == ["WATCHDOG=1"]
    assert "ingest-alarm showed no progress" in caplog.text

    def broken() -> list[str]:
        raise RuntimeError("check broke")

    assert not Watchdog(broken, interval_s=60, send=send).run_once()
    assert sent == ["WATCHDOG=1"]


def test_a_supervised_service_says_ready_alive_and_stopping(manager) -> None:
    sock, env = manager
    with supervised(lambda: [], {**env, "WATCHDOG_USEC": "100000"}):
        assert sock.recv(64) == b"READY=1"
        assert sock.recv(64) == b"WATCHDOG=1"
    while (message := sock.recv(64)) == b"WATCHDOG=1":
        pass
    assert message == b"STOPPING=1"
