"""The engine on real geometry (RD metres around Rotterdam): segment test, holes, exceptions,
time windows, validity, contact bans with stale partners, ordering, reload and state."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
from shapely.geometry import MultiPolygon, Polygon

from geofences import (
    ContactBan,
    Engine,
    ExclusionZone,
    Exemption,
    GeofenceConfig,
    ProtectedPlace,
    TimeWindow,
)
from tests.geofences.places import T0, latlon, lonlat, square

CFG = GeofenceConfig()


def zone(**kw) -> ExclusionZone:
    base = {
        "id": "z",
        "case_id": "c",
        "subject_device_ids": ("off",),
        "area": Polygon(square(0, 0, 500)),
    }
    base.update(kw)
    return ExclusionZone(**base)


def kinds(events):
    return [e.kind for e in events]


def test_fix_deep_inside_breaches_and_leaving_clears(fix):
    engine = Engine([zone()], CFG)
    assert kinds(fix(engine, "off", 0, 0)) == ["zone_breach"]
    events = fix(engine, "off", 60, 2000)
    assert kinds(events) == ["zone_breach_cleared"]
    assert abs(events[0].distance_m - 1500) < 0.5


def test_sparse_fixes_jumping_across_the_zone(fix):
    engine = Engine([zone()], CFG)
    assert fix(engine, "off", 0, -2000) == []
    events = fix(engine, "off", 120, 2000)  # straight line through the square
    assert kinds(events) == ["zone_breach", "zone_breach_cleared"]
    assert events[0].basis == "segment" and events[0].confidence == "possible"
    # a jump that passes beside the zone raises nothing
    assert fix(engine, "off", 240, 2000, 2000) == []
    # nor does one after a gap longer than segment_max_gap_s
    assert fix(engine, "off", 240 + CFG.segment_max_gap_s + 1, -2000, 0) == []


def test_segment_clipping_a_corner_is_not_a_crossing(fix):
    engine = Engine([zone()], CFG)
    fix(engine, "off", 0, -600, 495)
    assert fix(engine, "off", 60, -495, 600) == []  # cuts the corner by ~3 m


VAGUE = CFG.max_possible_accuracy_m * 20  # a cell-tower fix: 5 km


def test_a_segment_to_a_fix_too_vague_starts_no_breach(fix):
    """A good fix 1 km west, then one of 5 km accuracy whose centre lies 1 km east: as a vague
    fix alone, it cannot start a possible breach; the state stays outside."""
    engine = Engine([zone(area=Polygon(square(0, 0, 200)))], CFG)
    assert fix(engine, "off", 0, -1000) == []
    assert fix(engine, "off", 60, 1000, acc=VAGUE) == []
    assert engine.state_of("off", "z").status == "outside"
    assert fix(engine, "off", 120, -1000) == []  # he never left the west: nothing at all


def test_a_segment_from_a_fix_too_vague_starts_no_breach(fix):
    engine = Engine([zone(area=Polygon(square(0, 0, 200)))], CFG)
    assert fix(engine, "off", 0, -1000, acc=VAGUE) == []
    assert fix(engine, "off", 60, 1000) == []


def test_a_vague_fix_between_two_good_ones_does_not_hide_their_crossing(fix):
    """A good fix west, a vague one far north, a good one east: the segment test runs from the
    last good fix, A -> C, and finds the crossing."""
    engine = Engine([zone(area=Polygon(square(0, 0, 200)))], CFG)
    assert fix(engine, "off", 0, -1000) == []
    assert fix(engine, "off", 60, 0, 3000, acc=VAGUE) == []
    events = fix(engine, "off", 120, 1000)
    assert kinds(events) == ["zone_breach", "zone_breach_cleared"]
    assert events[0].basis == "segment" and events[0].at == T0 + 120


def test_an_adopted_vague_fix_starts_no_segment(fix):
    """The last fix taken over from the store is too vague: no segment starts from it, nor from
    an older good fix of this engine (fixes evaluated elsewhere came between)."""
    engine = Engine([zone(area=Polygon(square(0, 0, 200)))], CFG)
    fix(engine, "off", 0, -1000, 3000)
    lat, lon = latlon(-1000, 10)
    engine.adopt({"off": {"tst": T0 + 60, "lat": lat, "lon": lon, "acc": VAGUE}}, {})
    assert fix(engine, "off", 120, 1000) == []



def test_a_thin_part_of_a_multipolygon_is_crossing_tested_as_a_single_polygon(fix):
    """A street 20 m wide, too thin to shrink by `crossing_min_depth_m` on each side: as a
    polygon of its own it is tested whole, and so it is as a part of a MultiPolygon (whose
    other part lies far away)."""
    street = Polygon([lonlat(-10, -500), lonlat(10, -500), lonlat(10, 500), lonlat(-10, 500)])
    far = Polygon(square(5000, 5000, 500))
    engine = Engine([zone(id="single", area=street),
                     zone(id="multi", area=MultiPolygon([far, street]))], CFG)
    assert fix(engine, "off", 0, -200) == []
    events = fix(engine, "off", 60, 200)
    crossed = sorted(e.measure_id for e in events if e.kind == "zone_breach")
    assert crossed == ["multi", "single"] and {e.basis for e in events} >= {"segment"}

def test_hole_is_outside(fix):
    hole = Polygon(square(0, 0, 500), [square(0, 0, 200)[::-1]])
    engine = Engine([zone(area=hole)], CFG)
    assert fix(engine, "off", 0, 0) == [] and fix(engine, "off", 10, 0) == []
    assert kinds(fix(engine, "off", 20, 350) + fix(engine, "off", 30, 350)) == [
        "zone_breach"
    ]


def test_exception_corridor_and_its_period(fix):
    corridor = Exemption(
        geometry=Polygon(square(300, 0, 60)), valid_from=T0 + 100, reason="own address"
    )
    engine = Engine([zone(exceptions=(corridor,))], CFG)
    # before the exception is valid, the corridor is part of the zone
    assert kinds(fix(engine, "off", 0, 300) + fix(engine, "off", 10, 300)) == [
        "zone_breach"
    ]
    events = fix(engine, "off", 100, 300)
    assert kinds(events) == ["zone_breach_cleared"] and events[0].basis == "exception"
    assert fix(engine, "off", 110, 300) == []


def test_time_windows_in_local_time(fix):
    # T0 is Thursday 11:00 in Amsterdam; the zone applies Mon-Fri 08:00-12:00.
    engine = Engine(
        [zone(time_windows=(TimeWindow.parse("Mon-Fri 08:00-12:00"),))], CFG
    )
    assert kinds(fix(engine, "off", 0, 0)) == ["zone_breach"]
    events = fix(engine, "off", 3600, 0)  # 12:00: window closed
    assert kinds(events) == ["zone_breach_cleared"] and events[0].basis == "inactive"
    assert fix(engine, "off", 3700, 0) == []
    assert kinds(fix(engine, "off", 3600 * 21, 0)) == ["zone_breach"]  # Friday 08:00


def test_validity_period(fix):
    engine = Engine([zone(valid_from=T0 + 100, valid_until=T0 + 200)], CFG)
    assert fix(engine, "off", 0, 0) == []
    assert kinds(fix(engine, "off", 100, 0)) == ["zone_breach"]
    assert kinds(fix(engine, "off", 200, 0)) == ["zone_breach_cleared"]


def test_circle_and_protected_place_with_pre_alert_ring(fix):
    place = ProtectedPlace(
        id="p",
        case_id="c",
        subject_device_ids=("off",),
        centre=lonlat(0, 0),
        radius_m=200,
        pre_alert_m=300,
    )
    engine = Engine([place], CFG)
    assert fix(engine, "off", 0, 400) == []
    events = fix(engine, "off", 10, 380)
    assert kinds(events) == ["approach"] and abs(events[0].distance_m - 180) < 0.1
    assert kinds(fix(engine, "off", 20, 0)) == ["zone_breach"]
    assert kinds(fix(engine, "off", 30, 3000)) == [
        "zone_breach_cleared",
        "approach_cleared",
    ]


def _weave(engine, fix, start_s: float = 0, fixes: int = 20, gap_s: float = 30):
    """An offender weaving across the eastern border of `zone()`: a fix every `gap_s`, 40 m
    inside and 40 m outside in turn (accuracy 10 m: each clearly on its side)."""
    raised = []
    for i in range(fixes):
        t = start_s + gap_s * i
        raised += fix(engine, "off", t, 460 if i % 2 == 0 else 540, 10 * i, acc=10)
    return raised


def test_an_offender_weaving_across_the_border_of_a_zone_with_a_ring_is_alerted(fix):
    """In the ring all along: `approach`; then, his third confirmed fix in the zone within ten
    minutes, one breach for all his dips, not one per dip."""
    engine = Engine([zone(pre_alert_m=250)], CFG)
    raised = _weave(engine, fix)
    assert kinds(raised) == ["approach", "zone_breach"], kinds(raised)
    assert raised[1].at == T0 + 4 * 30  # the fixes at 0, 60 and 120 s were in the zone
    assert engine.state_of("off", "z").status == "inside"


def test_an_offender_weaving_across_the_border_of_a_zone_without_a_ring_is_alerted(fix):
    """Before, each fix clearly outside reset the count of fixes in a row, and nothing was
    raised at all: no ring to count towards, no fix deep inside, no segment across."""
    engine = Engine([zone()], CFG)
    raised = _weave(engine, fix)
    assert kinds(raised) == ["zone_breach"]
    assert raised[0].at == T0 + 4 * 30 and raised[0].confidence == "confirmed"
    assert raised[0].basis == "repeated"
    # He leaves for good: cleared once ten minutes passed since his last fix in the zone.
    last_in = 18 * 30
    assert fix(engine, "off", 600, 3_000) == []
    assert kinds(fix(engine, "off", last_in + 600, 3_000)) == ["zone_breach_cleared"]


def test_repeated_entries_count_within_their_window_only(fix):
    engine = Engine([zone()], CFG)
    assert _weave(engine, fix, fixes=6, gap_s=301) == []  # a dip every 10 min 2 s
    off = Engine([zone()], replace(CFG, repeat_confirmations=None))
    assert _weave(off, fix) == []  # the rule switched off: as before
    assert off.state_of("off", "z").idle


def test_a_breach_entered_in_a_row_clears_as_before(fix):
    engine = Engine([zone()], CFG)
    assert fix(engine, "off", 0, 460, acc=10) == []
    [breach] = fix(engine, "off", 30, 460, acc=10)
    assert breach.kind == "zone_breach" and breach.basis == "fix"
    assert kinds(fix(engine, "off", 60, 540, acc=10)) == ["zone_breach_cleared"]


def test_out_of_order_and_future_fixes_change_nothing(fix):
    engine = Engine([zone()], CFG)
    fix(engine, "off", 100, 3000)
    assert fix(engine, "off", 50, 0) == []  # older than the last accepted fix
    lat, lon = latlon(0, 0)
    assert (
        engine.on_fix("off", T0 + 10_000, lat, lon, 5, now=T0 + 200) == []
    )  # from the future
    assert engine.state_of("off", "z").status == "outside"
    assert kinds(fix(engine, "off", 150, 0)) == ["zone_breach"]


def test_one_fix_dated_ahead_does_not_hide_the_real_fixes_after_it(fix):
    """A clock glitch dates one fix 290 s ahead (within `max_future_s`): it is taken as dated
    `max_ahead_s` ahead, so the real fixes after it are newer and the zone visit in them is
    raised and cleared. Before, every fix until its time was older than the last: none."""
    engine = Engine([zone()], CFG)
    assert fix(engine, "off", 0, -3000) == []
    lat, lon = latlon(-2900)
    assert engine.on_fix("off", T0 + 30 + 290, lat, lon, 5, now=T0 + 30) == []
    assert engine.last_time("off") == T0 + 30 + CFG.max_ahead_s
    raised = []
    for t, dx in ((60, -1400), (90, -700), (120, 0), (150, 100), (180, 0), (210, -700),
                  (240, -1400), (300, -3000)):
        raised += fix(engine, "off", t, dx)
    assert [(e.kind, e.at - T0) for e in raised] == [("zone_breach", 120),
                                                     ("zone_breach_cleared", 210)]


def test_fix_only_meets_the_devices_own_measures(fix):
    engine = Engine([zone(), zone(id="z2", subject_device_ids=("other",))], CFG)
    events = fix(engine, "off", 0, 0)
    assert [e.measure_id for e in events] == ["z"]
    assert fix(engine, "stranger", 0, 0) == []


def ban(**kw) -> ContactBan:
    base = {
        "id": "b",
        "case_id": "c",
        "subject_device_ids": ("off",),
        "protected_device_ids": ("vic",),
        "radius_m": 500,
        "pre_alert_m": 500,
    }
    base.update(kw)
    return ContactBan(**base)


def test_contact_ban_proximity_from_either_side(fix):
    engine = Engine([ban()], CFG)
    fix(engine, "vic", 0, 0)
    events = fix(engine, "off", 10, 300)
    assert kinds(events) == ["proximity"]
    assert events[0].device_id == "off" and events[0].other_device_id == "vic"
    assert abs(events[0].distance_m - 300) < 0.1 and abs(events[0].inside_m - 200) < 0.1
    # the victim moving away clears it
    events = fix(engine, "vic", 20, 3000)
    assert kinds(events) == ["proximity_cleared"] and events[0].device_id == "off"


def test_contact_ban_never_uses_a_stale_partner_fix(fix):
    engine = Engine([ban()], CFG)
    assert kinds(fix(engine, "vic", 0, 0)) == [
        "partner_position_unknown"
    ]  # offender never seen
    assert (
        fix(engine, "off", 1, 5000) == []
    )  # fresh pair, far apart: known again, outside
    stale = CFG.partner_max_age_s + 1
    events = fix(engine, "off", stale, 100)  # right next to where the victim was
    assert (
        kinds(events) == ["partner_position_unknown"] and events[0].distance_m is None
    )
    assert engine.state_of("off", "b").status == "unknown"
    assert fix(engine, "off", stale + 10, 100) == []  # raised once
    assert kinds(fix(engine, "vic", stale + 20, 50)) == ["proximity"]


def test_a_victim_clock_behind_by_more_than_partner_max_age_raises_one_unknown():
    """Her clock 150 s behind, both reporting every 10 s: each of his fixes finds no fix of
    hers within `partner_max_age_s`, each of hers finds his kept fix of her time. The pairs
    come and go on every fix; that is one loss of her position, not one a flip (it was 176
    console notes in 30 minutes, each a transaction on the fix lane)."""
    engine = Engine([ban()], CFG)
    raised = []
    for t in range(0, 1800, 10):
        for device, tst, dx in (("off", t, 3000), ("vic", t - 150, 0)):
            lat, lon = latlon(dx)
            raised += engine.on_fix(device, T0 + tst, lat, lon, 10, now=T0 + t)
    assert kinds(raised) == ["partner_position_unknown"]


def _skewed_approach(engine, skewed: str, skew: float, behind: dict[str, float] | None):
    """The victim reports every 10 s, 5 km away until t=250, then at the origin; the offender
    5 s after her, 3 km away until t=300, then 100 m from the origin. The clock of `skewed`
    runs `skew` seconds behind. The events of each of the offender's fixes by its real time
    (t + 5)."""
    raised: dict[float, list] = {}
    for t in range(0, 400, 10):
        for device, real, dx in (("vic", t, 5000 if t < 250 else 0),
                                 ("off", t + 5, 3000 if t < 300 else 100)):
            lat, lon = latlon(dx)
            tst = real - skew if device == skewed else real
            found = engine.on_fix(device, T0 + tst, lat, lon, 10, now=T0 + real, behind=behind)
            if device == "off":
                raised[real] = found
    return raised


@pytest.mark.parametrize("skewed", ["vic", "off"])
@pytest.mark.parametrize("skew", [150.0, CFG.partner_history_s + 3_600])
def test_a_skewed_clock_corrected_pairs_on_common_time_and_raises_proximity_in_time(
        skewed: str, skew: float):
    """One device's clock runs 150 s behind, or two hours (beyond `partner_history_s`): with
    its correction the pairs are made on the common time base, so the offender's first fix
    100 m from her raises the proximity, as it does with right clocks. Without it, none."""
    right = _skewed_approach(Engine([ban()], CFG), skewed, 0.0, None)
    assert kinds(right[305]) == ["proximity"]
    raised = _skewed_approach(Engine([ban()], CFG), skewed, skew, {skewed: skew})
    [proximity] = raised[305]
    assert proximity.kind == "proximity" and abs(proximity.distance_m - 100) < 0.5
    # The later of the pair's own device times: hers (300) when his clock is the one behind.
    assert proximity.at == T0 + (305 if skewed == "vic" else 300)
    assert not any(kinds(found) for real, found in raised.items() if real != 305)
    uncorrected = _skewed_approach(Engine([ban()], CFG), skewed, skew, None)
    assert "proximity" not in [k for found in uncorrected.values() for k in kinds(found)]


def test_the_events_time_does_not_depend_on_the_correction():
    """A batch handled again after a newer clock reading changed his correction by a second
    and a half raises the same proximity at the same time (the later of the pair's own
    times, not one on the common time base): its message id is the same."""
    first = _skewed_approach(Engine([ban()], CFG), "off", 150.0, {"off": 150.2})[305]
    again = _skewed_approach(Engine([ban()], CFG), "off", 150.0, {"off": 151.7})[305]
    assert first == again and kinds(first) == ["proximity"] and first[0].at == T0 + 300


def test_a_correction_too_large_dates_no_fix_after_its_arrival():
    """Her clock is right, but a delayed live message was read as 150 s behind. Her fix counts
    as taken at most `max_ahead_s` after the time it is evaluated at, not 150 s after its own
    time: his fix 100 m from her 20 s later pairs with it and raises the proximity at once
    (dated 150 s ahead, it was too new for his fixes of the next 30 s)."""
    engine = Engine([ban()], CFG)
    behind = {"vic": 150.0}
    assert kinds(engine.on_fix("off", T0 - 5, *latlon(3000), 10, now=T0 - 5)) == [
        "partner_position_unknown"]
    assert engine.on_fix("vic", T0, *latlon(0), 10, now=T0, behind=behind) == []
    events = engine.on_fix("off", T0 + 20, *latlon(100), 10, now=T0 + 20, behind=behind)
    assert kinds(events) == ["proximity"] and events[0].at == T0 + 20


@pytest.mark.parametrize("value", [-1.0, math.nan, math.inf])
def test_a_correction_negative_or_not_finite_is_refused_and_changes_nothing(value: float):
    engine = Engine([ban()], CFG)
    with pytest.raises(ValueError, match="clock correction"):
        engine.on_fix("vic", T0, *latlon(0), 10, now=T0, behind={"vic": value})
    with pytest.raises(ValueError, match="clock correction"):
        engine.on_fixes([("vic", T0, *latlon(0), 10.0)], now=T0, behind={"off": value})
    assert engine.last_time("vic") is None and engine.take_changed() == {}


def test_one_stray_offender_fix_is_not_confirmed_by_the_victims_next_fixes(fix):
    """A multipath jump of the offender 100 m from the victim, between fixes 3 km away: her
    phone's next fixes are each paired with that one fix of his, which is still one fix near
    her, not the two an entry needs (it raised a P1 proximity)."""
    engine = Engine([ban(radius_m=200, pre_alert_m=0)], CFG)
    for t in range(0, 60, 10):
        fix(engine, "vic", t, 0)
    assert fix(engine, "off", 0, 3000) == []
    assert fix(engine, "off", 60, 100) == []  # the jump
    for t in (65, 75, 85, 95):
        assert fix(engine, "vic", t, 0) == []
    assert fix(engine, "off", 120, 3000) == []
    state = engine.state_of("off", "b")
    assert state.status == "outside" and state.pending is None and state.visits == 1
    # Two fixes of his near her are an entry, whichever device reports last.
    assert fix(engine, "off", 180, 100) == []
    assert fix(engine, "vic", 200, 0) == []
    assert kinds(fix(engine, "off", 240, 100)) == ["proximity"]


def test_contact_ban_nearest_of_several_victim_devices(fix):
    engine = Engine([ban(protected_device_ids=("vic", "vic2"))], CFG)
    fix(engine, "vic", 0, 0)
    fix(engine, "vic2", 1, 5000)
    events = fix(engine, "off", 2, 4800)
    assert kinds(events) == ["proximity"] and events[0].other_device_id == "vic2"


def _near_then_victim_silent(engine, fix, t):
    """Victim at the origin at `t`, the offender 100 m from her (a proximity), then only the
    offender reporting: the victim's position becomes unknown, holding `inside`."""
    fix(engine, "vic", t, 0)
    assert kinds(fix(engine, "off", t + 10, 100)) == ["proximity"]
    late = t + 10 + CFG.partner_max_age_s + 60
    assert kinds(fix(engine, "off", late, 100)) == ["partner_position_unknown"]
    assert engine.state_of("off", "b").held == "inside"
    return late


