"""The whole stack in-process behind a real HTTP server, for Playwright and Debian's Chromium."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import uvicorn

from backend.api.app import create_app
from backend.mqtt.embedded import free_port
from tests.backend.conftest import embedded_broker, pg_url, stack  # noqa: F401

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


@dataclass
class Server:
    base: str
    server: uvicorn.Server


@pytest.fixture
def server(stack) -> Iterator[Server]:  # noqa: F811
    # Plain HTTP on 127.0.0.1 in tests: Secure cookies would not come back.
    stack.runtime.settings.console.secure_cookies = False
    port = free_port()
    config = uvicorn.Config(create_app(stack.runtime), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False, ws="websockets-sansio")
    srv = uvicorn.Server(config)
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not srv.started and time.monotonic() < deadline:
        time.sleep(0.05)
    assert srv.started, "uvicorn did not start"
    yield Server(f"http://127.0.0.1:{port}", srv)
    srv.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
