"""The geofence engine: holds the index and the per-(device, measure) states, feeds fixes
through the pure `transitions.step`, and returns events.

Not thread-safe for concurrent `on_fix` calls (one engine per worker, per-device order given by
the pipeline's staleness step). `reload` builds the new index first and swaps it with one
assignment, so a reload from another thread never exposes a half-built index.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from geofences.config import GeofenceConfig
from geofences.events import GeofenceEvent
from geofences.index import CompiledMeasure, MeasureIndex
from geofences.kept_fixes import KeptFixes
from geofences.measures import Measure
from geofences.projection import Projection, projection_for
from geofences.transitions import (
    IDLE,
    INSIDE,
    UNKNOWN,
    Observation,
    ZoneState,
    step,
    unknown_holds,
)

STATE_VERSION = 1

# A device's last accepted fix: (tst, x, y, accuracy_m, lon, lat)
DeviceFix = tuple[float, float, float, float, float, float]
FixInput = tuple[
    str, float, float, float, "float | None"
]  # (device_id, tst, lat, lon, acc)
# Per device, how many seconds its clock runs behind (absent: none): see `Engine.on_fix`.
Behind = Mapping[str, float]


class Engine:
    """Evaluates fixes against protective measures. See the package docstring."""

    def __init__(
        self,
        measures: Iterable[Measure] = (),
        config: GeofenceConfig | None = None,
        projection: Projection | None = None,
    ) -> None:
        self.config = config or GeofenceConfig()
        self.projection = projection or projection_for(self.config.crs)
        self._tz = self.config.tz
        self._index = MeasureIndex(measures, self.config, self.projection)
        self._last: dict[str, DeviceFix] = {}
        # The last fix accurate enough to start a possible breach (`max_possible_accuracy_m`):
        # where the next segment test starts, so a vague fix between two good ones is skipped.
        self._good: dict[str, DeviceFix] = {}
        # Recent fixes of the devices under a contact ban, oldest first (see `_kept_near`).
        self._recent: dict[str, KeptFixes] = {}
        self._states: dict[
            str, dict[str, ZoneState]
        ] = {}  # device -> measure -> non-idle state
        # (device, measure) pairs whose state changed (`take_changed`)
        self._changed: set[tuple[str, str]] = set()

    # -- measures ---------------------------------------------------------------------------

    @property
    def index(self) -> MeasureIndex:
        return self._index

    def reload(self, measures: Iterable[Measure], *, skip_invalid: bool = False) -> None:
        """Replace all measures atomically. States of measures that remain (same id, same
        device) are kept; the others are dropped. Raises InvalidMeasure and keeps the old index
        when a measure cannot be compiled; with `skip_invalid` loads the others (the problems
        in `index.skipped`). A measure equal to one loaded now is not compiled again: a reload
        after one change costs about the tree, not every measure."""
        before = self._index.measures
        index = MeasureIndex(measures, self.config, self.projection,
                             skip_invalid=skip_invalid, reuse=before)
        self._index = index
        for device, states in list(self._states.items()):
            for mid in list(states):
                if not _kept(states[mid], index.measures.get(mid), before.get(mid), device):
                    del states[mid]
                    self._changed.add((device, mid))
            if not states:
                del self._states[device]
        for device in [d for d in self._recent if d not in index.contact_parties]:
            del self._recent[device]

    # -- fixes ------------------------------------------------------------------------------

    def on_fix(
        self,
        device_id: str,
        tst: float,
        lat: float,
        lon: float,
        acc: float | None,
        now: float,
        behind: Behind | None = None,
    ) -> list[GeofenceEvent]:
        """Evaluate one fix of `device_id`. Fixes dated more than `max_future_s` after `now`,
        and fixes not newer than the device's last accepted fix, change no state; one dated
        more than `max_ahead_s` after `now` is evaluated as dated `now + max_ahead_s`.

        `behind`: per device, how many seconds its clock runs behind (at least 0; absent: 0),
        for this fix's device and its contact-ban partners. A contact ban pairs and ages
        the two devices' fixes on a common time base, each fix's time plus its device's
        correction (`common_time`), so a victim whose clock runs 150 s behind is not taken
        for a partner 150 s away in time. The caller decides the corrections (from what the
        devices' clocks showed on live messages); ValueError for one that is negative or not
        finite, before anything changes."""
        _check_behind(behind)
        x, y = self.projection.forward(lon, lat)
        return self._on_projected(device_id, tst, lat, lon, x, y, acc, now, behind)

    def on_fixes(
        self, fixes: Sequence[FixInput], now: float, behind: Behind | None = None
    ) -> list[GeofenceEvent]:
        """Evaluate a batch of fixes `(device_id, tst, lat, lon, acc)` in the given order,
        projecting them in one vectorised call (`behind` as for `on_fix`)."""
        _check_behind(behind)
        if not fixes:
            return []
        xs, ys = self.projection.forward_many(
            [f[3] for f in fixes], [f[2] for f in fixes]
        )
        events: list[GeofenceEvent] = []
        for (device_id, tst, lat, lon, acc), x, y in zip(
            fixes, xs.tolist(), ys.tolist(), strict=True
        ):
            found = self._on_projected(device_id, tst, lat, lon, x, y, acc, now, behind)
            if found:
                events.extend(found)
        return events

    def _on_projected(
        self,
        device_id: str,
        tst: float,
        lat: float,
        lon: float,
        x: float,
        y: float,
        acc: float | None,
        now: float,
        behind: Behind | None,
    ) -> list[GeofenceEvent]:
        cfg = self.config
        if tst > now + cfg.max_future_s or not (math.isfinite(x) and math.isfinite(y)):
            return []
        if tst > now + cfg.max_ahead_s:
            # A clock running ahead: dated as late as it can be, not later, or one glitch
            # made every real fix until its time older than the last (the zone went unseen).
            tst = now + cfg.max_ahead_s
        prev = self._last.get(device_id)
        if prev is not None and tst <= prev[0]:
            return []
        accuracy = cfg.default_accuracy_m if acc is None else float(acc)
        fix = (tst, x, y, accuracy, lon, lat)
        self._last[device_id] = fix
        good = self._good.get(device_id)
        if accuracy <= cfg.max_possible_accuracy_m:
            self._good[device_id] = fix
        index = self._index
        if device_id in index.contact_parties:
            self._remember(device_id, fix)
        subject = index.by_subject.get(device_id)
        protected = index.by_protected.get(device_id)
        if subject is None and protected is None:
            return []
        events: list[GeofenceEvent] = []
        states = self._states.get(device_id)
        # Contact bans: the fix's time on the common time base, and the latest time any
        # fix can have on it (each was received by `now`; `max_ahead_s` as above).
        limit = now + cfg.max_ahead_s
        common = common_time(tst, behind.get(device_id, 0.0) if behind else 0.0, limit)
        if subject is not None:
            for cm in subject:
                if cm.contact:
                    self._eval_contact(cm, device_id, tst, common, behind, limit, events)
                else:
                    self._eval_zone(
                        cm, device_id, tst, x, y, accuracy, good, states, events
                    )
        if protected is not None:
            for cm in protected:
                for offender in cm.subjects:
                    self._eval_contact(cm, offender, tst, common, behind, limit, events)
        return events

    def _remember(self, device_id: str, fix: DeviceFix) -> None:
        """Keep a fix of a device under a contact ban: at most `partner_history_fixes`, none
        older than `partner_history_s` before it, and about one per `partner_max_age_s / 2`:
        a buffered fix of the partner still finds one within half the age a pair may have,
        and a device in pursuit mode (a fix every 15 s) keeps a quarter of its fixes."""
        cfg = self.config
        recent = self._recent.get(device_id)
        if recent is None:
            recent = self._recent[device_id] = KeptFixes(cfg.partner_history_fixes)
        recent.remember(fix, spacing_s=cfg.partner_max_age_s / 2,
                        history_s=cfg.partner_history_s)

    def _kept_near(self, device_id: str, at: float) -> DeviceFix | None:
        """For a time `at` more than `partner_max_age_s` before the device's last fix (a fix
        of its partner's buffered batch): its kept fix nearest in time to `at` within that age,
        else None."""
        recent = self._recent.get(device_id)
        return None if recent is None else recent.near(at, self.config.partner_max_age_s)

    def _store(self, device_id: str, measure_id: str, state: ZoneState) -> None:
        states = self._states.get(device_id)
        if state.idle:
            if states is not None and states.pop(measure_id, None) is not None:
                self._changed.add((device_id, measure_id))
                if not states:
                    del self._states[device_id]
        else:
            if states is None:
                states = self._states[device_id] = {}
            if states.get(measure_id) != state:
                states[measure_id] = state
                self._changed.add((device_id, measure_id))

    def _eval_zone(
        self,
        cm: CompiledMeasure,
        device_id: str,
        tst: float,
        x: float,
        y: float,
        acc: float,
        prev: DeviceFix | None,
        states: dict[str, ZoneState] | None,
        events: list[GeofenceEvent],
    ) -> None:
        """Zone `cm` for one fix; `prev` is the device's last fix accurate enough to start a
        possible breach, where a segment test starts (a fix too vague ends none)."""
        cfg = self.config
        state = states.get(cm.id) if states is not None else None
        pad = cm.ring + cfg.exit_margin_m + acc
        if state is None and (
            x < cm.minx - pad
            or x > cm.maxx + pad
            or y < cm.miny - pad
            or y > cm.maxy + pad
        ):
            # Far away and idle: only a segment through the zone's box could matter.
            if prev is None or tst - prev[0] > cfg.segment_max_gap_s:
                return
            px, py = prev[1], prev[2]
            if (
                (px < cm.minx and x < cm.minx)
                or (px > cm.maxx and x > cm.maxx)
                or (py < cm.miny and y < cm.miny)
                or (py > cm.maxy and y > cm.maxy)
            ):
                return
        if state is None:
            state = IDLE
        if not cm.active_at(tst, self._tz):
            if state is IDLE:
                return
            obs = Observation(
                tst=tst,
                measure_id=cm.id,
                case_id=cm.case_id,
                device_id=device_id,
                active=False,
            )
        else:
            inside, inside_m, outside_m = cm.placement(x, y)
            crossed = False
            if (
                not inside
                and prev is not None
                and acc <= cfg.max_possible_accuracy_m
                and state.status != INSIDE
                and tst - prev[0] <= cfg.segment_max_gap_s
                and not cm.placement(prev[1], prev[2])[0]
            ):
                crossed = cm.crossed(prev[1], prev[2], x, y, tst)
            obs = Observation(
                tst=tst,
                measure_id=cm.id,
                case_id=cm.case_id,
                device_id=device_id,
                exempt=bool(cm.exemptions) and cm.exempt_at(x, y, tst),
                inside=inside,
                inside_m=inside_m,
                outside_m=outside_m,
                accuracy_m=acc,
                ring_m=cm.ring,
                crossed=crossed,
            )
        new, found = step(state, obs, cfg)
        if new is not state:
            self._store(device_id, cm.id, new)
        if found:
            events.extend(found)

    def _eval_contact(
        self,
        cm: CompiledMeasure,
        offender: str,
        at: float,
        common: float,
        behind: Behind | None,
        limit: float,
        events: list[GeofenceEvent],
    ) -> None:
        """Contact ban `cm` for one offender device, using only fixes within
        `partner_max_age_s` of `common`, the time of the fix being processed on the common
        time base (`at` on its device's clock; see `common_time`, fixes never later than
        `limit`): the devices' last ones (the live case), or for a time before those (a fix of
        a buffered batch) the ones kept from that time (`_kept_near`).

        The state goes by common times. The events carry the later of the pair's own device
        times (`at` without a pair): derived from the stored fixes alone, so a batch handled
        again after a failure raises its alert with the same message id even when a newer
        clock reading has changed a correction by a second meanwhile."""
        cfg = self.config
        states = self._states.get(offender)
        state = states.get(cm.id) if states is not None else None
        lo, hi = common - cfg.partner_max_age_s, common + cfg.partner_max_age_s
        last = self._last
        off_behind = behind.get(offender, 0.0) if behind else 0.0
        off = last.get(offender)
        off_t = 0.0
        if off is not None:
            off_t = common_time(off[0], off_behind, limit)
            if not lo <= off_t <= hi:
                off = self._kept_near(offender, common - off_behind) if off_t > hi else None
                if off is not None:
                    off_t = common_time(off[0], off_behind, limit)
        best: DeviceFix | None = None
        best_id: str | None = None
        best_d = math.inf
        best_t = 0.0
        if off is not None:
            ox, oy = off[1], off[2]
            for victim in cm.protected:
                v = last.get(victim)
                if v is None:
                    continue
                v_behind = behind.get(victim, 0.0) if behind else 0.0
                v_t = common_time(v[0], v_behind, limit)
                if v_t < lo:  # no fix kept is newer than the last
                    continue
                if v_t > hi:
                    if (v := self._kept_near(victim, common - v_behind)) is None:
                        continue
                    v_t = common_time(v[0], v_behind, limit)
                d = math.hypot(ox - v[1], oy - v[2])
                if d < best_d:
                    best, best_id, best_d, best_t = v, victim, d, v_t
        if best is None:
            if (state is not None and state.status == UNKNOWN
                    and unknown_holds(state, common, cfg) and cm.active_at(common, self._tz)):
                return  # still unknown, nothing held to end: the common case, kept cheap
            pair_tst, event_at = common, at
            if not cm.active_at(pair_tst, self._tz):
                if state is None:
                    return
                obs = Observation(
                    tst=pair_tst,
                    at=event_at,
                    measure_id=cm.id,
                    case_id=cm.case_id,
                    device_id=offender,
                    contact=True,
                    active=False,
                )
            else:
                obs = Observation(
                    tst=pair_tst,
                    at=event_at,
                    measure_id=cm.id,
                    case_id=cm.case_id,
                    device_id=offender,
                    other_device_id=cm.protected[0] if len(cm.protected) == 1 else None,
                    contact=True,
                    partner_known=False,
                )
        else:
            assert off is not None
            acc = off[3] + best[3]
            if state is None and best_d - cm.radius > cm.ring + cfg.exit_margin_m + acc:
                return
            pair_tst, event_at = max(off_t, best_t), max(off[0], best[0])
            if not cm.active_at(pair_tst, self._tz):
                if state is None:
                    return
                obs = Observation(
                    tst=pair_tst,
                    at=event_at,
                    measure_id=cm.id,
                    case_id=cm.case_id,
                    device_id=offender,
                    other_device_id=best_id,
                    contact=True,
                    active=False,
                )
            else:
                inside = best_d < cm.radius
                obs = Observation(
                    tst=pair_tst,
                    at=event_at,
                    measure_id=cm.id,
                    case_id=cm.case_id,
                    device_id=offender,
                    other_device_id=best_id,
                    contact=True,
                    exempt=bool(cm.exemptions)
                    and cm.exempt_at(off[1], off[2], pair_tst),
                    inside=inside,
                    inside_m=cm.radius - best_d if inside else 0.0,
                    outside_m=0.0 if inside else best_d - cm.radius,
                    distance_m=best_d,
                    accuracy_m=acc,
                    ring_m=cm.ring,
                    subject_tst=off[0],
                )
        new, found = step(state or IDLE, obs, cfg)
        if new is not state:
            self._store(offender, cm.id, new)
        if found:
            events.extend(found)

    # -- state ------------------------------------------------------------------------------

    def state_of(self, device_id: str, measure_id: str) -> ZoneState:
        """The state of one (device, measure) pair (the idle state when none is kept)."""
        return self._states.get(device_id, {}).get(measure_id, IDLE)

    def states_of(self, device_id: str) -> dict[str, dict[str, Any]]:
        """The device's states that are not idle, as `take_changed()` gives them (measure id ->
        state; empty when it is idle everywhere): to compare with what a store holds."""
        return {m: s.as_dict() for m, s in self._states.get(device_id, {}).items()}

    def forget_device(self, device_id: str) -> None:
        """Drop everything known about a device (last fix and zone states)."""
        self._last.pop(device_id, None)
        self._good.pop(device_id, None)
        self._recent.pop(device_id, None)
        self._changed.update((device_id, m) for m in self._states.pop(device_id, ()))

    def take_changed(self) -> dict[str, dict[str, dict[str, Any] | None]]:
        """The states that changed since the last call, per device and measure, as
        `snapshot_state()` writes them (None: idle now, to be removed), for a caller that keeps
        them in a store as they change. Only the measures that changed: a store merges them
        into what it holds, so a change of one measure of a device (a contact ban's state,
        changed by a fix of the victim) never takes back a change of another that an engine
        evaluating the device's own fix made meanwhile."""
        changed, self._changed = self._changed, set()
        found: dict[str, dict[str, dict[str, Any] | None]] = {}
        for d, m in changed:
            state = self._states.get(d, {}).get(m)
            found.setdefault(d, {})[m] = None if state is None else state.as_dict()
        return found

    def snapshot_state(self) -> dict[str, Any]:
        """Plain-dict state (JSON-serialisable): last fix per device and non-idle states."""
        return {
            "version": STATE_VERSION,
            "devices": {
                d: {"tst": f[0], "lon": f[4], "lat": f[5], "acc": f[3]}
                for d, f in self._last.items()
            },
            "states": {
                d: {m: s.as_dict() for m, s in ms.items()}
                for d, ms in self._states.items()
            },
        }

    def last_time(self, device_id: str) -> float | None:
        """The time of the device's last accepted fix, None when none is known."""
        last = self._last.get(device_id)
        return None if last is None else last[0]

    def adopt(
        self,
        fixes: Mapping[str, Mapping[str, Any] | None],
        states: Mapping[str, Mapping[str, Mapping[str, Any]]],
    ) -> None:
        """Take over, for each device of `fixes`, its last fix (None: none known) and its
        states from `states` (absent: idle everywhere), both in the form `snapshot_state()`
        writes them: what a shared store holds when another engine evaluated the device's
        latest fixes, or when fixes this engine evaluated were not stored. Adopted fixes are
        not evaluated again. States of measures no longer loaded, or that no longer concern
        the device, and unreadable ones are dropped (each counts as changed to idle, see
        `take_changed`); a last fix may lack its accuracy (None: `default_accuracy_m`)."""
        known = {d: f for d, f in fixes.items() if f is not None}
        if known:
            lons = [float(f["lon"]) for f in known.values()]
            lats = [float(f["lat"]) for f in known.values()]
            xs, ys = self.projection.forward_many(lons, lats)
            for (d, info), x, y, lon, lat in zip(
                known.items(), xs.tolist(), ys.tolist(), lons, lats, strict=True
            ):
                acc = info.get("acc")
                accuracy = self.config.default_accuracy_m if acc is None else float(acc)
                self._take_fix(d, (float(info["tst"]), x, y, accuracy, lon, lat))
        measures = self._index.measures
        for d in fixes:
            if d not in known:
                self._last.pop(d, None)
                self._good.pop(d, None)
                self._recent.pop(d, None)
            stored = states.get(d) or {}
            kept = {m: state for m, data in stored.items()
                    if m in measures and d in measures[m].subjects
                    and (state := _readable(data)) is not None and not state.idle}
            if len(kept) != len(stored):
                self._changed.update((d, m) for m in stored if m not in kept)
            if kept:
                self._states[d] = kept
            else:
                self._states.pop(d, None)

    def _take_fix(self, device_id: str, fix: DeviceFix) -> None:
        """An adopted last fix: the segment test starts from it if it is accurate enough (else
        from none: the good fix this engine knew may be older than fixes evaluated elsewhere),
        and kept fixes not before it are dropped (a batch handled again keeps them once)."""
        self._last[device_id] = fix
        if fix[3] <= self.config.max_possible_accuracy_m:
            self._good[device_id] = fix
        else:
            self._good.pop(device_id, None)
        recent = self._recent.get(device_id)
        if recent is not None:
            recent.drop_from(fix[0])
        if device_id in self._index.contact_parties:
            self._remember(device_id, fix)

    def restore_state(self, snapshot: dict[str, Any]) -> None:
        """Replace the engine's state by a `snapshot_state()` result (see `adopt` for what is
        dropped)."""
        if snapshot.get("version") != STATE_VERSION:
            raise ValueError(
                f"unsupported geofence state version {snapshot.get('version')!r}"
            )
        devices = snapshot.get("devices", {})
        states = snapshot.get("states", {})
        self._last, self._states, self._changed = {}, {}, set()
        self._good, self._recent = {}, {}
        self.adopt({d: devices.get(d) for d in {*devices, *states}}, states)