def test_a_ban_held_unknown_is_reset_when_its_time_window_closes(fix):
    """T0 is 11:00; the ban applies 08:00-12:00. The victim's phone goes silent near the end
    of the window: the window closing ends what was held, and next morning the offender near
    her raises a new proximity."""
    engine = Engine([ban(time_windows=(TimeWindow.parse("Mon-Sun 08:00-12:00"),))], CFG)
    late = _near_then_victim_silent(engine, fix, 3000)
    assert late < 3600
    events = fix(engine, "off", 3700, 100)  # 12:01: the window closed
    assert kinds(events) == ["proximity_cleared"] and events[0].basis == "inactive"
    assert engine.state_of("off", "b").status == "outside"
    morning = 3600 * 21 + 600  # Friday 08:10
    fix(engine, "vic", morning, 0)
    assert kinds(fix(engine, "off", morning + 10, 50)) == ["proximity"]


def test_a_ban_held_unknown_is_reset_when_its_validity_ends(fix):
    engine = Engine([ban(valid_until=T0 + 600)], CFG)
    _near_then_victim_silent(engine, fix, 0)
    events = fix(engine, "off", 600, 100)
    assert kinds(events) == ["proximity_cleared"] and events[0].basis == "inactive"
    assert engine.state_of("off", "b").status == "outside"


