"""`python -m loadtests.redis_away`: alarms while Redis hangs.

Redis holds hot state that can be rebuilt; an alarm must not wait for it. This runs the alarm
and fix workers of the benchmark's deployment (its own Mosquitto, the benchmark database) on a
Redis server of their own, and sends panic alarms 250 ms apart, timing each to the police feed:
first with Redis answering, then while it hangs (SIGSTOP: a server or network that answers
nothing, so each command waits for the socket timeout), then after it answers again. Prints
p50 and the slowest per phase. Traffic goes to 127.0.0.1 only.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from device_protocol import Alarm, Topics, codec

from loadtests import mqtt
from loadtests.alarm_path import Probe
from loadtests.broker import OwnMosquitto
from loadtests.redis_server import own_redis
from loadtests.seeding import seed
from loadtests.stack import BENCH_DB_URL, Stack

ROTTERDAM = (51.9225, 4.4792)
PHASES = ("Redis answering", "Redis hanging", "Redis answering again")


@dataclass(frozen=True)
class Phase:
    name: str
    latencies_ms: list[float]  # alarm -> police feed, in order; inf: not within 30 s

    @property
    def p50_ms(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def slowest_ms(self) -> float:
        return max(self.latencies_ms)


def measure(alarms: int = 12, gap_s: float = 0.25, db_url: str = BENCH_DB_URL) -> list[Phase]:
    phases: list[Phase] = []
    with own_redis() as redis_server, OwnMosquitto() as broker, \
            Stack(broker.port, db_url=db_url, redis_url=redis_server.url, api=False) as stack:
        seeded = seed(stack.db, victims=20, measures=0)
        probe = Probe(broker.port, stack.topic_root, None, None)
        topics = Topics(stack.topic_root)
        client = mqtt.connect(broker.port)
        try:
            stack.restart_ingest()  # started after the seeding, as in service
            time.sleep(5.0)  # connected and idle
            for number, name in enumerate(PHASES):
                if number == 1:
                    redis_server.hang()
                elif number == 2:
                    redis_server.resume()
                    time.sleep(2.0)
                prefix = f"away-{number}-"
                probe.expect(prefix)
                sent: dict[str, float] = {}
                for i in range(alarms):
                    message_id = f"{prefix}{i:03d}"
                    device = seeded.victims[i % len(seeded.victims)]
                    payload = codec.encode(Alarm(id=message_id, tst=time.time(),
                                                 lat=ROTTERDAM[0], lon=ROTTERDAM[1], acc=8.0))
                    sent[message_id] = time.perf_counter()
                    client.publish(topics.alarm(device), payload, qos=1)
                    time.sleep(gap_s)
                deadline = time.monotonic() + 30
                while (len([m for m in sent if m in probe.police.first]) < len(sent)
                       and time.monotonic() < deadline):
                    time.sleep(0.01)
                phases.append(Phase(name, [
                    (probe.police.first[m] - t) * 1e3 if m in probe.police.first
                    else float("inf") for m, t in sent.items()]))
        finally:
            redis_server.resume()
            mqtt.close(client)
            probe.close()
    return phases


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m loadtests.redis_away", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alarms", type=int, default=12, help="alarms per phase")
    args = parser.parse_args(argv)
    print("phase                  | alarm -> police p50 ms | slowest ms")
    for phase in measure(alarms=args.alarms):
        print(f"{phase.name:<22} | {phase.p50_ms:22.1f} | {phase.slowest_ms:10.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
