"""A mini benchmark run on the real services (tiny counts, no timing assertions): the pipeline
produces exactly one alert per alarm, idle and under a small background fleet, and every alarm
reaches the police feed and the console."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import create_engine

from loadtests.bench import WAL_KEPT, Config, run
from loadtests.report import verdicts
from loadtests.stack import libpq_dsn, ping_count
from loadtests.wal_stall import min_wal_size_mb


@pytest.mark.services
@pytest.mark.timeout(300)
def test_mini_bench_one_alert_per_alarm(loadtest_db_url, redis_url, tmp_path, monkeypatch):
    monkeypatch.setenv("SW_BENCH_LOG_DIR", str(tmp_path))  # the processes' logs are kept
    cfg = Config(floor_rates=(100,), floor_seconds=0.5, floor_repeats=1, ceiling_messages=0,
                 victims=5, measures=20, levels=(0, 200), alarms=12, alarm_rate=6.0,
                 p999_level=200, p999_alarms=18, store_floor_messages=12, wal_segments=2,
                 ramp_rates=(), memory_devices=0, db_url=loadtest_db_url, redis_url=redis_url,
                 write_docs=False)

    results = run(cfg)

    [logs] = tmp_path.iterdir()
    assert "channels: alarm" in (logs / "ingest-alarm.log").read_text()

    assert results.one_hop[100].n == 50 and results.two_hop[100].n == 50
    # The server's WAL kept to reuse is reported with the machine (segments readied before).
    assert results.machine[WAL_KEPT] == f"{min_wal_size_mb(libpq_dsn(loadtest_db_url))} MB"
    # The desk acknowledged alerts through the API (the last ones may not have been due yet).
    assert results.acknowledged > 0 and results.acknowledge_failures == 0
    assert [a.background for a in results.alarm] == [0, 200]
    assert not [n for n in results.notes if "fell behind" in n]  # the watchdog's reading holds
    # Every fix the fleets sent was stored, the warm-up's too: the workers had subscribed
    # before anything was sent to them (`Stack.start_ingest`).
    assert not [n for n in results.notes if "had not stored the fleet's fixes" in n]
    for level, sent in zip(results.alarm, (12, 18), strict=True):  # more at the p99.9 level
        assert level.run.sent == sent
        assert (level.db_alerts, level.db_distinct) == (sent, sent)  # none lost or duplicated
        assert (level.final_alerts, level.final_distinct) == (sent, sent)
        assert level.run.police_missing == 0
        assert level.run.console_missing == 0
        assert level.run.police.n == sent
        assert level.store_floor is not None and level.store_floor.n == 12
        assert level.relay_floor is not None and level.relay_floor.n == 12
        # The slowest alarms are named, slowest first, with the time they were sent.
        assert [ms for _m, ms, _at in level.run.slowest] == sorted(
            (ms for _m, ms, _at in level.run.slowest), reverse=True)
        assert level.run.slowest[0][1] == level.run.police.max
        assert all(m.startswith(f"L{level.background}-") for m, _ms, _at in level.run.slowest)
        # ... and split at the worker's receipt (read back from their alerts) and at the feed's
        # hand-over for writing (the worker's log): every part is there. The rest, the write
        # and the feed's hop, comes after the hand-over; it is below zero only by what the
        # worker's wall clock and this process's monotonic one drift apart during the run.
        for split in level.slowest_split():
            assert split.before is not None and split.in_worker is not None
            assert split.database is not None and split.after is not None
            assert 0 < split.database < split.in_worker < split.ms and split.before > 0
            assert split.after > -0.5


@pytest.mark.services
@pytest.mark.timeout(300)
def test_two_fix_workers_share_the_fleet_each_fix_once(loadtest_db_url, redis_url, tmp_path,
                                                       monkeypatch):
    monkeypatch.setenv("SW_BENCH_LOG_DIR", str(tmp_path))
    cfg = Config(floor_rates=(), ceiling_messages=0, victims=5, measures=20, levels=(300,),
                 alarms=6, alarm_rate=6.0, p999_level=0, store_floor_messages=0, wal_segments=2,
                 ramp_rates=(), memory_devices=0, db_url=loadtest_db_url, redis_url=redis_url,
                 write_docs=False, fix_workers=2)

    results = run(cfg)

    [logs] = tmp_path.iterdir()
    processed = [int(re.findall(r"ingest worker stopped client=\S+ processed=(\d+)",
                                (logs / f"{name}.log").read_text())[-1])
                 for name in ("ingest", "ingest-2")]
    engine = create_engine(loadtest_db_url)
    try:
        stored = ping_count(engine)
    finally:
        engine.dispose()
    assert all(n > 0 for n in processed)  # both took part ...
    assert sum(processed) == stored  # ... each fix went to one of them: one shared subscription
    assert not [n for n in results.notes if "had not stored the fleet's fixes" in n]
    assert results.alarm[0].final_distinct == 6 and results.alarm[0].lost == 0
    assert not any("one worker sustains" in v.target for v in verdicts(results))
