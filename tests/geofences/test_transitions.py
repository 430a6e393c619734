"""Every rule of the pure state machine, without geometry: observations are built directly."""

from __future__ import annotations

from dataclasses import replace

import pytest

from geofences.config import GeofenceConfig
from geofences.transitions import (
    APPROACHING,
    IDLE,
    INSIDE,
    OUTSIDE,
    UNKNOWN,
    Observation,
    ZoneState,
    step,
)

CFG = GeofenceConfig(
    enter_confirmations=2,
    exit_margin_m=25,
    immediate_depth_m=100,
    max_possible_accuracy_m=250,
)


def obs(t: float, signed: float, acc: float = 5.0, **kw) -> Observation:
    """signed > 0: metres inside the zone; < 0: metres outside."""
    base = {
        "tst": t,
        "measure_id": "m1",
        "case_id": "c1",
        "device_id": "off",
        "accuracy_m": acc,
        "inside": signed > 0,
        "inside_m": max(signed, 0.0),
        "outside_m": max(-signed, 0.0),
    }
    base.update(kw)
    return Observation(**base)


def run(seq, state=IDLE, cfg=CFG):
    events = []
    for o in seq:
        state, ev = step(state, o, cfg)
        events.extend(ev)
    return state, events


def kinds(events):
    return [e.kind for e in events]


def test_debounce_needs_two_fixes_inside():
    state, events = step(IDLE, obs(0, 20), CFG)
    assert state.status == OUTSIDE and state.pending == INSIDE and events == []
    state, events = step(state, obs(10, 20), CFG)
    assert state.status == INSIDE and kinds(events) == ["zone_breach"]
    assert events[0].confidence == "confirmed" and events[0].inside_m == 20


def test_debounce_resets_on_a_fix_outside():
    state, events = run([obs(0, 20), obs(10, -200), obs(20, 20)])
    assert state.status == OUTSIDE and state.pending_count == 1 and events == []


def test_dwell_enters_after_enough_seconds():
    cfg = replace(CFG, enter_confirmations=5, enter_dwell_s=60)
    state, events = run([obs(0, 20), obs(30, 20)], cfg=cfg)
    assert state.status == OUTSIDE
    state, events = run([obs(61, 20)], state, cfg)
    assert state.status == INSIDE and kinds(events) == ["zone_breach"]


def test_deep_confirmed_fix_enters_at_once():
    state, events = step(IDLE, obs(0, 150, acc=10), CFG)
    assert state.status == INSIDE and kinds(events) == ["zone_breach"]


def test_jitter_at_the_border_does_not_flap():
    # Parked on the border: fixes alternate 15 m either side with 10 m accuracy.
    state, events = run([obs(i * 10, 15 if i % 2 else -15, acc=10) for i in range(60)])
    assert kinds(events) == ["zone_breach"] and state.status == INSIDE
    state, events = run([obs(1000, -100, acc=10), obs(1010, 15, acc=10)], state)
    assert kinds(events) == ["zone_breach_cleared"]
    # Parked 20 m outside with 30 m jitter: never clearly outside, never clearly in.
    state, events = run([obs(i * 10, -5 if i % 2 else -35, acc=4) for i in range(60)])
    assert events == [] and state.status == OUTSIDE
    # Just inside: fixes wander between 40 m inside and 15 m outside (within the exit margin).
    state, events = run([obs(i * 10, 40 if i % 2 else -15, acc=10) for i in range(60)])
    assert kinds(events) == ["zone_breach"] and state.status == INSIDE


def test_hysteresis_exit_needs_margin_beyond_accuracy():
    state, _ = run([obs(0, 150)])
    assert state.status == INSIDE
    state, events = step(state, obs(10, -20, acc=5), CFG)  # 20 - 5 < 25: hold
    assert state.status == INSIDE and events == []
    state, events = step(state, obs(20, -40, acc=20), CFG)  # 40 - 20 < 25: hold
    assert state.status == INSIDE and events == []
    state, events = step(state, obs(30, -40, acc=10), CFG)  # 40 - 10 >= 25: leave
    assert state.status == OUTSIDE and kinds(events) == ["zone_breach_cleared"]


def test_exit_confirmations():
    cfg = replace(CFG, exit_confirmations=2)
    state, _ = run([obs(0, 150)], cfg=cfg)
    state, events = run([obs(10, -100)], state, cfg)
    assert state.status == INSIDE and events == []
    state, events = run([obs(20, -100)], state, cfg)
    assert state.status == OUTSIDE and kinds(events) == ["zone_breach_cleared"]


