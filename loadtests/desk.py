"""The 24-hour desk of the alarm-path benchmark: acknowledges every alert the console shows, a
few seconds after it appeared, through the API, as a dispatcher would.

Unacknowledged, every panic alert escalates three times in its first minute (re-notify at
30 s, the desk supervisor at 45 s, the police unit at 60 s; `backend/routing/policy.yaml`),
each step a transition with its police feed message, webhooks and console events: at the
benchmark's 4 alarms/s that is 12 escalations a second of load no desk in service lets happen.
"""

from __future__ import annotations

import queue
import threading
import time

import httpx

ACK_AFTER_S = 5.0


class Desk:
    def __init__(self, api_url: str, token: str, after_s: float = ACK_AFTER_S) -> None:
        self.after_s = after_s
        self.acknowledged = 0
        self.failed = 0
        self._due: queue.Queue[tuple[float, str]] = queue.Queue()
        self._stop = threading.Event()
        self._http = httpx.Client(base_url=api_url, timeout=5.0,
                                  headers={"Authorization": f"Bearer {token}"})
        self._thread = threading.Thread(target=self._run, name="desk", daemon=True)
        self._thread.start()

    def saw(self, alert_id: str) -> None:
        """The console showed this alert (now): acknowledge it `after_s` from now."""
        self._due.put((time.monotonic() + self.after_s, alert_id))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                due, alert_id = self._due.get(timeout=0.2)
            except queue.Empty:
                continue
            if self._stop.wait(max(0.0, due - time.monotonic())):
                return
            try:
                response = self._http.post(f"/api/v1/alerts/{alert_id}/acknowledge")
                ok = response.status_code == 200
            except httpx.HTTPError:
                ok = False
            if ok:
                self.acknowledged += 1
            else:
                self.failed += 1

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self._http.close()
