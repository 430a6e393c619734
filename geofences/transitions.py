"""The zone state machine as a pure function: `step(state, observation, config)`.

Per (device, measure) the state is one of outside / approaching / inside / unknown. Rules:

- Out-of-order: an observation older than the last accepted one changes nothing.
- Inactive (outside validity or weekly windows): open alerts are cleared, state resets.
- Contact bans: when no partner fix is fresh enough the state becomes `unknown` and one
  `partner_position_unknown` event is raised; a fresh pair resumes from the state held before.
  A partner lost again within `partner_max_age_s` of the last time it was lost is the same
  loss: no second event (a partner whose pairs come and go, e.g. a device clock running
  behind by about that age, raised one on every other fix).
  Going or staying unknown does not advance `last_tst`: a pair found later for a time before
  (an offender's buffered fixes, paired with the victim's fixes of then) is still taken. The
  held state ends once the partner has been unknown for `partner_unknown_hold_s`: its open
  events are cleared (basis `partner`) and the next fresh pair starts from outside, so an
  offender found near the victim again raises a new proximity.
- Accuracy: a fix whose accuracy circle lies fully inside is "confirmed"; one whose circle
  straddles the border is "possible" (if its accuracy is usable at all, else it changes nothing).
- Debounce: entering (ring or zone) needs `enter_confirmations` fixes there, or
  `enter_dwell_s` seconds, or one fix `immediate_depth_m` deep beyond its accuracy. Fixes in
  the ring and fixes in the zone count together, towards the ring: an offender weaving along
  the border raises `approach`, and consecutive fixes in the zone from there the breach. Only
  a clearly-outside fix resets a pending entry; fixes near the border (within the exit margin)
  or too vague to tell neither count nor reset. For a contact ban only a pair with a fix of the
  offender newer than the last one the state saw counts (towards entering, leaving and
  repeated entries): each fix of the victim is paired with the offender's last fix, and one
  stray fix of his (a multipath jump) must not be confirmed by her next fixes.
- Repeated entries: `repeat_confirmations` confirmed fixes in the zone within
  `repeat_window_s` of the first enter it too, whatever came between: an offender weaving in
  and out along the border, each clearly-outside fix resetting the count in a row, is in the
  zone again and again. A zone so entered is left only once `repeat_window_s` passed since
  the last confirmed fix in it (one breach for the weaving, not one per dip).
- Hysteresis: leaving needs the whole accuracy circle `exit_margin_m` outside the border, for
  `exit_confirmations` consecutive fixes; in between the state holds.
- Segment: when the straight segment between two fixes both outside crosses the zone (computed
  by the engine), a "possible" breach is raised at once, then the fix itself is evaluated.
  As a single fix, a segment ending in a fix too vague to start a possible breach
  (`max_possible_accuracy_m`) raises nothing (the engine does not test it either).
- Exceptions: a fix inside an active exception counts as clearly outside.
- A breach first raised as "possible" and then confirmed raises a second, confirmed breach
  event (the backend upgrades the possible alert with it: docs/geofences.md).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any

from geofences.config import GeofenceConfig
from geofences.events import GeofenceEvent

OUTSIDE = "outside"
APPROACHING = "approaching"
INSIDE = "inside"
UNKNOWN = "unknown"
STATUSES = (OUTSIDE, APPROACHING, INSIDE, UNKNOWN)
POSSIBLE = "possible"
CONFIRMED = "confirmed"
_LEVEL = {OUTSIDE: 0, APPROACHING: 1, INSIDE: 2}


@dataclass(frozen=True, slots=True)
class ZoneState:
    """State of one (device, measure) pair. The default value is the idle state."""

    status: str = OUTSIDE
    confidence: str | None = None
    last_tst: float | None = None
    pending: str | None = None  # status being debounced towards
    pending_count: int = 0
    pending_since: float | None = None
    approach_announced: bool = False  # an `approach` event is open
    held: str | None = None  # status before `unknown`
    # Confirmed fixes in the zone counted towards a repeated entry, and the time of the first;
    # once so entered (inside, visits > 0), the time of the last.
    visits: int = 0
    visits_since: float | None = None
    unknown_since: float | None = None  # when the partner's position became unknown
    # Contact bans: when the partner's position last became unknown (whether that raised a
    # `partner_position_unknown` or not); kept through pairs found within
    # `partner_max_age_s` after it, so a partner lost again meanwhile is the same loss.
    last_lost: float | None = None
    # Contact bans: the time of the offender's newest fix in a pair applied to this state; a
    # pair with no newer fix of his counts towards no pending change or repeated entry.
    subject_tst: float | None = None

    @property
    def idle(self) -> bool:
        """Outside with nothing pending: the engine need not keep it."""
        return (
            self.status == OUTSIDE
            and self.pending is None
            and not self.approach_announced
            and self.visits == 0
            and self.last_lost is None
        )

    def as_dict(self) -> dict[str, Any]:
        data = {
            "status": self.status,
            "confidence": self.confidence,
            "last_tst": self.last_tst,
            "pending": self.pending,
            "pending_count": self.pending_count,
            "pending_since": self.pending_since,
            "approach_announced": self.approach_announced,
            "held": self.held,
            "visits": self.visits,
            "visits_since": self.visits_since,
        }
        if self.unknown_since is not None:  # absent otherwise, as states stored before it
            data["unknown_since"] = self.unknown_since
        if self.subject_tst is not None:  # the same
            data["subject_tst"] = self.subject_tst
        if self.last_lost is not None:  # the same
            data["last_lost"] = self.last_lost
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> ZoneState:
        """A state written by `as_dict`; ValueError for anything else (a stored state is
        never trusted blindly)."""
        try:
            state = ZoneState(
                status=data.get("status", OUTSIDE),
                confidence=data.get("confidence"),
                last_tst=_time(data.get("last_tst")),
                pending=data.get("pending"),
                pending_count=int(data.get("pending_count", 0)),
                pending_since=_time(data.get("pending_since")),
                approach_announced=bool(data.get("approach_announced", False)),
                held=data.get("held"),
                visits=int(data.get("visits", 0)),
                visits_since=_time(data.get("visits_since")),
                unknown_since=_time(data.get("unknown_since")),
                subject_tst=_time(data.get("subject_tst")),
                last_lost=_time(data.get("last_lost")),
            )
        except (TypeError, AttributeError) as exc:
            raise ValueError(f"unreadable stored zone state ({exc})") from None
        if state.status not in STATUSES or any(
            v is not None and v not in _LEVEL for v in (state.pending, state.held)
        ):
            raise ValueError("unknown zone status in stored state")
        if state.confidence not in (None, POSSIBLE, CONFIRMED) or min(
                state.pending_count, state.visits) < 0:
            raise ValueError("unreadable stored zone state")
        return state


def _time(value: Any) -> float | None:
    """A stored epoch time: None or a finite number (ValueError otherwise)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"not a time: {value!r}")
    return float(value)


