"""Each alarm is logged with its time in the worker, from receipt to the police feed's write,
and the database's share of it; a fix is not."""

from __future__ import annotations

import logging
import time

from sqlalchemy import func, select

from backend.devices.models import Ping
from backend.ingest import alarm_timing
from device_protocol import Alarm, Fix, codec
from tests.support.mqtt import publish
from tests.support.waiting import wait_until


def _pings(stack) -> int:
    with stack.runtime.sessions() as s:
        return s.scalar(select(func.count()).select_from(Ping))


def test_an_alarm_is_logged_with_its_time_in_the_worker_and_the_databases_share(stack, caplog):
    stack.register("vic-timing")
    police = stack.collector(stack.topics.police_filter())
    device = stack.device("vic-timing")
    with caplog.at_level(logging.INFO, logger="backend.ingest.alarm_timing"):
        publish(device, stack.topics.loc("vic-timing"),
                codec.encode(Fix(lat=51.9244, lon=4.469, tst=time.time())))
        publish(device, stack.topics.alarm("vic-timing"),
                codec.encode(Alarm(id="timed-1", lat=51.9244, lon=4.469)))
        police.wait_for(1)
        wait_until(lambda: _pings(stack) == 1)  # the fix is in as well
        timings = wait_until(lambda: alarm_timing.read(caplog.text))
    [(message_id, (ms, db_ms))] = timings.items()
    assert message_id == "timed-1"
    assert 0 < db_ms < ms  # the raise statement took part of the time, not all of it
    assert "51.92" not in caplog.text and "4.469" not in caplog.text  # ids, never positions
    police.close()
    device.disconnect()


def test_the_time_logged_ends_when_the_feed_was_handed_over_not_when_the_log_is_written(caplog):
    # Logged after the write: the thread may have waited for a core meanwhile while the feed was
    # already on its way, which made the benchmark's "rest" (the feed's hop) negative.
    from sqlalchemy import create_engine

    from backend.pipeline.context import AlertDraft, Context, RawMessage

    timing = alarm_timing.AlarmTiming(create_engine("sqlite://"))
    received = time.time() - 0.5
    raw = RawMessage("sd/v1/devices/vic/alarm", b"{}", 1, 1, received)
    draft = AlertDraft("panic", "vic", None, "handed-1", received)  # type: ignore[arg-type]
    timing.start([Context(raw, alerts=[draft])])
    with caplog.at_level(logging.INFO, logger="backend.ingest.alarm_timing"):
        timing.on_wire(received + 0.004)
        timing.on_wire(received + 0.009)  # once per batch

    assert alarm_timing.read(caplog.text) == {"handed-1": (4.0, 0.0)}