def test_accuracy_straddle_is_possible_then_upgraded():
    state, events = run([obs(0, 10, acc=30), obs(10, -10, acc=30)])
    assert kinds(events) == ["zone_breach"] and events[0].confidence == "possible"
    state, events = step(state, obs(20, 50, acc=10), CFG)
    assert kinds(events) == ["zone_breach"] and events[0].confidence == "confirmed"
    assert state.confidence == "confirmed"


def test_too_vague_a_fix_changes_nothing():
    state, events = run(
        [obs(0, 10, acc=1000), obs(10, 10, acc=1000), obs(20, -50, acc=1000)]
    )
    assert state.status == OUTSIDE and events == []
    inside, _ = run([obs(0, 150)])
    state, events = run([obs(10, -50, acc=1000)], inside)
    assert state.status == INSIDE and events == []


def test_approach_ring_then_clear():
    seq = [obs(0, -100, ring_m=200), obs(10, -90, ring_m=200)]
    state, events = run(seq)
    assert state.status == APPROACHING and kinds(events) == ["approach"]
    assert events[0].confidence == "confirmed"
    state, events = step(
        state, obs(20, -210, ring_m=200), CFG
    )  # within ring + margin: hold
    assert state.status == APPROACHING and events == []
    state, events = step(state, obs(30, -300, ring_m=200), CFG)
    assert state.status == OUTSIDE and kinds(events) == ["approach_cleared"]


def test_leaving_zone_into_ring_and_out():
    state, _ = run(
        [obs(0, -100, ring_m=200), obs(10, -100, ring_m=200), obs(20, 150, ring_m=200)]
    )
    assert state.status == INSIDE and state.approach_announced
    state, events = step(state, obs(30, -100, ring_m=200), CFG)
    assert state.status == APPROACHING and kinds(events) == ["zone_breach_cleared"]
    state, events = step(state, obs(40, -400, ring_m=200), CFG)
    assert state.status == OUTSIDE and kinds(events) == ["approach_cleared"]


def test_out_of_order_observation_is_ignored():
    state, _ = run([obs(100, 150)])
    later, events = step(state, obs(50, -500), CFG)
    assert later is state and events == []


def test_segment_crossing_raises_possible_breach_then_clears():
    state, events = step(IDLE, obs(0, -300, crossed=True), CFG)
    assert kinds(events) == ["zone_breach", "zone_breach_cleared"]
    assert events[0].basis == "segment" and events[0].confidence == "possible"
    assert state.status == OUTSIDE


def test_inactive_measure_clears_open_breach():
    state, _ = run([obs(0, 150)])
    state, events = step(state, obs(10, 150, active=False), CFG)
    assert state.status == OUTSIDE and kinds(events) == ["zone_breach_cleared"]
    assert events[0].basis == "inactive"
    state, events = step(state, obs(20, 150, active=False), CFG)
    assert events == []


def test_exception_counts_as_outside():
    state, events = run([obs(0, 150, exempt=True), obs(10, 150, exempt=True)])
    assert state.status == OUTSIDE and events == []
    state, _ = run([obs(20, 150)], state)
    state, events = step(state, obs(30, 150, exempt=True), CFG)
    assert state.status == OUTSIDE and kinds(events) == ["zone_breach_cleared"]
    assert events[0].basis == "exception"


def test_partner_unknown_once_then_resumes_held_state():
    contact = {"contact": True, "other_device_id": "vic"}
    state, events = run([obs(0, 150, **contact)])
    assert kinds(events) == ["proximity"]
    state, events = step(state, obs(10, 0, partner_known=False, **contact), CFG)
    assert state.status == UNKNOWN and kinds(events) == ["partner_position_unknown"]
    assert events[0].distance_m is None
    state, events = step(state, obs(20, 0, partner_known=False, **contact), CFG)
    assert events == []
    state, events = step(
        state, obs(30, 150, **contact), CFG
    )  # still inside: no second alert
    assert state.status == INSIDE and events == []
    state, events = step(state, obs(40, -400, **contact), CFG)
    assert kinds(events) == ["proximity_cleared"]


