"""The console stream behind a real server: a stream ends when its console goes away, whether or
not an event is due, a server with consoles connected stops when asked, and consoles are told
when events may not arrive (Redis hangs) and when to read again."""

from __future__ import annotations

import orjson
import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from backend.api.app import create_app
from backend.audit.models import AuditEntry
from backend.hub.bus import STREAM_DELAYED, STREAM_RESYNC
from backend.runtime import Runtime
from loadtests.redis_server import own_redis
from tests.backend.conftest import ADMIN_TOKEN
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


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_consoles_are_told_while_events_may_not_arrive(stack):
    """A dispatcher's console, connected before Redis hangs, is told so; one that connects
    meanwhile is told at once; both are asked to read again when Redis answers."""
    token = stack.token("dispatcher", {"regions": ["VR17"]})
    with own_redis() as server:
        settings = stack.settings.model_copy(deep=True)
        settings.redis.url = server.url
        settings.redis.timeout_s, settings.redis.retry_after_s = 0.3, 0.2
        runtime = Runtime.build(settings)
        try:
            with serving(create_app(runtime)) as base:
                first = connect(_stream_url(base), subprotocols=["bearer", token],
                                open_timeout=5)
                wait_until(lambda: runtime.bus.subscriber_count() == 1, timeout=5)
                server.hang()
                assert orjson.loads(first.recv(timeout=5)) == STREAM_DELAYED
                second = connect(_stream_url(base), subprotocols=["bearer", token],
                                 open_timeout=5)
                assert orjson.loads(second.recv(timeout=2)) == STREAM_DELAYED
                server.resume()
                for console in (first, second):
                    assert orjson.loads(console.recv(timeout=5)) == STREAM_RESYNC
                    console.close()
        finally:
            server.resume()
            runtime.close()


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_stream_for_one_alert_carries_the_others_in_brief(stack):
    """The alert page's stream (`?alert=<id>`): its alert's events in full, with the position
    (audited); other alerts' in brief, enough to sound a new P1 but without a position, so
    none is audited for them; those about the stream itself as they are; no others."""
    scope = {"police_unit": "RE07", "case_id": None, "case_reference": None,
             "case_home_vr": "VR17", "case_director": None}

    def event(alert_id: str) -> dict:
        return {"event": "alert.raised", "scope": scope,
                "alert": {"alert_id": alert_id, "sequence": 1, "type": "panic",
                          "priority": "P1", "state": "new", "region": {"vr_code": "VR17"},
                          "raised_at": "2026-12-06T03:00:00+00:00", "flags": ["late"],
                          "device": {"id": "vic-1", "role": "victim"},
                          "location": {"lat": 51.9, "lon": 4.5}}}

    with serving(create_app(stack.runtime)) as base:
        console = connect(_stream_url(base) + "?alert=a-2", subprotocols=["bearer", ADMIN_TOKEN],
                          open_timeout=5)
        wait_until(lambda: stack.runtime.bus.subscriber_count() == 1, timeout=5)
        stack.runtime.bus.publish({"event": "geofence.approach_cleared", "scope": scope})
        stack.runtime.bus.publish(event("a-1"))
        stack.runtime.bus.publish(event("a-2"))
        stack.runtime.bus.publish(STREAM_RESYNC)
        brief = orjson.loads(console.recv(timeout=5))["alert"]
        assert brief == {"alert_id": "a-1", "sequence": 1, "type": "panic", "priority": "P1",
                         "state": "new", "raised_at": "2026-12-06T03:00:00+00:00",
                         "region": {"vr_code": "VR17"}, "location": None}
        full = orjson.loads(console.recv(timeout=5))["alert"]
        assert full["alert_id"] == "a-2" and full["location"] == {"lat": 51.9, "lon": 4.5}
        assert orjson.loads(console.recv(timeout=5)) == STREAM_RESYNC
        console.close()

    def audited() -> list[str]:
        with stack.runtime.sessions() as s:
            return list(s.scalars(select(AuditEntry.resource_id)))

    assert wait_until(audited, timeout=5) == ["a-2"]


@pytest.mark.parametrize("stack", ["services"], indirect=True)
def test_a_stream_without_positions_carries_and_audits_none(stack):
    """The console's pages ask for their streams without positions (`?with_location=false`):
    the alert documents come with `location` null and no read is audited; a parameter that
    is neither true nor false closes the stream with 4400."""
    scope = {"police_unit": "RE07", "case_id": None, "case_reference": None,
             "case_home_vr": "VR17", "case_director": None}
    event = {"event": "alert.raised", "scope": scope,
             "alert": {"alert_id": "a-1", "state": "new", "priority": "P1",
                       "region": {"vr_code": "VR17"},
                       "device": {"id": "vic-1", "role": "victim"},
                       "location": {"lat": 51.9, "lon": 4.5}}}


    def audited() -> list[str]:
        with stack.runtime.sessions() as s:
            return list(s.scalars(select(AuditEntry.resource_id)))

    with serving(create_app(stack.runtime)) as base:
        bare, full = (connect(_stream_url(base) + query, subprotocols=["bearer", ADMIN_TOKEN],
                              open_timeout=5)
                      for query in ("?with_location=false", ""))
        wait_until(lambda: stack.runtime.bus.subscriber_count() == 2, timeout=5)
        stack.runtime.bus.publish(event)
        document = orjson.loads(bare.recv(timeout=5))["alert"]
        assert document["alert_id"] == "a-1" and document["location"] is None
        assert orjson.loads(full.recv(timeout=5))["alert"]["location"] is not None
        assert wait_until(audited, timeout=5) == ["a-1"]  # the full stream's read alone
        bad = connect(_stream_url(base) + "?with_location=maybe",
                      subprotocols=["bearer", ADMIN_TOKEN], open_timeout=5)
        with pytest.raises(ConnectionClosed) as closed:
            bad.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4400
        for console in (bare, full):
            console.close()
    assert audited() == ["a-1"]
