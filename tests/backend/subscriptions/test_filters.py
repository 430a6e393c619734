"""Which subscriptions an alert goes to (pure)."""

from __future__ import annotations

from backend.subscriptions.filters import Filter, matches, police_units

DOC = {"type": "panic", "priority": "P1", "exercise": False,
       "region": {"police_unit": "RE07", "vr_code": "VR17"}}


def test_empty_filter_matches_live_alerts_only():
    assert matches(Filter(), DOC)
    assert not matches(Filter(), {**DOC, "exercise": True})
    assert not matches(Filter(active=False), DOC)


def test_drill_subscription_gets_only_exercise_alerts():
    assert matches(Filter(drill=True), {**DOC, "exercise": True})
    assert not matches(Filter(drill=True), DOC)


def test_place_filter_by_unit_or_region():
    assert matches(Filter(police_units=("RE07",)), DOC, unit="RE07")
    assert not matches(Filter(police_units=("RE05",)), DOC, unit="RE07")
    assert matches(Filter(police_units=("RE05",), vr_codes=("VR17",)), DOC)
    assert not matches(Filter(vr_codes=("VR13",)), DOC)
    # No region (no fix): the routed unit decides, and the case's home region.
    bare = {**DOC, "region": None}
    assert matches(Filter(police_units=("RE07",)), bare, unit="RE07")
    assert not matches(Filter(vr_codes=("VR17",)), bare, unit="RE07")
    homed = {**bare, "case": {"reference": "C-1", "home_vr_code": "VR17"}}
    assert matches(Filter(vr_codes=("VR17",)), homed, unit="RE07")
    assert not matches(Filter(vr_codes=("VR13",)), homed, unit="RE07")


def test_place_filter_by_any_police_unit_among_the_recipients():
    away = {**DOC, "region": {"police_unit": "RE05", "vr_code": "VR13"}, "recipients": [
        {"kind": "police_unit", "code": "RE05"}, {"kind": "vt_desk", "code": "VT4607"},
        {"kind": "police_unit", "code": "RE07"}]}  # and the case's home unit
    assert matches(Filter(police_units=("RE07",)), away, unit="RE05")
    assert not matches(Filter(police_units=("RE01",)), away, unit="RE05")
    drill = {**DOC, "exercise": True, "recipients": [
        {"kind": "police_unit", "code": "exercise-police", "stands_in_for": "RE07"}]}
    assert matches(Filter(drill=True, police_units=("RE07",)), drill, unit="RE07")
    assert not matches(Filter(drill=True, police_units=("exercise-police",)), drill, unit="RE07")


def test_type_and_priority_filters():
    assert matches(Filter(alert_types=("panic", "fall"), priorities=("P1",)), DOC)
    assert not matches(Filter(alert_types=("tamper",)), DOC)
    assert not matches(Filter(priorities=("P3", "P4")), DOC)


def test_place_filter_by_a_unit_the_escalation_called():
    doc = {"type": "approach", "priority": "P1", "region": {"police_unit": "RE07"},
           "recipients": [{"kind": "vt_desk", "code": "VT4607"}]}
    only_re99 = Filter(police_units=["RE99"])
    assert not matches(only_re99, doc, "RE07")
    assert matches(only_re99, doc, "RE07", called=["RE99"])
    assert police_units(doc, "RE07", ["RE99", "RE07"]) == ["RE07", "RE99"]


def test_an_alert_the_desk_has_alone_goes_to_no_police_units_webhook_yet():
    """A desk-only approach in RE07's area: no routed unit while the police were not told (as
    RE07's token cannot read it); a region filter still takes it."""
    desk_only = {"type": "approach", "priority": "P2", "exercise": False,
                 "region": {"police_unit": "RE07", "vr_code": "VR17"},
                 "recipients": [{"kind": "vt_desk", "code": "VT4607"}]}
    assert not matches(Filter(police_units=("RE07",)), desk_only, unit=None)
    assert matches(Filter(police_units=("RE07",)), desk_only, unit="RE07")  # told
    assert matches(Filter(vr_codes=("VR17",)), desk_only, unit=None)