IDLE = ZoneState()


@dataclass(frozen=True, slots=True)
class Observation:
    """What the engine measured for one fix against one measure (metres, seconds).

    `inside` says whether the fix centre lies in the zone (for a contact ban: within the ban
    radius of the victim). `inside_m` is the depth inside, `outside_m` the distance to the zone
    (each 0 on the other side). `distance_m` is what events report (defaults to `outside_m`;
    the distance to the victim for contact bans). `accuracy_m` is the fix accuracy radius (the
    sum of both devices' for contact bans). `subject_tst` is, for a contact ban, the time of
    the offender's fix in the pair (None for zones: each observation is a fix of its own).
    `at` is the time its events carry when it is not `tst`: for a contact ban, whose `tst` is
    on the common time base of the two devices' clocks, the later of the pair's own times.
    """

    tst: float
    measure_id: str
    case_id: str
    device_id: str
    other_device_id: str | None = None
    contact: bool = False
    active: bool = True
    exempt: bool = False
    partner_known: bool = True
    inside: bool = False
    inside_m: float = 0.0
    outside_m: float = 0.0
    distance_m: float | None = None
    accuracy_m: float = 0.0
    ring_m: float = 0.0
    crossed: bool = False
    subject_tst: float | None = None
    at: float | None = None


def _event(kind: str, obs: Observation, confidence: str, basis: str) -> GeofenceEvent:
    known = obs.partner_known
    return GeofenceEvent(
        kind=kind,  # type: ignore[arg-type]
        measure_id=obs.measure_id,
        case_id=obs.case_id,
        device_id=obs.device_id,
        other_device_id=obs.other_device_id,
        at=obs.tst if obs.at is None else obs.at,
        confidence=confidence,  # type: ignore[arg-type]
        distance_m=(obs.outside_m if obs.distance_m is None else obs.distance_m)
        if known
        else None,
        inside_m=obs.inside_m if known else None,
        basis=basis,  # type: ignore[arg-type]
    )