def test_a_partner_lost_again_within_partner_max_age_is_the_same_loss():
    """Pairs that come and go (each other fix finds none) raise one `partner_position_unknown`,
    not one a flip; a loss `partner_max_age_s` after the last one raises a new one."""
    age = CFG.partner_max_age_s
    state, _ = run([obs(0, -400, **CONTACT)])
    raised = []
    for t in range(10, 400, 20):
        state, events = step(state, obs(t, 0, partner_known=False, **CONTACT), CFG)
        raised += events
        state, events = step(state, obs(t + 10, -400, **CONTACT), CFG)
        raised += events
    assert kinds(raised) == ["partner_position_unknown"] and raised[0].at == 10
    assert state.status == OUTSIDE and state.last_lost == 390 and not state.idle
    # Known for partner_max_age_s since: the loss is over, the state idle again.
    state, _ = step(state, obs(390 + age, -400, **CONTACT), CFG)
    assert state.idle
    state, events = step(state, obs(400 + age, 0, partner_known=False, **CONTACT), CFG)
    assert kinds(events) == ["partner_position_unknown"] and state.last_lost == 400 + age


def test_state_round_trips_through_a_plain_dict():
    state = ZoneState(
        status=UNKNOWN,
        held=INSIDE,
        confidence="possible",
        last_tst=5.0,
        pending=INSIDE,
        pending_count=1,
        pending_since=4.0,
        approach_announced=True,
        visits=2,
        visits_since=3.0,
        unknown_since=4.5,
        subject_tst=4.0,
        last_lost=4.5,
    )
    assert ZoneState.from_dict(state.as_dict()) == state
    assert "last_lost" not in IDLE.as_dict()
    assert "unknown_since" not in IDLE.as_dict()  # as states stored before it were written
    assert "subject_tst" not in IDLE.as_dict()


def test_a_state_stored_before_repeated_entries_were_counted_reads_with_none():
    stored = {"status": "outside", "confidence": None, "last_tst": 5.0, "pending": "inside",
              "pending_count": 1, "pending_since": 5.0, "approach_announced": False,
              "held": None}
    assert ZoneState.from_dict(stored) == ZoneState(
        last_tst=5.0, pending=INSIDE, pending_count=1, pending_since=5.0)


@pytest.mark.parametrize("junk", [
    {"status": "somewhere"},
    {"status": "inside", "pending": "nowhere"},
    {"status": "inside", "confidence": "sure"},
    {"status": "inside", "last_tst": "yesterday"},
    {"status": "inside", "last_tst": float("nan")},
    {"status": "inside", "pending_since": [1]},
    {"status": "inside", "pending_count": None},
    {"status": "inside", "pending_count": -1},
    {"status": "inside", "last_tst": True},
    {"status": "outside", "visits": -1},
    {"status": "outside", "visits": 1, "visits_since": "noon"},
    {"status": "outside", "subject_tst": "now"},
    {"status": "outside", "last_lost": "then"},
])
def test_a_stored_state_that_as_dict_cannot_have_written_is_refused(junk):
    with pytest.raises(ValueError):
        ZoneState.from_dict(junk)


def test_repeated_confirmed_fixes_in_the_zone_enter_it_and_hold_it_for_the_window():
    """In and out in turn (no ring): each clearly-outside fix resets the count in a row, the
    third confirmed fix in the zone within `repeat_window_s` enters; leaving then waits for
    the window to pass since the last fix in the zone."""
    state, raised = IDLE, []
    for i in range(6):
        state, events = step(state, obs(30 * i, 40 if i % 2 == 0 else -40), CFG)
        raised += events
    assert kinds(raised) == ["zone_breach"] and raised[0].at == 120
    assert state.status == INSIDE and state.visits_since == 120
    state, events = step(state, obs(150 + 30, 40), CFG)  # another dip: the window restarts
    assert events == [] and state.visits_since == 180
    state, events = step(state, obs(180 + CFG.repeat_window_s - 1, -400), CFG)
    assert events == [] and state.status == INSIDE
    state, events = step(state, obs(180 + CFG.repeat_window_s, -400), CFG)
    assert kinds(events) == ["zone_breach_cleared"] and state.idle