def test_a_ban_renewed_by_a_change_does_not_keep_a_held_unknown(fix):
    """The ban lapsed with the victim's position unknown and no fix came until it was renewed
    (same id, new validity): the renewed ban does not hold the old `inside`."""
    engine = Engine([ban(valid_until=T0 + 600)], CFG)
    _near_then_victim_silent(engine, fix, 0)
    engine.take_changed()
    engine.reload([ban(valid_until=T0 + 86_400)])
    assert engine.state_of("off", "b").status == "outside"
    assert engine.take_changed() == {"off": {"b": None}}
    fix(engine, "vic", 3600, 0)
    assert kinds(fix(engine, "off", 3610, 50)) == ["proximity"]


def test_a_reload_without_a_change_keeps_a_held_unknown(fix):
    engine = Engine([ban()], CFG)
    _near_then_victim_silent(engine, fix, 0)
    engine.reload([ban(), zone()])
    assert engine.state_of("off", "b").status == "unknown"


def test_a_held_unknown_ends_after_partner_unknown_hold_s(fix):
    """The victim unknown for longer than `partner_unknown_hold_s`: the held proximity is
    cleared (basis partner) and, with the victim back, the offender near her is raised anew."""
    engine = Engine([ban()], CFG)
    late = _near_then_victim_silent(engine, fix, 0)
    assert fix(engine, "off", late + 60, 100) == []
    events = fix(engine, "off", late + CFG.partner_unknown_hold_s, 100)
    assert kinds(events) == ["proximity_cleared"] and events[0].basis == "partner"
    assert engine.state_of("off", "b").status == "unknown"
    assert engine.state_of("off", "b").held is None
    back = late + CFG.partner_unknown_hold_s + 60
    assert fix(engine, "off", back + 10, 100) == []
    fix(engine, "vic", back + 20, 0)
    assert engine.state_of("off", "b").status == "inside"
    assert engine.take_changed()["off"]["b"]["status"] == "inside"


