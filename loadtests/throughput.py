"""Ingest throughput: the most fixes/s one worker process sustains. The rate ramps up in steps;
a step is sustained when the worker has stored (almost) every fix of the step shortly after it
ends, i.e. the broker's queue for the worker did not grow."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtests.fleet import Fleet, FleetDevice


@dataclass(frozen=True, slots=True)
class Step:
    target: float  # fixes/s asked of the fleet
    offered: float  # fixes/s the fleet actually published
    stored: float  # fixes/s stored by the worker over the step and its grace period
    backlog: int  # fixes not yet stored when the grace period ended
    sustained: bool

    @property
    def fleet_short(self) -> bool:
        """The load generator, not the worker, fell short: the step says nothing of the worker."""
        return self.offered < 0.9 * self.target

    def describe(self) -> str:
        verdict = ("sustained" if self.sustained else
                   "NOT sustained (the fleet could not offer this rate)" if self.fleet_short else
                   "NOT sustained")
        return (f"offered {self.offered:,.0f}/s, stored {self.stored:,.0f}/s, backlog "
                f"{self.backlog:,} -> {verdict}")


def judge(target: float, sent: int, step_s: float, stored: int, grace_s: float,
          tolerance: float = 0.01) -> Step:
    """Pure verdict on one step."""
    backlog = max(0, sent - stored)
    offered = sent / step_s
    return Step(
        target=target,
        offered=offered,
        stored=stored / (step_s + grace_s),
        backlog=backlog,
        sustained=offered >= 0.9 * target and backlog <= max(10, tolerance * sent),
    )


def ramp(port: int, root: str, devices: Sequence[FleetDevice], count_stored: Callable[[], int],
         rates: Sequence[float], step_s: float = 5.0, grace_s: float = 1.5,
         drain_timeout_s: float = 30.0, on_step: Callable[[Step], None] | None = None,
         on_sent: Callable[[int], None] | None = None) -> list[Step]:
    """Run each rate in turn until one is not sustained; wait for the backlog to drain between
    steps (up to `drain_timeout_s`)."""
    steps: list[Step] = []
    for rate in rates:
        before = count_stored()
        fleet = Fleet(port, root, devices, rate, step_s, processes=1 if rate <= 4_000 else 2)
        fleet.start()
        fleet.join(step_s + 30)
        if on_sent is not None:
            on_sent(fleet.sent)
        time.sleep(grace_s)
        step = judge(rate, fleet.sent, step_s, count_stored() - before, grace_s)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if not step.sustained:
            deadline = time.monotonic() + drain_timeout_s
            while count_stored() - before < fleet.sent and time.monotonic() < deadline:
                time.sleep(0.5)
            break
    return steps
