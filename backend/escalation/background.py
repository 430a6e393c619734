"""The time-driven loops of a process, started next to the outbox dispatcher: escalation, device
supervision, custody tightening, the pings' retention and that of alert copies, and the sweep of
unfinished follow-ups. All are safe to run in several processes at once (escalation and custody
claim their rows with SKIP LOCKED, the sweep claims each follow-up once;
supervision raises deduplicated, grouped alerts; one process at a time does the pings' upkeep;
the copies' retention deletes and empties rows that only it changes)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.alerts.follow_up_sweep import FollowUpSweep
from backend.cases.custody_loop import CustodyLoop
from backend.devices.ping_retention import PingRetentionLoop
from backend.escalation.loop import EscalationLoop
from backend.outbox.retention import OutboxRetentionLoop
from backend.supervision.loop import SupervisionLoop

if TYPE_CHECKING:
    from backend.runtime import Runtime


class BackgroundLoops:
    def __init__(self, rt: Runtime) -> None:
        self.escalation = EscalationLoop(rt)
        self.supervision = SupervisionLoop(rt)
        self.custody = CustodyLoop(rt)
        self.ping_retention = PingRetentionLoop(rt)
        self.outbox_retention = OutboxRetentionLoop(rt)
        self.follow_up_sweep = FollowUpSweep(rt)

    def _loops(self) -> tuple:
        return (self.escalation, self.supervision, self.custody, self.ping_retention,
                self.outbox_retention, self.follow_up_sweep)

    def start(self) -> BackgroundLoops:
        for loop in self._loops():
            loop.start()
        return self

    def stop(self) -> None:
        for loop in self._loops():
            loop.stop()

    def problems(self, stuck_after_s: float) -> list[str]:
        """What a watchdog should know: a loop whose thread ended or whose pass is stuck."""
        return [p for loop in self._loops() for p in loop.problems(stuck_after_s)]