def test_a_held_unknown_ends_with_no_fix_in_between(fix):
    """Nothing reported for hours (the ban evaluated at no time in between): the first fresh
    pair after `partner_unknown_hold_s` does not resume the old `inside` but raises anew."""
    engine = Engine([ban()], CFG)
    late = _near_then_victim_silent(engine, fix, 0)
    back = late + CFG.partner_unknown_hold_s + 3600
    events = fix(engine, "vic", back, 0)  # the offender's last fix is hours old
    assert kinds(events) == ["proximity_cleared"] and events[0].basis == "partner"
    assert kinds(fix(engine, "off", back + 10, 50)) == ["proximity"]


def _buffered(points, acc=5.0):
    """Fixes of the offender as a device sends them after a coverage gap: (t, dx) each."""
    return [("off", T0 + t, *latlon(dx, 0), acc) for t, dx in points]


def test_an_offenders_buffered_batch_is_checked_against_the_victims_fixes_of_then(fix):
    """The victim reports live every minute; the offender, out of coverage, sends his fixes of
    the last 20 minutes at once: he was 50 m from her from t=300 to t=700. Each of his fixes
    meets her fix of that time: a late proximity, at the time he was there, then cleared."""
    engine = Engine([ban(pre_alert_m=0)], CFG)
    for t in range(0, 1201, 60):
        fix(engine, "vic", t, 0)
    batch = _buffered([(t, 50 if 300 <= t <= 700 else 8000) for t in range(0, 1201, 30)])
    events = engine.on_fixes(batch, now=T0 + 1210)
    assert [(e.kind, e.at - T0) for e in events] == [
        ("proximity", 300), ("proximity_cleared", 720)]
    assert events[0].other_device_id == "vic" and abs(events[0].distance_m - 50) < 0.5



