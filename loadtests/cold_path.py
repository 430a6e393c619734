"""`python -m loadtests.cold_path`: what one alert raise costs after the process was idle.

The alarm worker's store step (routing, the alert document, the one-statement raise in
autocommit: `AlertFlow.raise_alerts`) runs here in one process against the benchmark database
(`SCHILDWACHT_BENCH_DATABASE_URL`), for panic alarms of victim devices it registers itself:
back to back, then with idle gaps between raises. Alarms come seconds apart, so in service every
alarm pays what the gap costs; the benchmark's 4 alarms/s are a 250 ms gap. Prints p50 / p90 per
gap (ms); no background load, nothing else running in the process.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from backend.cases.snapshots import CaseSnapshots
from backend.pipeline.context import AlertDraft
from backend.runtime import Runtime
from backend.settings import Settings
from loadtests.stack import BENCH_DB_URL, ensure_database, register
from loadtests.stats import percentile

ROTTERDAM = (51.9225, 4.4792)
GAPS_S = (0.0, 0.01, 0.05, 0.25)


@dataclass(frozen=True)
class GapResult:
    gap_s: float
    p50_ms: float
    p90_ms: float


def measure(db_url: str, gaps_s: Sequence[float] = GAPS_S, count: int = 60,
            warmup: int = 20) -> list[GapResult]:
    ensure_database(db_url)
    runtime = Runtime.build(Settings(database={"url": db_url}, broker={"embedded": False}))
    try:
        tag = uuid.uuid4().hex[:8]
        victims = list(register(runtime.engine, [f"cold-{tag}-{i:02d}" for i in range(20)],
                                "victim").items())
        # As in the alarm worker, every case in memory (there a change counter in Redis says
        # when to reload; here nothing changes).
        runtime.flow.cases = CaseSnapshots(ttl_s=3600.0)
        with runtime.sessions() as session:
            runtime.flow.cases.load_all(session)
        n = 0

        def raise_one() -> float:
            nonlocal n
            device_id, case_id = victims[n % len(victims)]
            n += 1
            now = time.time()
            draft = AlertDraft(type="panic", device_id=device_id, case_id=case_id,
                               message_id=f"cold-{tag}-{n:06d}", raised_at=now, device_time=now,
                               lat=ROTTERDAM[0], lon=ROTTERDAM[1], acc=8.0, fix_time=now,
                               location_source="alarm")
            started = time.perf_counter()
            with runtime.sessions.begin() as session:
                session.connection(execution_options={"isolation_level": "AUTOCOMMIT"})
                runtime.flow.raise_alerts(session, [draft], follow_up=False)
            return (time.perf_counter() - started) * 1e3

        for _ in range(warmup):
            raise_one()
        results = []
        for gap in gaps_s:
            samples = []
            for _ in range(count):
                time.sleep(gap)
                samples.append(raise_one())
            results.append(GapResult(gap, percentile(samples, 50), percentile(samples, 90)))
        return results
    finally:
        runtime.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.cold_path", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60, help="raises per gap")
    args = parser.parse_args(argv)
    print("idle gap before each raise | raise p50 ms | raise p90 ms")
    for r in measure(BENCH_DB_URL, count=args.count):
        print(f"{r.gap_s * 1e3:>10.0f} ms | {r.p50_ms:>6.2f} | {r.p90_ms:>6.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
