"""The benchmark stack's cheap progress reading of the pings (database statistics)."""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy import create_engine
from sqlalchemy.orm import Session

from backend.devices.pings import PingRow, store_pings
from loadtests.stack import STATS_LAG_S, ping_count, pings_inserted, register
from tests.support.waiting import wait_until


@pytest.mark.services
def test_pings_inserted_follows_the_inserts_within_the_statistics_lag(loadtest_db_url):
    engine = create_engine(loadtest_db_url)
    try:
        device = f"stats-{uuid.uuid4().hex[:8]}"
        register(engine, [device], "offender")
        before, counted = pings_inserted(engine), ping_count(engine)
        now = time.time()
        with Session(engine) as session, session.begin():
            store_pings(session, [PingRow(device, now - i, now, 51.9, 4.47, 8.0, None, None)
                                  for i in range(25)])
        assert ping_count(engine) == counted + 25
        # Read from another connection: the inserting server process reports within about
        # STATS_LAG_S; allow several times that on a loaded machine.
        wait_until(lambda: pings_inserted(engine) - before == 25, timeout=10 * STATS_LAG_S)
    finally:
        engine.dispose()