def test_a_victims_buffered_batch_is_checked_against_the_offenders_fixes_of_then(fix):
    engine = Engine([ban(pre_alert_m=0)], CFG)
    for t in range(0, 1201, 60):
        fix(engine, "off", t, 50 if 300 <= t <= 700 else 8000)
    batch = [("vic", T0 + t, *latlon(0, 0), 5.0) for t in range(0, 1201, 30)]
    events = engine.on_fixes(batch, now=T0 + 1210)
    assert [(e.kind, e.device_id) for e in events] == [
        ("proximity", "off"), ("proximity_cleared", "off")]
    assert 300 <= events[0].at - T0 <= 330 and 700 <= events[1].at - T0 <= 780

def test_a_buffered_batch_beyond_the_kept_history_finds_no_partner(fix):
    """The engine keeps the victim's fixes of the last `partner_history_s` only: an offender's
    fix older than that meets no fix of hers (documented bound)."""
    cfg = GeofenceConfig(partner_history_s=600)
    engine = Engine([ban(pre_alert_m=0)], cfg)
    for t in range(0, 1201, 60):
        fix(engine, "vic", t, 0)
    old = engine.on_fixes(_buffered([(300, 50)]), now=T0 + 1210)
    assert old == []
    assert kinds(engine.on_fixes(_buffered([(900, 50)]), now=T0 + 1210)) == ["proximity"]


