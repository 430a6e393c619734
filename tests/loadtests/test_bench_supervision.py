"""The supervision benchmark on the real services: a small fleet, its silent devices raised
once and then left alone, and its section of the docs. No timing assertions."""

from __future__ import annotations

import pytest

from loadtests.bench_supervision import BEGIN, END, measure, write_docs


@pytest.mark.services
def test_a_pass_sees_every_device_and_raises_the_silent_ones_once(loadtest_db_url, redis_url):
    row = measure(1_200, db_url=loadtest_db_url, redis_url=redis_url, passes=2)

    assert row["devices"] == 1_200  # the database was emptied first
    assert row["silent"] == 2  # devices 0 and 1,000
    assert row["first_new"] == 2  # one grouped alert per case, each its own case
    assert row["signals"] == 2  # still silent in the measured passes ...
    assert (row["later_new"], row["later_updates"]) == (0, 0)  # ... and nothing new
    assert row["cpu_ms"] > 0 and row["wall_ms"] > 0


@pytest.mark.services
def test_a_closed_alert_history_covers_the_long_silent_device(loadtest_db_url, redis_url):
    row = measure(1_200, db_url=loadtest_db_url, redis_url=redis_url, passes=2,
                  closed_per_device=2)

    assert row["closed"] == 2_400
    assert row["silent"] == 2 and row["signals"] == 2  # devices 0 (for months) and 1,000
    assert row["first_new"] == 1  # device 0's episode: the desk closed an alert since
    assert (row["later_new"], row["later_updates"]) == (0, 0)


def test_supervision_section_is_written_once_and_replaced(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nhand-written text\n")
    row = {"devices": 150_000, "silent": 150, "signals": 150, "cpu_ms": 630.0,
           "wall_ms": 940.0, "core_share": 0.126}
    write_docs([row], "cmd", 27.0, doc)
    write_docs([{**row, "cpu_ms": 700.5}], "cmd", 27.0, doc)
    text = doc.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "hand-written text" in text and "## Device supervision per pass" in text
    assert "| 150,000 | 150 | 150 | 700.5 | 940.0 | 12.6% |" in text
    assert "Closed alerts kept" not in text
    write_docs([{**row, "closed": 300_000}], "cmd --closed-per-device=2", 27.0, doc)
    assert "Closed alerts kept: 2 per device, raised over the last 180 days" in doc.read_text()
