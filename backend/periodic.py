"""A pass run every few seconds in a background thread (escalation, supervision)."""

from __future__ import annotations

import logging
import threading

log = logging.getLogger(__name__)


class Periodic:
    """Runs `run_once()` every `interval_s` seconds in a daemon thread named `name`. A pass that
    fails is logged and the loop goes on: one bad pass must not stop escalating or supervising."""

    name = "periodic"
    interval_s: float = 1.0

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

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.run_once()
            except Exception:  # noqa: BLE001
                log.exception("%s pass failed", self.name)
            self._stop.wait(self.interval_s)