HOLD = "hold"  # the fix argues for nothing: keep state and any pending change


def _desired(
    status: str, obs: Observation, cfg: GeofenceConfig
) -> tuple[str, str | None]:
    """The status this fix argues for, with its confidence; HOLD when it argues for nothing
    (within a hysteresis band, or an accuracy too poor to tell)."""
    if obs.exempt:
        return OUTSIDE, None
    acc = obs.accuracy_m
    if obs.inside and obs.inside_m >= acc:
        return INSIDE, CONFIRMED
    if obs.inside or obs.outside_m < acc:  # the accuracy circle straddles the border
        if acc <= cfg.max_possible_accuracy_m:
            return INSIDE, POSSIBLE
        return HOLD, None
    d, ring, margin = obs.outside_m, obs.ring_m, cfg.exit_margin_m
    if d - acc < margin:  # near the zone border, but not clearly outside
        return HOLD, None
    if status == INSIDE:
        if ring > 0 and d - acc < ring + margin:
            return APPROACHING, (CONFIRMED if d + acc <= ring else POSSIBLE)
        return OUTSIDE, None
    if ring > 0 and d < ring + acc:  # the accuracy circle touches the pre-alert ring
        if d <= ring or acc <= cfg.max_possible_accuracy_m:
            return APPROACHING, (CONFIRMED if d + acc <= ring else POSSIBLE)
        return HOLD, None
    if status == APPROACHING and d - acc < ring + margin:
        return HOLD, None
    return OUTSIDE, None


def _leave_events(
    state: ZoneState, obs: Observation, to: str, basis: str
) -> list[GeofenceEvent]:
    """Clearing events when going down from `state.status` to `to`."""
    breach = "proximity" if obs.contact else "zone_breach"
    conf = state.confidence or CONFIRMED
    events = []
    if state.status == INSIDE:
        events.append(_event(f"{breach}_cleared", obs, conf, basis))
    if to == OUTSIDE and state.approach_announced:
        events.append(_event("approach_cleared", obs, conf, basis))
    return events


def _pending(
    state: ZoneState, desired: str, tst: float, new: bool = True
) -> tuple[str, int, float | None]:
    """The status debounced towards after a fix arguing for `desired` (not the current
    status), with its count of fixes and the time of the first. Fixes arguing for the ring and
    for the zone both argue for going up: they count together, towards the lower of the two
    (an offender weaving along the border of a zone with a ring is in the ring all along).
    A pair with no `new` fix of the offender goes on with the count without adding to it."""
    pending = state.pending
    more = 1 if new else 0
    if pending == desired:
        return desired, state.pending_count + more, state.pending_since
    level = _LEVEL[state.status]
    if pending is not None and min(_LEVEL[pending], _LEVEL[desired]) > level:
        lower = min(pending, desired, key=_LEVEL.__getitem__)
        return lower, state.pending_count + more, state.pending_since
    return desired, 1, tst


def _visits(
    state: ZoneState, desired: str, conf: str | None, tst: float, cfg: GeofenceConfig,
    new: bool = True,
) -> tuple[int, float | None]:
    """`visits` and `visits_since` after this fix: outside the zone, the confirmed fixes in
    it within the window and the time of the first (a pair with no `new` fix of the offender
    adds none); inside after a repeated entry, the time of the last; none inside after any
    other entry."""
    confirmed_in = desired == INSIDE and conf == CONFIRMED
    if state.status == INSIDE:
        if state.visits == 0 or not confirmed_in:
            return state.visits, state.visits_since
        return state.visits, tst
    if cfg.repeat_confirmations is None:
        return 0, None
    count, since = state.visits, state.visits_since
    if since is not None and tst - since > cfg.repeat_window_s:
        count, since = 0, None
    if confirmed_in and new:
        return count + 1, tst if since is None else since
    return count, since


