"""A pass run every few seconds in a background thread (escalation, supervision)."""

from __future__ import annotations

import logging
import threading
import time

log = logging.getLogger(__name__)


class Periodic:
    """Runs `run_once()` every `interval_s` seconds in a daemon thread named `name`. A pass that
    fails is logged and the loop goes on: one bad pass must not stop escalating or supervising."""

    name = "periodic"
    interval_s: float = 1.0
    _began: float | None = None  # when the thread last began a pass or a wait (monotonic)

    def run_once(self) -> object:  # pragma: no cover - overridden
        raise NotImplementedError

    def start(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()
            self._thread.join(timeout=10)

    def problems(self, stuck_after_s: float, now: float | None = None) -> list[str]:
        """For a watchdog (`backend.service_notify`): the loop's thread ended, or one pass
        (or the wait after it) has gone on for longer than `interval_s` + `stuck_after_s`."""
        thread = getattr(self, "_thread", None)
        if thread is None:
            return []  # not started
        if not thread.is_alive():
            return [] if self._stop.is_set() else [f"loop {self.name} ended"]
        now = time.monotonic() if now is None else now
        began = self._began if self._began is not None else now
        if now - began > self.interval_s + stuck_after_s:
            return [f"loop {self.name} showed no progress for {now - began:.0f} s"]
        return []

    def _run(self) -> None:
        while not self._stop.is_set():
            self._began = time.monotonic()
            try:
                self.run_once()
            except Exception:  # noqa: BLE001
                log.exception("%s pass failed", self.name)
            self._began = time.monotonic()
            self._stop.wait(self.interval_s)
