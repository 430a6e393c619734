"""The cold-path probe on the real database: it raises real alerts (one per raise, none
lost) and reports a latency per idle gap. No timing assertions."""

from __future__ import annotations

import math

import pytest
from sqlalchemy import create_engine, func, select

from backend.alerts.models import Alert
from loadtests.cold_path import measure


@pytest.mark.services
def test_cold_path_raises_one_alert_per_try_and_reports_each_gap(loadtest_db_url):
    engine = create_engine(loadtest_db_url)
    with engine.connect() as conn:
        before = conn.scalar(select(func.count()).select_from(Alert)
                             .where(Alert.message_id.like("cold-%")))

    results = measure(loadtest_db_url, gaps_s=(0.0, 0.01), count=3, warmup=2)

    assert [r.gap_s for r in results] == [0.0, 0.01]
    for r in results:
        assert math.isfinite(r.p50_ms) and 0 < r.p50_ms <= r.p90_ms
    with engine.connect() as conn:
        after = conn.scalar(select(func.count()).select_from(Alert)
                            .where(Alert.message_id.like("cold-%")))
    assert after - before == 2 + 2 * 3
    engine.dispose()