def _immediate(
    desired: str, conf: str | None, obs: Observation, cfg: GeofenceConfig
) -> bool:
    """A confirmed fix deep enough inside, beyond its accuracy, to enter at once."""
    return (
        desired == INSIDE
        and conf == CONFIRMED
        and cfg.immediate_depth_m is not None
        and obs.inside_m - obs.accuracy_m >= cfg.immediate_depth_m
    )


def unknown_holds(state: ZoneState, tst: float, cfg: GeofenceConfig) -> bool:
    """Whether an `unknown` state stays as it is at `tst` with the partner still unknown:
    it holds nothing, or the partner has been unknown for less than `partner_unknown_hold_s`
    (the engine's fast path: then it need not build an observation)."""
    if (state.held in (None, OUTSIDE) and not state.approach_announced
            and state.visits == 0):
        return True
    since = state.unknown_since if state.unknown_since is not None else state.last_tst
    return since is None or tst - since < cfg.partner_unknown_hold_s


def _expire_held(
    state: ZoneState, obs: Observation, cfg: GeofenceConfig
) -> tuple[ZoneState, list[GeofenceEvent]]:
    """An `unknown` state whose partner has been unknown for `partner_unknown_hold_s` or
    longer no longer holds what it held: its open events are cleared (basis `partner`) and it
    resumes from outside. The same state object when nothing changes."""
    if unknown_holds(state, obs.tst, cfg):
        return state, []
    held = replace(state, status=state.held or OUTSIDE, held=None)
    events = _leave_events(held, obs, OUTSIDE, "partner")
    return ZoneState(
        status=UNKNOWN, last_tst=state.last_tst, unknown_since=state.unknown_since,
        last_lost=state.last_lost,
    ), events


def step(
    state: ZoneState, obs: Observation, cfg: GeofenceConfig
) -> tuple[ZoneState, list[GeofenceEvent]]:
    """Apply one observation to one (device, measure) state. Pure: no I/O, no clock."""
    if state.last_tst is not None and obs.tst < state.last_tst:
        return state, []
    subject = obs.subject_tst
    seen = state.subject_tst
    fresh = subject is None or seen is None or subject > seen
    new, events = _step(state, obs, cfg, fresh)
    if obs.partner_known and state.last_lost is not None:
        lost = lost_lately(state, obs.tst, cfg)
        if new.last_lost != lost:
            new = replace(new, last_lost=lost)
    if subject is not None:
        kept = subject if fresh else seen
        if not new.idle and new.subject_tst != kept:
            new = replace(new, subject_tst=kept)
    return new, events


def lost_lately(state: ZoneState, tst: float, cfg: GeofenceConfig) -> float | None:
    """`state.last_lost` if the partner became unknown less than `partner_max_age_s` before
    `tst` (or after it: a pair dated before the loss), else None: a partner lost again before
    then is the same loss, and raises no second `partner_position_unknown`."""
    lost = state.last_lost
    return lost if lost is not None and tst - lost < cfg.partner_max_age_s else None


