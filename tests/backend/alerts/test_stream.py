"""The console stream behind a real server: a stream ends when its console goes away, whether or
not an event is due, and a server with consoles connected stops when asked."""

from __future__ import annotations

from websockets.sync.client import connect

from backend.api.app import create_app
from tests.support.server import serving
from tests.support.waiting import wait_until


def _stream_url(base: str) -> str:
    return base.replace("http://", "ws://") + "/api/v1/stream"


def test_a_closed_console_leaves_no_subscription_behind(stack):
    bus = stack.runtime.bus
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    with serving(create_app(stack.runtime)) as base:
        consoles = [connect(_stream_url(base), subprotocols=["bearer", token], open_timeout=5)
                    for _ in range(3)]
        wait_until(lambda: bus.subscriber_count() == 3, timeout=5)
        consoles[0].close()
        wait_until(lambda: bus.subscriber_count() == 2, timeout=5)
        for console in consoles[1:]:
            console.close()
        wait_until(lambda: bus.subscriber_count() == 0, timeout=5)


def test_the_server_stops_with_consoles_connected(stack):
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    with serving(create_app(stack.runtime)) as base:  # fails if the server does not stop
        console = connect(_stream_url(base), subprotocols=["bearer", token], open_timeout=5)
        wait_until(lambda: stack.runtime.bus.subscriber_count() == 1, timeout=5)
    wait_until(lambda: stack.runtime.bus.subscriber_count() == 0, timeout=5)
    console.close()
