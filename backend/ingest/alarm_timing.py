"""How long an alarm took inside the worker, logged once per alarm batch.

From paho handing the message over (`RawMessage.received_at`) to the police feed handed back to
it for the socket, and how much of that the database took (every statement of this thread
meanwhile, from the driver's execute to its return: in autocommit that includes the commit). An
operator sees which alarm was slow and whether the database made it so; the benchmark joins
these lines with its own clocks to split its slowest alarms. Ids only, never positions.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Engine, event

from backend.pipeline.context import Context

log = logging.getLogger(__name__)

# The logged line, as `read` takes it back.
LINE = re.compile(r"alarm feed on the wire messages=(\S+) ms=([\d.]+) db_ms=([\d.]+)")


def read(text: str) -> dict[str, tuple[float, float]]:
    """From a log, each alarm message id's (ms in the worker, ms of it in the database)."""
    found: dict[str, tuple[float, float]] = {}
    for match in LINE.finditer(text):
        for message_id in match.group(1).split(","):
            found[message_id] = (float(match.group(2)), float(match.group(3)))
    return found


class AlarmTiming:
    def __init__(self, engine: Engine) -> None:
        self._local = threading.local()
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)

    def _before(self, *_: Any) -> None:
        self._local.statement_started = time.perf_counter()

    def _after(self, *_: Any) -> None:
        started = getattr(self._local, "statement_started", None)
        if started is not None:
            self._local.db_s = getattr(self._local, "db_s", 0.0) + time.perf_counter() - started
            self._local.statement_started = None

    def start(self, contexts: Sequence[Context]) -> None:
        """An alarm batch is being stored by this thread."""
        ids = [d.message_id for c in contexts for d in c.alerts if d.message_id]
        self._local.batch = (min(c.raw.received_at for c in contexts), ids) if ids else None
        self._local.db_s = 0.0

    def on_wire(self, handed_at: float) -> None:
        """The batch's police feed was handed to the MQTT client at `handed_at` (epoch seconds,
        just before its write: after it, this thread may wait for a core while the feed is
        already on its way): log it (once per batch)."""
        batch = getattr(self._local, "batch", None)
        if batch is None:
            return
        self._local.batch = None
        received_at, ids = batch
        log.info("alarm feed on the wire messages=%s ms=%.2f db_ms=%.2f", ",".join(ids),
                 (handed_at - received_at) * 1e3, self._local.db_s * 1e3)