def common_time(tst: float, behind: float, limit: float) -> float:
    """A fix's time on the common time base of contact bans: its device's time plus how far
    that device's clock runs behind, but never later than `limit` (when the fix is evaluated,
    `now + max_ahead_s`: a fix was taken before it was received, so a correction too large,
    read from a live message that was delayed, cannot make a partner's fix look newer than
    that). Without a correction the fix's own time, as a fix of a right clock keeps it."""
    if behind <= 0.0:
        return tst
    return min(tst + behind, limit)


def _check_behind(behind: Behind | None) -> None:
    """ValueError for a clock correction that is negative or not finite (a clock running
    ahead needs none: its fixes are evaluated as dated at most `max_ahead_s` after `now`)."""
    if behind:
        for value in behind.values():
            if not (math.isfinite(value) and value >= 0.0):
                raise ValueError("a clock correction must be a finite number of seconds, "
                                 "at least 0")


def _kept(
    state: ZoneState, cm: CompiledMeasure | None, before: CompiledMeasure | None, device: str
) -> bool:
    """Whether a reload keeps a device's state of a measure: the measure is still loaded and
    still concerns the device; and a partner position held `unknown` from before a change of
    the measure (a ban renewed after it lapsed) is not carried over to the new measure."""
    if cm is None or device not in cm.subjects:
        return False
    return state.status != UNKNOWN or cm is before


def _readable(data: dict[str, Any]) -> ZoneState | None:
    """A stored state, or None when it is unreadable (dropped, as an unknown measure's is)."""
    try:
        return ZoneState.from_dict(data)
    except ValueError:
        return None
