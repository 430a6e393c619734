"""`python -m loadtests.first_alarm`: how long the first alarm after a worker start takes.

The benchmark leaves its first 30 alarms uncounted; in service, the first alarm after a
deployment is a real one. This restarts the alarm worker of the benchmark's deployment (its own
Mosquitto, the benchmark database) several times, alternately with and without the start-up
rehearsal (`ingest.rehearse`), and after each start sends a few panic alarms 250 ms apart, one
at a time, timing each to the police feed. Prints the first alarm's latency per start and the
medians. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from device_protocol import Alarm, Topics, codec

from loadtests import mqtt
from loadtests.alarm_path import Probe
from loadtests.broker import OwnMosquitto
from loadtests.seeding import seed
from loadtests.stack import BENCH_DB_URL, BENCH_REDIS_URL, Stack

ROTTERDAM = (51.9225, 4.4792)
CONNECTED = "ingest connected"
REHEARSED = "alarm path rehearsed"


@dataclass(frozen=True)
class Start:
    rehearse: bool  # asked for (`ingest.rehearse`)
    rehearsed: bool  # the worker logged its rehearsal
    latencies_ms: list[float]  # alarm -> police feed, in order; inf: never arrived


def _started(stack: Stack, connected_before: int, timeout_s: float = 60.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if stack.log_tail("ingest-alarm", 10_000).count(CONNECTED) > connected_before:
            return True
        time.sleep(0.1)
    return False


def measure(starts: int = 8, alarms: int = 5, settle_s: float = 3.0,
            db_url: str = BENCH_DB_URL, redis_url: str = BENCH_REDIS_URL) -> list[Start]:
    """The alarms after each start, alternately with and without the rehearsal."""
    runs: list[Start] = []
    with OwnMosquitto() as broker, \
            Stack(broker.port, db_url=db_url, redis_url=redis_url, api=False) as stack:
        seeded = seed(stack.db, victims=20, measures=0)
        probe = Probe(broker.port, stack.topic_root, None, None)
        topics = Topics(stack.topic_root)
        client = mqtt.connect(broker.port)
        try:
            for start in range(starts):
                rehearse = start % 2 == 0
                os.environ["SCHILDWACHT_INGEST__REHEARSE"] = "true" if rehearse else "false"
                log = stack.log_tail("ingest-alarm", 10_000)
                before, rehearsals = log.count(CONNECTED), log.count(REHEARSED)
                stack.restart_ingest()
                if not _started(stack, before):
                    raise RuntimeError("the alarm worker did not connect")
                time.sleep(settle_s)  # started and idle, as after a deployment
                prefix = f"first-{start}-"
                probe.expect(prefix)
                latencies = []
                for i in range(alarms):
                    message_id = f"{prefix}{i:03d}"
                    device = seeded.victims[(start * alarms + i) % len(seeded.victims)]
                    payload = codec.encode(Alarm(id=message_id, tst=time.time(),
                                                 lat=ROTTERDAM[0], lon=ROTTERDAM[1], acc=8.0))
                    sent = time.perf_counter()
                    client.publish(topics.alarm(device), payload, qos=1)
                    deadline = time.monotonic() + 10
                    while message_id not in probe.police.first and time.monotonic() < deadline:
                        time.sleep(0.0005)
                    arrived = probe.police.first.get(message_id)
                    latencies.append((arrived - sent) * 1e3 if arrived else float("inf"))
                    time.sleep(0.25)
                rehearsed = stack.log_tail("ingest-alarm", 10_000).count(REHEARSED) > rehearsals
                runs.append(Start(rehearse, rehearsed, latencies))
        finally:
            os.environ.pop("SCHILDWACHT_INGEST__REHEARSE", None)
            mqtt.close(client)
            probe.close()
    return runs


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.first_alarm", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--starts", type=int, default=8, help="worker starts, half of them "
                        "without the rehearsal")
    args = parser.parse_args(argv)
    runs = measure(starts=args.starts)
    for run in runs:
        label = "with rehearsal" if run.rehearsed else "without rehearsal"
        print(f"{label:>17} | " + " ".join(f"{x:6.1f}" for x in run.latencies_ms))
    print("start-up          | first alarm p50 ms | later alarms p50 ms")
    for rehearsed in (True, False):
        label = "with rehearsal" if rehearsed else "without rehearsal"
        these = [r.latencies_ms for r in runs if r.rehearsed is rehearsed]
        if these:
            first = statistics.median(one[0] for one in these)
            later = statistics.median(x for one in these for x in one[1:])
            print(f"{label:>17} | {first:18.1f} | {later:19.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
