from __future__ import annotations

import pytest

from loadtests.alarm_path import AlarmRun
from loadtests.report import (
    BEGIN,
    END,
    AlarmLevel,
    Results,
    latency_rows,
    markdown,
    same_background_reading,
    verdicts,
    write_markdown,
)
from loadtests.stats import Latency
from loadtests.throughput import Step


def _results() -> Results:
    r = Results(command="make bench", machine={"nproc": "2"})
    r.two_hop[1_000] = Latency.of([1.0] * 99 + [2.0])
    run = AlarmRun(sent=10, police=Latency.of([3.0] * 10), ack=Latency.of([3.0] * 10),
                   console=Latency.of([9.0] * 10), webhook=None, police_missing=0,
                   police_duplicates=0, console_missing=0, webhook_missing=None)
    r.alarm = [AlarmLevel(1_000, 1_000.0, run, db_alerts=10, db_distinct=9)]
    r.ramp = [Step(5_000, 5_000, 5_000, 0, True), Step(6_500, 6_500, 5_100, 9_000, False)]
    return r


def test_verdicts_against_the_floor_and_the_integrity_count():
    by_target = {v.target: v for v in verdicts(_results())}
    floor_target = by_target["alarm->police p99 @1k fixes/s <= 3x two-hop floor p99"]
    assert floor_target.limit == 3.0 and floor_target.passed  # 3.0 <= 3 x 1.0
    assert by_target["one worker sustains >= 5,000 fixes/s"].passed
    assert not by_target[
        "alarms without exactly one alert by the end of the run (database)"].passed  # 1 lost
    assert by_target["alarm->console p99 @1k fixes/s < 50 ms"].passed
    assert not any("webhook" in t for t in by_target)  # no webhook feature: no verdict


def test_the_same_background_reading_is_shown_beside_the_target_not_as_one():
    r = _results()
    assert same_background_reading(r) is None  # no relay measured under the background
    r.alarm[0].relay_floor = Latency.of([0.8] * 98 + [0.9] * 2)

    reading = same_background_reading(r)
    assert reading is not None and "3.00 ms against 3 x 0.90 = 2.70 ms, not met" in reading
    assert reading in markdown(r, None)
    assert not any("same" in v.target for v in verdicts(r))  # the target stays the strict one
    r.alarm[0].relay_floor = Latency.of([1.0] * 98 + [1.5] * 2)
    assert "3 x 1.50 = 4.50 ms, met" in same_background_reading(r)


def test_webhook_and_console_targets_hold_at_every_level():
    r = _results()
    slow = AlarmRun(sent=10, police=Latency.of([3.0] * 10), ack=Latency.of([3.0] * 10),
                    console=Latency.of([60.0] * 10), webhook=Latency.of([25.0] * 10),
                    police_missing=0, police_duplicates=0, console_missing=0,
                    webhook_missing=0)
    fast = AlarmRun(sent=10, police=Latency.of([3.0] * 10), ack=Latency.of([3.0] * 10),
                    console=Latency.of([9.0] * 10), webhook=Latency.of([8.0] * 10),
                    police_missing=0, police_duplicates=0, console_missing=0,
                    webhook_missing=0)
    r.alarm = [AlarmLevel(0, 0.0, fast, 10, 10), AlarmLevel(3_000, 3_000.0, slow, 10, 10)]
    by_target = {v.target: v.passed for v in verdicts(r)}
    assert by_target["alarm->webhook p99 idle < 20 ms"] is True
    assert by_target["alarm->console p99 idle < 50 ms"] is True
    assert by_target["alarm->webhook p99 @3k fixes/s < 20 ms"] is False
    assert by_target["alarm->console p99 @3k fixes/s < 50 ms"] is False


def test_generated_section_replaced_and_prose_kept(tmp_path):
    path = tmp_path / "benchmarks.md"
    path.write_text(f"# Benchmarks\n\nIntro.\n\n{BEGIN}\nold\n{END}\n\n## Findings\nkept\n")
    write_markdown(path, f"{BEGIN}\nnew\n{END}")
    text = path.read_text()
    assert "old" not in text and "new" in text
    assert text.startswith("# Benchmarks\n\nIntro.") and text.endswith("## Findings\nkept\n")


def test_steal_share_is_the_hypervisors_part_of_the_cpu_time() -> None:
    from collections import namedtuple

    from loadtests.report import steal_share

    Times = namedtuple("Times", "user nice system idle iowait irq softirq steal guest guest_nice")
    before = Times(10, 0, 5, 100, 1, 0, 0, 2, 3, 0)
    after = Times(40, 0, 15, 140, 1, 0, 0, 12, 9, 0)  # 30+10+40+10 = 90 s, 10 of them stolen
    assert steal_share(before, after) == pytest.approx(10 / 90)
    NoSteal = namedtuple("NoSteal", "user system idle")
    assert steal_share(NoSteal(1, 1, 1), NoSteal(2, 2, 2)) == 0.0


def test_the_cpu_probe_measures_a_positive_time() -> None:
    from loadtests.report import cpu_probe_ms

    assert 0 < cpu_probe_ms(rounds=1) < 60_000


def test_the_floors_under_load_are_rows_of_their_level_with_their_ratio_to_the_floor():
    r = _results()
    r.alarm[0].relay_floor = Latency.of([1.0] * 98 + [1.5] * 2)
    r.alarm[0].store_floor = Latency.of([2.0] * 98 + [4.0] * 2)

    rows = latency_rows(r)

    at_level = [row for row in rows if row[0].startswith("floor: two hops")
                and row[1] == "1,000 fixes/s"]
    assert at_level == [
        ["floor: two hops via empty relay", "1,000 fixes/s", "100", "1.00", "1.50", "1.50",
         "1.0x", "1.5x"],
        ["floor: two hops via relay committing each message", "1,000 fixes/s", "100", "2.00",
         "4.00", "4.00", "2.0x", "4.0x"]]
    # Before the level's alarms, after the plain floors.
    names = [row[0] for row in rows]
    assert rows.index(at_level[1]) < names.index("alarm -> police MQTT feed")
    assert names.index("floor: two hops via empty relay") < rows.index(at_level[0])


def test_the_slowest_alarms_are_split_at_the_workers_receipt_and_its_feed():
    r = _results()
    run = r.alarm[0].run
    run.slowest = [("L1000-000007", 21.5, 100.000), ("L1000-000003", 9.0, 200.000),
                   ("L1000-000009", 8.0, 300.000)]
    r.alarm[0].worker_received = {"L1000-000007": 100.0005, "L1000-000003": 200.0005}
    r.alarm[0].worker_times = {"L1000-000007": (19.5, 18.0)}

    [slow, no_log, not_stored] = r.alarm[0].slowest_split()
    assert (slow.before, slow.in_worker, slow.database) == (pytest.approx(0.5), 19.5, 18.0)
    assert slow.after == pytest.approx(1.5)
    assert (no_log.before, no_log.in_worker, no_log.after) == (pytest.approx(0.5), None, None)
    assert not_stored.before is None and not_stored.after is None
    text = markdown(r, None)
    assert "| 1,000 fixes/s | L1000-000007 | 21.5 | 0.50 | 19.5 | 18.0 | 1.50 |" in text
    assert "| 1,000 fixes/s | L1000-000009 | 8.00 | - | - | - | - |" in text
