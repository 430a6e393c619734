"""The floor's relays on a real Mosquitto (and PostgreSQL for the committing one): every message
arrives, and the committing relay stores each one before it forwards it (no timing asserted)."""

from __future__ import annotations

import psycopg
import pytest

from loadtests import floor
from loadtests.stack import libpq_dsn


@pytest.mark.services
@pytest.mark.timeout(60)
def test_two_hops_through_the_empty_relay_deliver_every_message(broker):
    latency = floor.measure(broker.port, rate_per_s=200, count=50, hops=2)

    assert latency.n == 50
    assert 0 < latency.p50 <= latency.max < 1_000


@pytest.mark.services
@pytest.mark.timeout(60)
def test_the_committing_relay_stores_each_message_before_forwarding_it(broker, loadtest_db_url):
    dsn = libpq_dsn(loadtest_db_url)

    latency = floor.measure(broker.port, rate_per_s=200, count=50, hops=2, commit_dsn=dsn)

    assert latency.n == 50
    with psycopg.connect(dsn) as conn:
        payloads = [row[0] for row in conn.execute(
            "SELECT payload FROM bench_floor_commits ORDER BY id")]
    # The warm-up's 10 messages and the 50 measured, each committed once, in order.
    sequences = [floor.stamp_sequence(p) for p in payloads]
    assert sequences == list(range(10)) + [floor.WARMUP_SEQ + i for i in range(50)]


def test_libpq_dsn_from_the_sqlalchemy_url():
    assert libpq_dsn("postgresql+psycopg://sw:pw@db.example:6543/sw_bench") == (
        "host=db.example port=6543 user=sw dbname=sw_bench password=pw")
    assert libpq_dsn("postgresql+psycopg://postgres@127.0.0.1/x", "postgres") == (
        "host=127.0.0.1 port=5432 user=postgres dbname=postgres")
