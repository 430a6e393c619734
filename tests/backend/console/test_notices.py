"""The notices an alert page lists: flags and routing warnings the desk must read, in a fixed
order, each named in every language; grouping marks left out."""

from __future__ import annotations

from backend.console import i18n
from backend.console.notices import KEYS, alert_notices


def test_flags_and_routing_warnings_become_notices_in_a_fixed_order():
    notes = alert_notices(["supervision", "late", "no_fix", "desk:VT17"],
                          {"steps": [], "warnings": ["no_three_ro_contact", "no_police_unit"]})
    assert notes == ["alert_note_no_fix", "alert_note_late", "alert_note_no_police_unit",
                     "alert_note_no_three_ro_contact"]


def test_no_flags_nor_plan_no_notices_and_odd_warnings_are_ignored():
    assert alert_notices(None, None) == []
    assert alert_notices([], {"warnings": "no_region"}) == []
    assert alert_notices([], {"warnings": [3, None, "no_region"]}) == ["alert_note_no_region"]


def test_every_notice_is_named_in_every_language():
    for lang in i18n.LANGUAGES:
        catalogue = i18n.catalogue(lang)
        assert [k for k in KEYS if k not in catalogue] == [], lang
