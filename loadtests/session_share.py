"""`python -m loadtests.session_share`: what a niceness is worth between two services.

Two busy processes share one CPU for a few seconds, one at niceness 0 (standing for the alarm
worker) and one at 19 (bulk work), in three ways: in one session (niceness orders them), each in
a session of its own with only its own niceness set (as `backend.process` did before item 57),
and each in a session of its own with `backend.process.set_niceness` (its session's scheduling
group at the same niceness). Prints the CPU seconds each got. With the kernel's autogroups on,
the second way shares the CPU about evenly: the niceness counts only inside each session.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from backend.process import AUTOGROUP, set_niceness

URGENT, BULK = 0, 19
WAYS = ("one session", "own sessions, process niceness only", "own sessions, set_niceness")


@dataclass(frozen=True)
class Share:
    way: str
    urgent_s: float  # CPU seconds of the process at niceness 0
    bulk_s: float  # and of the one at 19

    @property
    def ratio(self) -> float:
        return self.urgent_s / max(self.bulk_s, 1e-6)


def _spin(way: str, nice: int, cpu: int, start, seconds: float, out) -> None:  # pragma: no cover
    # A child: its CPU time goes to `out` (measured here, so the parent needs no privilege).
    os.sched_setaffinity(0, {cpu})
    if way != WAYS[0]:
        os.setsid()
    if way == WAYS[2]:
        set_niceness(nice)
    else:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    start.wait()
    began = time.process_time()
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        pass
    out.value = time.process_time() - began


def measure(way: str, seconds: float = 2.0) -> Share:
    ctx = mp.get_context("fork")
    cpu = min(os.sched_getaffinity(0))
    start = ctx.Event()
    outs = [ctx.Value("d", 0.0, lock=False) for _ in (URGENT, BULK)]
    procs = [ctx.Process(target=_spin, args=(way, nice, cpu, start, seconds, out))
             for nice, out in zip((URGENT, BULK), outs, strict=True)]
    for p in procs:
        p.start()
    time.sleep(0.2)  # both have set themselves up
    start.set()
    for p in procs:
        p.join(seconds + 10)
    return Share(way, outs[0].value, outs[1].value)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.session_share", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=2.0)
    args = parser.parse_args(argv)
    if not AUTOGROUP.exists():
        print("this kernel has no autogroups: niceness orders every process alike")
    print("way | CPU s at niceness 0 | CPU s at niceness 19 | ratio")
    for way in WAYS:
        s = measure(way, args.seconds)
        print(f"{way} | {s.urgent_s:.2f} | {s.bulk_s:.2f} | {s.ratio:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