def test_a_victim_reporting_often_is_kept_thinned_and_still_meets_every_buffered_fix(fix):
    """A victim in pursuit mode reports every 5 s: the engine keeps about one fix a minute
    (`partner_max_age_s / 2`), and each of the offender's buffered fixes still meets one of
    hers of its time."""
    engine = Engine([ban(pre_alert_m=0)], CFG)
    for t in range(0, 1201, 5):
        fix(engine, "vic", t, 0)
    kept = engine._recent["vic"]
    assert len(kept) <= 25  # about one a minute over 20 minutes, not 241
    times = [f[0] - T0 for f in kept]
    assert max(b - a for a, b in zip(times, times[1:])) <= CFG.partner_max_age_s / 2 + 5
    batch = _buffered([(t, 50 if 300 <= t <= 700 else 8000) for t in range(0, 1201, 30)])
    events = engine.on_fixes(batch, now=T0 + 1210)
    assert [(e.kind, e.at - T0) for e in events] == [
        ("proximity", 300), ("proximity_cleared", 720)]


def test_an_adopted_victim_fix_is_kept_for_a_buffered_batch(fix):
    """The victim's fixes evaluated by another worker reach this engine as adopted last fixes:
    each is kept too."""
    engine = Engine([ban(pre_alert_m=0)], CFG)
    lat, lon = latlon(0, 0)
    for t in range(0, 601, 60):
        engine.adopt({"vic": {"tst": T0 + t, "lat": lat, "lon": lon, "acc": 5.0}}, {})
    events = engine.on_fixes(_buffered([(0, 8000), (200, 40), (230, 40)]), now=T0 + 610)
    assert [(e.kind, e.at - T0) for e in events] == [("proximity", 200)]


