from __future__ import annotations

from loadtests.bench_geofence import BEGIN, END, write_docs

ROW = {"measures": 1000, "devices": 500, "on_fix_us": 12.0, "on_fixes_us": 9.0,
       "bare_query_us": 25.0, "ratio": 0.48}


def test_geofence_section_is_written_once_and_replaced(tmp_path):
    doc = tmp_path / "benchmarks.md"
    doc.write_text("# Benchmarks\n\nhand-written text\n")
    write_docs([ROW], "cmd", doc)
    write_docs([{**ROW, "ratio": 2.5, "on_fix_us": 62.5}], "cmd", doc)
    text = doc.read_text()
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert "hand-written text" in text
    assert "| 1,000 | 500 | 62.5 | 9.0 | 25.0 | 2.5 | FAIL |" in text
