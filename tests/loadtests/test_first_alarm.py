"""The first-alarm probe on the real services: each start is rehearsed or not as asked, and
every alarm reaches the police feed. No timing assertions."""

from __future__ import annotations

import math

import pytest

from loadtests.first_alarm import measure


@pytest.mark.services
def test_starts_alternate_the_rehearsal_and_every_alarm_arrives(loadtest_db_url, redis_url):
    runs = measure(starts=2, alarms=2, settle_s=0.5, db_url=loadtest_db_url,
                   redis_url=redis_url)
    assert [(r.rehearse, r.rehearsed) for r in runs] == [(True, True), (False, False)]
    for run in runs:
        assert len(run.latencies_ms) == 2
        assert all(math.isfinite(x) and x > 0 for x in run.latencies_ms)
