"""How long the garbage collector stops this interpreter: every collection is timed into
`schildwacht_gc_pause_seconds{generation}`, and one longer than `warn_ms` is logged (its
generation and how many objects it freed; nothing else): as a warning once the process has
frozen what it loaded at start, as debug before (long collections while it loads are
expected). A full collection stops every thread,
the alarm being raised included: each long-running process freezes what it keeps for life
(`backend.process.freeze_loaded`) to keep these short, and this is how to see that it does."""

from __future__ import annotations

import gc
import logging
import threading
import time
from typing import Any

from prometheus_client import Histogram

log = logging.getLogger(__name__)

GC_PAUSE_SECONDS = Histogram(
    "schildwacht_gc_pause_seconds", "Time one garbage collection stopped the interpreter",
    ["generation"],
    buckets=(0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.5),
)

_lock = threading.Lock()
_installed: _Watch | None = None


class _Watch:
    def __init__(self, warn_ms: float) -> None:
        self.warn_ms = warn_ms
        self._started = 0.0

    def __call__(self, phase: str, info: dict[str, Any]) -> None:
        # Collections never overlap (the collector holds the interpreter), so one start time.
        if phase == "start":
            self._started = time.perf_counter()
            return
        pause_s = time.perf_counter() - self._started
        generation = info["generation"]
        GC_PAUSE_SECONDS.labels(str(generation)).observe(pause_s)
        if pause_s * 1e3 >= self.warn_ms:
            started = gc.get_freeze_count() > 0
            log.log(logging.WARNING if started else logging.DEBUG,
                    "gc pause generation=%d ms=%.1f collected=%d", generation, pause_s * 1e3,
                    info.get("collected", 0))


def install(warn_ms: float = 20.0) -> None:
    """Time every collection of this process from now on (idempotent)."""
    global _installed
    with _lock:
        if _installed is not None:
            _installed.warn_ms = warn_ms
            return
        _installed = _Watch(warn_ms)
        gc.callbacks.append(_installed)


def uninstall() -> None:
    global _installed
    with _lock:
        if _installed is not None:
            gc.callbacks.remove(_installed)
            _installed = None
