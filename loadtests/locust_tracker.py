"""Alarms in flight within one locust process: device users note when they pressed panic;
the device ack and the console frame are matched to it by the alarm id."""

from __future__ import annotations

import threading
import time


class AlarmTracker:
    def __init__(self) -> None:
        self._sent: dict[str, float] = {}
        self._acked: set[str] = set()
        self._lock = threading.Lock()

    def sent(self, alarm_id: str, at: float | None = None) -> None:
        with self._lock:
            self._sent[alarm_id] = time.perf_counter() if at is None else at

    def unsent(self, alarm_id: str) -> None:
        """Forget an alarm whose publish never ended (the run stopped the user during it): it
        is not counted as published, so no ack is due."""
        with self._lock:
            self._sent.pop(alarm_id, None)
            self._acked.discard(alarm_id)

    def sent_at(self, alarm_id: str) -> float | None:
        return self._sent.get(alarm_id)

    def acked(self, alarm_id: str) -> float | None:
        """Mark the alarm acknowledged by the backend; its send time, or None if unknown or
        already acknowledged."""
        with self._lock:
            if alarm_id in self._acked or alarm_id not in self._sent:
                return None
            self._acked.add(alarm_id)
            return self._sent[alarm_id]

    def waiting(self, alarm_id: str) -> bool:
        """Sent and not acknowledged yet."""
        with self._lock:
            return alarm_id in self._sent and alarm_id not in self._acked

    def overdue(self, older_than_s: float, now: float | None = None) -> list[str]:
        now = time.perf_counter() if now is None else now
        with self._lock:
            return [a for a, t in self._sent.items()
                    if a not in self._acked and now - t > older_than_s]

    @property
    def counts(self) -> tuple[int, int]:
        with self._lock:
            return len(self._sent), len(self._acked)