def _step(
    state: ZoneState, obs: Observation, cfg: GeofenceConfig, new: bool
) -> tuple[ZoneState, list[GeofenceEvent]]:
    """`step` for an observation not older than the state; `new`: it brings a fix not counted
    before (always for zones; for a contact ban, a fix of the offender newer than the last)."""
    breach = "proximity" if obs.contact else "zone_breach"

    if not obs.active:
        held = (
            state
            if state.status != UNKNOWN
            else replace(state, status=state.held or OUTSIDE)
        )
        return ZoneState(last_tst=obs.tst), _leave_events(
            held, obs, OUTSIDE, "inactive"
        )

    if not obs.partner_known:
        if state.status == UNKNOWN:
            return _expire_held(state, obs, cfg)  # the same state: nothing to store
        again = lost_lately(state, obs.tst, cfg) is not None
        lost = obs.tst if state.last_lost is None else max(state.last_lost, obs.tst)
        return (
            replace(
                state,
                status=UNKNOWN,
                held=state.status,
                pending=None,
                pending_count=0,
                pending_since=None,
                unknown_since=obs.tst,
                last_lost=lost,
            ),
            [] if again else [_event("partner_position_unknown", obs, CONFIRMED, "partner")],
        )
    events: list[GeofenceEvent] = []
    if state.status == UNKNOWN:
        state, events = _expire_held(state, obs, cfg)
        state = replace(state, status=state.held or OUTSIDE, held=None, unknown_since=None)

    if (
        obs.crossed
        and state.status != INSIDE
        and not obs.inside
        and obs.accuracy_m <= cfg.max_possible_accuracy_m
    ):
        events.append(_event(breach, obs, POSSIBLE, "segment"))
        state = replace(
            state,
            status=INSIDE,
            confidence=POSSIBLE,
            pending=None,
            pending_count=0,
            pending_since=None,
            visits=0,  # entered across, not by repeated visits: left as any other entry
            visits_since=None,
        )

    status = state.status
    basis = "exception" if obs.exempt else "fix"
    desired, conf = _desired(status, obs, cfg)
    visits, visits_since = _visits(state, desired, conf, obs.tst, cfg, new)
    if (visits, visits_since) != (state.visits, state.visits_since):
        state = replace(state, visits=visits, visits_since=visits_since)
    if desired == HOLD:
        return (
            state if state.last_tst == obs.tst else replace(state, last_tst=obs.tst)
        ), events
    if desired == status:
        if status == INSIDE and conf == CONFIRMED and state.confidence == POSSIBLE:
            events.append(_event(breach, obs, CONFIRMED, basis))
            return replace(
                state,
                confidence=CONFIRMED,
                pending=None,
                pending_count=0,
                pending_since=None,
                last_tst=obs.tst,
            ), events
        if state.pending is None and state.last_tst == obs.tst:
            return state, events
        return replace(
            state, pending=None, pending_count=0, pending_since=None, last_tst=obs.tst
        ), events

    target, count, since = _pending(state, desired, obs.tst, new)
    repeated = False
    if _LEVEL[desired] > _LEVEL[status]:
        if _immediate(desired, conf, obs, cfg):
            target, ready = desired, True
        else:
            ready = count >= cfg.enter_confirmations or (
                new
                and cfg.enter_dwell_s is not None
                and since is not None
                and obs.tst - since >= cfg.enter_dwell_s
            )
            if (not ready or target != INSIDE) and desired == INSIDE \
                    and cfg.repeat_confirmations is not None \
                    and visits >= cfg.repeat_confirmations:
                target, ready, repeated = INSIDE, True, True
    else:
        # A zone entered by repeated visits is left once the window passed since the last.
        ready = count >= cfg.exit_confirmations and (
            status != INSIDE or visits == 0 or visits_since is None
            or obs.tst - visits_since >= cfg.repeat_window_s
        )
    if not ready:
        return replace(
            state,
            pending=target,
            pending_count=count,
            pending_since=since,
            last_tst=obs.tst,
        ), events

    if _LEVEL[target] > _LEVEL[status]:
        kind = breach if target == INSIDE else "approach"
        events.append(_event(kind, obs, conf or POSSIBLE, "repeated" if repeated else basis))
        announced = state.approach_announced or target == APPROACHING
        if target == APPROACHING:  # the count towards a repeated entry goes on in the ring
            kept = {"visits": visits, "visits_since": visits_since}
        else:  # inside: after a repeated entry, the time of this last visit
            kept = {"visits": visits, "visits_since": obs.tst} if repeated else {}
        return ZoneState(
            status=target,
            confidence=conf,
            last_tst=obs.tst,
            approach_announced=announced,
            **kept,
        ), events
    events.extend(_leave_events(state, obs, desired, basis))
    announced = state.approach_announced and desired != OUTSIDE
    confidence = conf if desired == APPROACHING else None
    # Out of the ring the count goes on; out of the zone it starts again.
    kept = {"visits": visits, "visits_since": visits_since} if status != INSIDE else {}
    return ZoneState(
        status=desired,
        confidence=confidence,
        last_tst=obs.tst,
        approach_announced=announced,
        **kept,
    ), events
