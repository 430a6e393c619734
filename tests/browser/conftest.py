"""The whole stack in-process behind a real HTTP server, for Playwright and Debian's Chromium."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from backend.api.app import create_app
from tests.backend.conftest import embedded_broker, pg_url, stack  # noqa: F401
from tests.support.server import serving

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


@pytest.fixture
def server(stack) -> Iterator[Server]:  # noqa: F811
    # Plain HTTP on 127.0.0.1 in tests: Secure cookies would not come back.
    stack.runtime.settings.console.secure_cookies = False
    with serving(create_app(stack.runtime), ws="websockets-sansio") as base:
        yield Server(base)


def _launch(args: list[str]):
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=args)
        yield b
        b.close()


@pytest.fixture
def browser():
    yield from _launch(CHROMIUM_ARGS)


@pytest.fixture
def strict_browser():
    """Chromium with its default autoplay policy, as the desk's browsers have it: a page may
    not play sound until the operator has clicked on it."""
    yield from _launch([a for a in CHROMIUM_ARGS if not a.startswith("--autoplay-policy")])
