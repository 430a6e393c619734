"""A rehearsal of the alarm path when a worker starts, rolled back.

The first alarm after a start is slow: every statement of the raise and its follow-up is
compiled by SQLAlchemy and parsed and planned by the database for the first time, the routing
policy, the document and the webhook renderers run cold. `python -m loadtests.first_alarm`
measures it (docs/benchmarks.md).

`rehearse_alarm` runs one panic alarm of a registered victim device through the alarm
pipeline, the raise (with its webhook rendering) and the follow-up (case log, device commands),
in one transaction that is then rolled back: nothing is stored, published, sent or counted, and
the flow's log lines of the rehearsal are held back (an "alert raised" line for an alert that
never was would mislead). Run it before the worker subscribes.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from device_protocol import Alarm, codec

from backend.pipeline.context import RawMessage
from backend.pipeline.pipeline import build_pipeline
from backend.runtime import Runtime
from backend.state.store import PendingState

log = logging.getLogger(__name__)

# Where the rehearsal's alarm is (Rotterdam Centraal): any position the region index knows.
POSITION = (51.9244, 4.4690)
# Loggers of the code the rehearsal runs, held at WARNING while it runs.
QUIET = ("backend.alerts", "backend.subscriptions", "backend.caselog", "backend.cases",
         "backend.routing", "backend.escalation")


def rehearse_alarm(runtime: Runtime) -> float | None:
    """Run the alarm path once, rolled back; its duration in ms, or None when there is no
    victim device to rehearse with (nothing to warm: no alarm can come either). The pipeline
    is one of its own, on a view of the state store that is never flushed: the rehearsal's
    position and time never become the device's last fix or last-seen time."""
    device = runtime.directory.first(role="victim")
    if device is None:
        return None
    started = time.perf_counter()
    now = time.time()
    alarm = Alarm(id=f"rehearsal-{uuid.uuid4().hex[:12]}", tst=now, lat=POSITION[0],
                  lon=POSITION[1], acc=10.0)
    raw = RawMessage(runtime.topics.alarm(device.id), codec.encode(alarm), 1, 0, now)
    pipeline = build_pipeline(runtime.settings.protocol, runtime.directory,
                              PendingState(runtime.state))
    with _quiet():
        ctx = pipeline.run(raw)
        if not ctx.alerts:
            log.warning("alarm rehearsal raised nothing (device=%s)", device.id)
            return None
        with runtime.sessions() as session:
            try:
                runtime.flow.raise_alerts(session, ctx.alerts, follow_up=True)
            finally:
                session.rollback()
    return (time.perf_counter() - started) * 1e3


@contextmanager
def _quiet() -> Iterator[None]:
    loggers = [logging.getLogger(name) for name in QUIET]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)