def test_batch_equals_one_by_one(fix):
    measures = [zone(), ban()]
    path = [
        ("vic", 0, 0, 0),
        ("off", 5, -2000, 0),
        ("off", 65, 2000, 0),
        ("off", 70, 0, 0),
        ("off", 80, 0, 10),
        ("off", 90, 300, 0),
    ]
    one = Engine(measures, CFG)
    expected = [e for d, t, dx, dy in path for e in fix(one, d, t, dx, dy)]
    batch = Engine(measures, CFG)
    fixes = [(d, T0 + t, *latlon(dx, dy), 5.0) for d, t, dx, dy in path]
    assert batch.on_fixes(fixes, now=T0 + 100) == expected and expected


def test_snapshot_restore_and_forget(fix):
    engine = Engine([zone()], CFG)
    fix(engine, "off", 0, 0)
    snapshot = engine.snapshot_state()
    restored = Engine([zone()], CFG)
    restored.restore_state(snapshot)
    assert restored.state_of("off", "z").status == "inside"
    assert kinds(fix(restored, "off", 60, 3000)) == ["zone_breach_cleared"]
    engine.forget_device("off")
    assert (
        engine.snapshot_state()["devices"] == {}
        and engine.state_of("off", "z").status == "outside"
    )


def test_take_changed_reports_each_device_whose_states_changed_once(fix):
    engine = Engine([zone(), zone(id="far", area=Polygon(square(9000, 9000, 500)))], CFG)
    fix(engine, "off", 0, 0)  # breach of "z"
    changed = engine.take_changed()
    assert list(changed) == ["off"] and changed["off"]["z"]["status"] == "inside"
    assert engine.take_changed() == {}  # nothing new since
    fix(engine, "off", 60, 3000)  # cleared: idle everywhere again
    assert engine.take_changed() == {"off": {"z": None}}
    fix(engine, "off", 120, 3100)  # still outside, nothing pending: no change to keep
    assert engine.take_changed() == {}


def test_take_changed_gives_only_the_measures_that_changed(fix):
    """The victim's fix changes the contact ban's state, kept under the offender, and nothing
    else of his: only that measure is given, so a store merging it keeps the state of his zone
    that another engine, evaluating his own fix meanwhile, wrote."""
    engine = Engine([zone(), ban()], CFG)
    fix(engine, "off", 0, 0)  # breach of "z"
    assert set(engine.take_changed()["off"]) == {"z", "b"}
    fix(engine, "vic", 30, 50)  # near him: the ban's state changes, the zone's does not
    assert engine.take_changed() == {"off": {"b": engine.states_of("off")["b"]}}
    engine.forget_device("off")
    assert engine.take_changed() == {"off": {"z": None, "b": None}}


def test_a_restored_engine_knows_its_devices_and_reports_dropped_states(fix):
    engine = Engine([zone(), zone(id="z2")], CFG)
    fix(engine, "off", 0, 0)
    snapshot = engine.snapshot_state()
    snapshot["devices"]["off"]["acc"] = None  # a stored last fix may lack its accuracy
    restored = Engine([zone()], CFG)  # "z2" is gone
    restored.restore_state(snapshot)
    assert restored.take_changed() == {"off": {"z2": None}}  # to be removed from the store
    assert fix(restored, "off", 0, 10) == []  # not newer than the restored last fix
    assert fix(restored, "off", 30, 10) == []  # still inside: no second breach
    assert kinds(fix(restored, "off", 90, 3000)) == ["zone_breach_cleared"]