def test_a_zone_entered_across_after_a_visit_is_left_as_any_other():
    state, _ = step(IDLE, obs(0, 40), CFG)  # one visit: counting towards a repeated entry
    state, _ = step(state, obs(30, -400), CFG)
    assert state.visits == 1
    state, events = step(state, obs(60, -400, crossed=True), CFG)
    # Across the zone and out on the far side: cleared at once, not held for the window.
    assert kinds(events) == ["zone_breach", "zone_breach_cleared"] and state.idle


CONTACT = {"contact": True, "other_device_id": "vic"}


def test_going_unknown_keeps_the_time_of_the_last_pair_for_a_buffered_one():
    """A pair found later for a time before the partner became unknown (the offender's
    buffered fixes against the victim's fixes of then) is still taken."""
    state, _ = run([obs(0, -2000, **CONTACT)])
    state, events = step(state, obs(500, 0, partner_known=False, **CONTACT), CFG)
    assert kinds(events) == ["partner_position_unknown"] and state.unknown_since == 500
    state, events = step(state, obs(300, 150, **CONTACT), CFG)
    assert state.status == INSIDE and kinds(events) == ["proximity"]


def test_a_held_state_ends_once_the_partner_was_unknown_for_the_hold():
    hold = CFG.partner_unknown_hold_s
    state, _ = run([obs(0, 150, **CONTACT)])
    state, _ = step(state, obs(10, 0, partner_known=False, **CONTACT), CFG)
    same, events = step(state, obs(10 + hold - 1, 0, partner_known=False, **CONTACT), CFG)
    assert same is state and events == []
    state, events = step(state, obs(10 + hold, 0, partner_known=False, **CONTACT), CFG)
    assert kinds(events) == ["proximity_cleared"] and events[0].basis == "partner"
    assert state.status == UNKNOWN and state.held is None
    state, events = step(state, obs(20 + hold, 150, **CONTACT), CFG)
    assert kinds(events) == ["proximity"] and state.status == INSIDE


def test_a_fresh_pair_after_the_hold_starts_from_outside():
    """No observation at all while unknown: the first fresh pair after the hold clears what
    was held and is evaluated from outside (a new proximity), not resumed inside."""
    state, _ = run([obs(0, 150, **CONTACT)])
    state, _ = step(state, obs(10, 0, partner_known=False, **CONTACT), CFG)
    state, events = step(state, obs(10 + CFG.partner_unknown_hold_s, 150, **CONTACT), CFG)
    assert kinds(events) == ["proximity_cleared", "proximity"]
    assert state.status == INSIDE and state.unknown_since is None


def test_a_segment_ending_in_a_fix_too_vague_raises_nothing():
    vague = CFG.max_possible_accuracy_m + 1
    state, events = step(IDLE, obs(0, -300, acc=vague, crossed=True), CFG)
    assert events == [] and state.status == OUTSIDE


def test_pairs_with_the_same_fix_of_the_offender_count_once_towards_entering():
    """Each fix of the victim is paired with the offender's last fix: one stray fix of his,
    paired again and again, is one fix in the zone, not a confirmed entry."""
    cfg = replace(CFG, enter_confirmations=2, repeat_confirmations=3)
    state, events = run([obs(60 + 10 * i, 80, subject_tst=60, **CONTACT) for i in range(4)],
                        cfg=cfg)
    assert events == [] and state.pending == INSIDE and state.pending_count == 1
    assert state.visits == 1 and state.subject_tst == 60
    state, events = step(state, obs(120, 80, subject_tst=120, **CONTACT), cfg)
    assert kinds(events) == ["proximity"] and state.subject_tst == 120


def test_pairs_with_the_same_fix_of_the_offender_count_once_towards_leaving():
    cfg = replace(CFG, exit_confirmations=2)
    state, _ = run([obs(0, 150, subject_tst=0, **CONTACT)], cfg=cfg)
    assert state.status == INSIDE
    state, events = run([obs(60 + 10 * i, -400, subject_tst=60, **CONTACT) for i in range(3)],
                        state, cfg)
    assert events == [] and state.status == INSIDE and state.pending_count == 1
    state, events = step(state, obs(120, -400, subject_tst=120, **CONTACT), cfg)
    assert kinds(events) == ["proximity_cleared"]


def test_a_pair_with_an_older_fix_of_the_offender_counts_not_either():
    state, _ = run([obs(60, 80, subject_tst=60, **CONTACT)])
    state, events = step(state, obs(70, 80, subject_tst=50, **CONTACT), CFG)
    assert events == [] and state.pending_count == 1 and state.subject_tst == 60
