"""A case log entry as one line of the console's case page."""

from __future__ import annotations

from backend.caselog.summary import summary


def test_a_note_is_its_text() -> None:
    assert summary("note", {"text": "Slachtoffer gesproken."}) == "Slachtoffer gesproken."


def test_fields_are_named_and_a_change_reads_from_to() -> None:
    line = summary("measure", {"changes": {"risk_level": {"from": "medium", "to": "high"},
                                           "safety_plan": "changed"}})
    assert line == "changes.risk_level: medium \u2192 high; changes.safety_plan: changed"


def test_lists_and_recipients_are_spelled_out_and_nothing_is_left_out() -> None:
    line = summary("alert", {"type": "panic", "priority": "P1", "police_unit": None,
                             "recipients": [{"kind": "police_unit", "code": "RE07"},
                                            {"kind": "vt_desk", "code": None}],
                             "devices": []})
    assert line == "type: panic; priority: P1; recipients: police_unit RE07, vt_desk"


def test_a_long_line_is_cut() -> None:
    line = summary("note", {"text": "x" * 1_000}, max_chars=50)
    assert len(line) == 50 and line.endswith("\u2026")