def test_an_unreadable_stored_state_is_dropped_and_the_others_kept(fix):
    engine = Engine([zone(), zone(id="z2")], CFG)
    fix(engine, "off", 0, 0)
    snapshot = engine.snapshot_state()
    snapshot["states"]["off"]["z2"] = {"status": "inside", "last_tst": "yesterday"}
    restored = Engine([zone(), zone(id="z2")], CFG)
    restored.restore_state(snapshot)
    assert restored.state_of("off", "z").status == "inside"
    assert restored.state_of("off", "z2").status == "outside"
    assert restored.take_changed() == {"off": {"z2": None}}  # to be stored without the bad one


def test_reload_dropping_a_state_reports_the_device_changed(fix):
    engine = Engine([zone()], CFG)
    fix(engine, "off", 0, 0)
    engine.take_changed()
    engine.reload([])
    assert engine.take_changed() == {"off": {"z": None}}


def test_reload_keeps_states_of_remaining_measures(fix):
    engine = Engine([zone(), zone(id="z2")], CFG)
    fix(engine, "off", 0, 0)
    engine.reload([zone(), ban()])
    assert engine.state_of("off", "z").status == "inside"
    assert engine.state_of("off", "z2").status == "outside"
    assert len(engine.index) == 2


def test_reload_compiles_again_only_the_measures_that_changed(fix):
    """Compiling is nearly all of an index's cost: a reload after one change keeps the others'
    compiled form, equal measures read again included, and the changed one takes effect."""
    engine = Engine([zone(), zone(id="z2", area=Polygon(square(5_000, 0, 500)))], CFG)
    before = dict(engine.index.measures)
    moved = zone(id="z2", area=Polygon(square(0, 0, 500)))  # now where the offender goes
    engine.reload([zone(), moved])  # `zone()` is a new object, equal to the one loaded
    assert engine.index.measures["z"] is before["z"]
    assert engine.index.measures["z2"] is not before["z2"]
    assert engine.index.measures["z2"].measure is moved
    assert sorted(e.measure_id for e in fix(engine, "off", 0, 0)) == ["z", "z2"]


def test_a_measure_reloaded_with_another_radius_is_compiled_again(fix):
    place = ProtectedPlace(id="p", case_id="c", subject_device_ids=("off",),
                           centre=lonlat(0, 0), radius_m=200)
    engine = Engine([place], CFG)
    assert fix(engine, "off", 0, 400, 0) == []
    engine.reload([ProtectedPlace(id="p", case_id="c", subject_device_ids=("off",),
                                  centre=lonlat(0, 0), radius_m=600)])
    assert kinds(fix(engine, "off", 60, 400, 0)) == ["zone_breach"]


def test_adopted_devices_go_on_from_another_engines_state(fix):
    """Two engines over the same measures (two workers): one saw the offender enter and leave;
    the other, which saw only the entry, takes over his last fix and (idle) states."""
    a, b = Engine([zone()], CFG), Engine([zone()], CFG)
    fix(a, "off", 0, 0)
    fix(b, "off", 0, 0)
    fix(a, "off", 60, 3000)  # left: cleared at A only
    snapshot = a.snapshot_state()
    assert b.last_time("off") == T0 and a.last_time("off") == T0 + 60
    b.take_changed()  # B's own entry, stored as it was found
    b.adopt({"off": snapshot["devices"]["off"]}, snapshot["states"])
    assert b.last_time("off") == T0 + 60 and b.state_of("off", "z").status == "outside"
    assert b.take_changed() == {}  # what it took over is what the store holds
    assert kinds(fix(b, "off", 120, 0)) == ["zone_breach"]  # a new entry


def test_a_devices_states_are_given_as_a_store_keeps_them(fix):
    engine = Engine([zone(), zone(id="z2")], CFG)
    assert engine.states_of("off") == {}
    fix(engine, "off", 0, 0)
    assert engine.states_of("off") == engine.take_changed()["off"]
    assert set(engine.states_of("off")) == {"z", "z2"}


def test_adopting_no_fix_forgets_the_device_and_drops_unknown_measures(fix):
    engine = Engine([zone()], CFG)
    fix(engine, "off", 0, 0)
    engine.take_changed()
    engine.adopt({"off": None}, {})
    assert engine.last_time("off") is None and engine.state_of("off", "z").status == "outside"
    engine.adopt({"off": {"tst": T0, "lat": latlon(0, 0)[0], "lon": latlon(0, 0)[1],
                          "acc": None}},
                 {"off": {"gone": {"status": "inside", "last_tst": T0}}})
    assert engine.take_changed() == {"off": {"gone": None}}  # stored without the unknown one
    assert engine.last_time("off") == T0
