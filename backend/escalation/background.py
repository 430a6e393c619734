"""The time-driven loops of a process, started next to the outbox dispatcher: escalation, device
supervision and custody tightening. All are safe to run in several processes at once (escalation
and custody claim their rows with SKIP LOCKED; supervision raises deduplicated, grouped
alerts)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from backend.cases.custody_loop import CustodyLoop
from backend.escalation.loop import EscalationLoop
from backend.supervision.loop import SupervisionLoop

if TYPE_CHECKING:
    from backend.runtime import Runtime


class BackgroundLoops:
    def __init__(self, rt: Runtime) -> None:
        self.escalation = EscalationLoop(rt)
        self.supervision = SupervisionLoop(rt)
        self.custody = CustodyLoop(rt)

    def start(self) -> BackgroundLoops:
        self.escalation.start()
        self.supervision.start()
        self.custody.start()
        return self

    def stop(self) -> None:
        self.escalation.stop()
        self.supervision.stop()
        self.custody.stop()
