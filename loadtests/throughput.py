"""Ingest throughput: the most fixes/s one worker process sustains. The rate ramps up in steps;
a step is sustained when the worker has stored (almost) every fix of the step shortly after it
ends, i.e. the broker's queue for the worker did not grow. Each step also reports the worker's
CPU time (all threads, user + system) per fix it stored: what a sustained step cost, and what
decides how far the worker goes on a machine it shares."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from loadtests.fleet import Fleet, FleetDevice

OFFERED_MIN = 0.9  # a step counts only if the fleet offered at least this share of its rate


@dataclass(frozen=True, slots=True)
class Step:
    target: float  # fixes/s asked of the fleet
    offered: float  # fixes/s the fleet actually published
    stored: float  # fixes/s stored by the worker over the step and its grace period
    backlog: int  # fixes not yet stored when the grace period ended
    sustained: bool
    cpu_us_per_fix: float | None = None  # the worker's CPU time over the step, per fix stored

    @property
    def fleet_short(self) -> bool:
        """The load generator, not the worker, fell short: the step says nothing of the worker."""
        return self.offered < OFFERED_MIN * self.target

    def describe(self) -> str:
        verdict = ("sustained" if self.sustained else
                   "NOT sustained (the fleet could not offer this rate)" if self.fleet_short else
                   "NOT sustained")
        cpu = ("" if self.cpu_us_per_fix is None else
               f", worker CPU {self.cpu_us_per_fix:,.0f} us/fix")
        return (f"offered {self.offered:,.0f}/s, stored {self.stored:,.0f}/s, backlog "
                f"{self.backlog:,}{cpu} -> {verdict}")


def judge(target: float, sent: int, step_s: float, stored: int, grace_s: float,
          tolerance: float = 0.01, cpu_s: float | None = None) -> Step:
    """Pure verdict on one step (`cpu_s`: the worker's CPU seconds over it, when measured)."""
    backlog = max(0, sent - stored)
    offered = sent / step_s
    return Step(
        target=target,
        offered=offered,
        stored=stored / (step_s + grace_s),
        backlog=backlog,
        sustained=offered >= OFFERED_MIN * target and backlog <= max(10, tolerance * sent),
        cpu_us_per_fix=cpu_s / stored * 1e6 if cpu_s is not None and stored > 0 else None,
    )


def ramp(port: int, root: str, devices: Sequence[FleetDevice], count_stored: Callable[[], int],
         rates: Sequence[float], step_s: float = 5.0, grace_s: float = 1.5,
         drain_timeout_s: float = 30.0, on_step: Callable[[Step], None] | None = None,
         on_sent: Callable[[int], None] | None = None,
         worker_cpu_s: Callable[[], float] | None = None) -> list[Step]:
    """Run each rate in turn until one is not sustained, then wait for that step's backlog to
    drain (up to `drain_timeout_s`). `worker_cpu_s` reads the worker's CPU seconds so far."""
    steps: list[Step] = []
    for rate in rates:
        before = count_stored()
        cpu_before = worker_cpu_s() if worker_cpu_s is not None else 0.0
        fleet = Fleet(port, root, devices, rate, step_s, processes=1 if rate <= 4_000 else 2)
        fleet.start()
        fleet.join(step_s + 30)
        if on_sent is not None:
            on_sent(fleet.sent)
        time.sleep(grace_s)
        cpu_s = worker_cpu_s() - cpu_before if worker_cpu_s is not None else None
        step = judge(rate, fleet.sent, step_s, count_stored() - before, grace_s, cpu_s=cpu_s)
        steps.append(step)
        if on_step is not None:
            on_step(step)
        if not step.sustained:
            deadline = time.monotonic() + drain_timeout_s
            while count_stored() - before < fleet.sent and time.monotonic() < deadline:
                time.sleep(0.5)
            break
    return steps
