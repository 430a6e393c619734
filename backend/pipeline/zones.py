"""The zone and proximity step: fresh fixes through the geofence engine, events into alerts.

Runs after `DeviceAlarms` and before `DeviceHealth`, on the ingest thread (the only thread that
touches the engine). Once per batch, before anything else of it, `refresh` lets
`LiveMeasures.refresh()` reload the engine if a measure changed (cheap when not due): every
message of a batch is evaluated against the same measures, and a change made meanwhile applies
from the next batch. Per message with fresh fixes the step then:

1. skips devices that no measure concerns (most fixes end here, after two dict look-ups);
2. evaluates the fixes and turns events into `AlertDraft`s:
   `zone_breach` and `proximity` (P1), `approach` (P2), each with the stable message id
   `geo-{measure}-{kind}-{confidence}-{int(at)}`, so a redelivered or re-evaluated crossing
   raises one alert; a confirmed event confirms the open alert of the same measure and kind
   raised from a possible one, instead of raising a second alert (`confirmation`), also when
   it has the time of the possible one (a contact ban's time is that of the newer fix of the
   pair), and raises its own alert when there is none;
3. hands the other events (`*_cleared`, `partner_position_unknown`) to a `ZoneNotes` sink:
   they never raise an alert; the default sink tells the consoles and notes them on the
   timeline of the open alert of the same measure, if there is one;
4. hands the states that changed to the state store (the worker's view stores them with the
   batch, after its commit).

The state store, not the engine, holds the truth between batches: before each batch
(`begin_batch`) the step takes over from it the last fix and zone states of every device of the
batch, and of their contact-ban partners (found with the measures brought up to date, so a ban
just created or first loaded has its partners too), that the engine knows otherwise. So a
restarted worker goes on where it stopped (a device inside a zone raises no second breach, one
that left meanwhile clears the breach, a first fix across the zone from the last one is a
crossing); workers sharing a subscription each see what the others evaluated (a contact ban
works when offender and victim fixes reach different workers); and a batch that was not stored
is evaluated again from where it began, so its alerts are raised when it is handled again.

A message of a device under a contact ban is evaluated with the clock corrections of that
device and its partners (`backend.pipeline.clock_correction`), read through the worker's view
of the store (the batch's prefetch, and the reading of this message the staleness step wrote):
the engine pairs their fixes on a common time base, so a victim whose clock runs behind has
her proximity raised at the offender's next fix.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any, Protocol

from redis import RedisError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from device_protocol import Fix
from geofences import Engine, GeofenceEvent
from backend import metrics
from backend.alerts import service as alerts
from backend.alerts.models import Alert
from backend.hub.bus import EventBus
from backend.measures.live import LiveMeasures
from backend.pipeline.clock_correction import ClockPolicy, corrections
from backend.pipeline.context import AlertDraft, Confirmation, Context
from backend.state.store import LastFix, StateStore, Stored

log = logging.getLogger(__name__)

ALERT_KINDS = frozenset({"zone_breach", "proximity", "approach"})
# The alert a non-alerting event belongs to (for its timeline).
NOTE_OF = {
    "zone_breach_cleared": "zone_breach",
    "approach_cleared": "approach",
    "proximity_cleared": "proximity",
    "partner_position_unknown": "proximity",
}
CLOSED_STATES = ("resolved", "false_alarm", "cancelled")


def message_id(event: GeofenceEvent) -> str:
    """The alert's message id: stable for a redelivered or re-evaluated event, and different
    for a possible and a confirmed event of the same time (a confirmed proximity can have the
    time of the possible one, when the victim's better fix is older than the offender's)."""
    return f"geo-{event.measure_id}-{event.kind}-{event.confidence}-{int(event.at)}"


def confirmation(event: GeofenceEvent) -> Confirmation | None:
    """What a confirmed event confirms: the open alert of its measure and kind raised from a
    possible event (message id `geo-{measure}-{kind}-possible-...`), which is upgraded rather
    than joined by a second alert. The engine confirms a breach it first saw possible (an
    accuracy circle across the border, a segment crossing the zone) once a fix lies fully
    inside; a confirmed entry after the offender left and came back finds the possible alert
    of the earlier entry open only when the desk has not closed it, and confirms it as well:
    the desk has one matter open for that place. An alert confirmed already, or closed, is
    not: the event raises a new alert, as every other breach while one is open does.

    A possible event confirms nothing (None): the engine never goes back from confirmed to
    possible within an entry, so one while a confirmed alert is open is a new entry (the zone
    was left, and cleared, in between) and raises its own alert, which a later confirmed event
    may confirm."""
    if event.confidence != "confirmed":
        return None
    return Confirmation(of_prefix=f"geo-{event.measure_id}-{event.kind}-possible-",
                        replaces="geofence_possible", actor="geofence")


def event_detail(event: GeofenceEvent) -> dict[str, Any]:
    """What an alert or a note says about the geofence event (ids and metres, no places)."""
    return {
        "measure_id": event.measure_id,
        "event": event.kind,
        "distance_m": None if event.distance_m is None else round(event.distance_m, 1),
        "inside_m": None if event.inside_m is None else round(event.inside_m, 1),
        "confidence": event.confidence,
        "basis": event.basis,
        "other_device_id": event.other_device_id,
    }


class ZoneNotes(Protocol):
    """Where events that raise no alert go."""

    def record(self, events: list[GeofenceEvent], at: float) -> None: ...


class ConsoleAndTimelineNotes:
    """Publishes each note as a console event (`geofence.<kind>`) and adds it to the timeline of
    the open alert raised for the same measure and device, if any (its own small transaction:
    a note is information, never a reason to hold back the batch)."""

    def __init__(self, sessions: sessionmaker[Session], bus: EventBus) -> None:
        self._sessions = sessions
        self._bus = bus

    def record(self, events: list[GeofenceEvent], at: float) -> None:
        for event in events:
            detail = event_detail(event)
            alert_id = None
            try:
                with self._sessions.begin() as session:
                    alert_id = self._note(session, event, detail, at)
            except SQLAlchemyError as exc:
                log.error("geofence note not stored measure=%s (%s)", event.measure_id,
                          type(exc).__name__)
            self._bus.publish({
                "event": f"geofence.{event.kind}",
                "geofence": {
                    **detail, "case_id": event.case_id, "device_id": event.device_id,
                    "at": event.at, "alert_id": str(alert_id) if alert_id else None,
                },
            })

    def _note(
        self, session: Session, event: GeofenceEvent, detail: dict[str, Any], at: float
    ) -> uuid.UUID | None:
        prefix = f"geo-{event.measure_id}-{NOTE_OF[event.kind]}-"  # of either confidence
        alert_id = session.scalar(
            select(Alert.id)
            # Escaped: an `_` in a measure id is a LIKE wildcard, which also matched the alert
            # of another measure (`zone_a` matched that of `zoneXa`).
            .where(Alert.device_id == event.device_id,
                   Alert.message_id.startswith(prefix, autoescape=True),
                   Alert.state.not_in(CLOSED_STATES))
            .order_by(Alert.raised_at.desc())
            .limit(1)
        )
        if alert_id is not None:
            alerts.add_event(session, alert_id, at=datetime.fromtimestamp(at, UTC),
                             actor="geofence", kind="geofence", detail=detail)
        return alert_id


class ZoneStep:
    def __init__(self, live: LiveMeasures, state: StateStore, notes: ZoneNotes | None = None,
                 clocks: ClockPolicy | None = None) -> None:
        self._live = live
        self._state = state
        self._notes = notes
        self._clocks = clocks or ClockPolicy()

    def refresh(self) -> None:
        """Bring the measures up to date: once per batch, before `related_devices` (a ban
        loaded only later in the batch would find its partner's last fix not taken over)."""
        try:
            self._live.refresh()
        except Exception:  # noqa: BLE001 - a geofence defect must not hold up the batch
            metrics.GEOFENCE_ERRORS.inc()
            log.exception("measures not refreshed")

    def related_devices(self, device_ids: list[str]) -> set[str]:
        """The contact-ban partners of these devices, whose state the step needs too (the
        worker prefetches it with the batch and passes them to `begin_batch`)."""
        index = self._live.engine.index
        related: set[str] = set()
        for device_id in device_ids:
            related.update(d for cm in index.by_subject.get(device_id) or () if cm.contact
                           for d in cm.protected)
            related.update(d for cm in index.by_protected.get(device_id) or ()
                           for d in cm.subjects)
        return related.difference(device_ids)

    def begin_batch(self, device_ids: list[str], again: bool = False) -> None:
        """Before a batch of these devices' messages (with their partners): take over from the
        state store each device's last fix and zone states where the store knows another fix
        or other states than the engine (`moved_devices`): another worker evaluated it, or a
        fix of its contact-ban partner, or this worker restarted.
        `again`: the batch is handled again after a failure, so every device of it goes back
        to what the store holds, which the failed try never wrote (a device the store does not
        know is forgotten). Where the store knows no fix at all (it was emptied) and not
        `again`, the engine keeps what it knows; so it does with the store away."""
        try:
            self._take_over(device_ids, again)
        except Exception:  # noqa: BLE001 - a geofence defect must not hold up the batch
            metrics.GEOFENCE_ERRORS.inc()
            log.exception("geofence states not taken over devices=%d", len(device_ids))

    def _take_over(self, device_ids: list[str], again: bool) -> None:
        if self._live.version is None:
            return  # not loaded yet (database away): the first batch after it takes over
        engine = self._live.engine
        index = engine.index
        concerned = [d for d in dict.fromkeys(device_ids)
                     if d in index.by_subject or d in index.by_protected]
        if not concerned:
            return
        try:
            stored = self._state.read_many(concerned)
        except RedisError as exc:
            log.warning("state store unavailable (%s): zone states as this worker knows them",
                        type(exc).__name__)
            return
        moved = concerned if again else moved_devices(engine, stored, concerned)
        if not moved:
            return
        engine.adopt({d: _fix_dict(stored.fixes.get(d)) for d in moved},
                     {d: stored.zones[d] for d in moved if d in stored.zones})
        if dropped := engine.take_changed():  # states of measures gone: stored without them
            self._state.set_zone_states(dropped)

    def __call__(self, ctx: Context) -> None:
        """Evaluate the message's fresh fixes. Should the evaluation fail (a defect, never
        input: the fixes were validated before), it is logged and counted, and the message
        goes on without it: its fixes are still stored, as the offender's record must be."""
        if not ctx.fresh_fixes or ctx.device is None:
            return
        try:
            self._evaluate(ctx)
        except Exception:  # noqa: BLE001 - a geofence defect must not cost the fix its ping
            metrics.GEOFENCE_ERRORS.inc()
            log.exception("geofence evaluation failed device=%s", ctx.device.id)

    def _evaluate(self, ctx: Context) -> None:
        fixes, device = ctx.fresh_fixes, ctx.device
        assert device is not None
        engine = self._live.engine
        index = engine.index
        subject = index.by_subject.get(device.id)
        protected = index.by_protected.get(device.id)
        if subject is None and protected is None:
            return
        now = ctx.raw.received_at
        partners = self.related_devices([device.id])  # under a contact ban: clocks matter
        behind = (corrections(self._state, [device.id, *partners], now, self._clocks)
                  if partners else None)
        if len(fixes) == 1:
            f = fixes[0]
            events = engine.on_fix(device.id, f.tst, f.lat, f.lon, f.acc, now, behind)
        else:
            events = engine.on_fixes([(device.id, f.tst, f.lat, f.lon, f.acc) for f in fixes],
                                     now, behind)
        if changed := engine.take_changed():
            self._state.set_zone_states(changed)
        if not events:
            return
        notes = []
        for event in events:
            if event.kind in ALERT_KINDS:
                ctx.alerts.append(self._draft(ctx, event, fixes))
            else:
                notes.append(event)
        if notes and self._notes is not None:
            self._notes.record(notes, now)

    def _draft(self, ctx: Context, event: GeofenceEvent, fixes: list[Fix]) -> AlertDraft:
        device = ctx.device
        assert device is not None
        fix: Fix | LastFix | None
        if event.device_id == device.id:
            earlier = [f for f in fixes if f.tst <= event.at]
            fix = earlier[-1] if earlier else fixes[-1]
        else:
            fix = self._state.get_last_fix(event.device_id)
        draft = event_draft(event, ctx.raw.received_at, device.exercise)
        if fix is not None:
            draft.lat, draft.lon, draft.acc, draft.fix_time = fix.lat, fix.lon, fix.acc, fix.tst
            draft.location_source = "fix"
        return draft


def event_draft(event: GeofenceEvent, received_at: float, exercise: bool) -> AlertDraft:
    """The alert draft of an alerting event, received at `received_at`, without a location
    (the step adds the offender's fix). Pure."""
    return AlertDraft(
        type=event.kind,
        device_id=event.device_id,
        case_id=uuid.UUID(event.case_id),
        message_id=message_id(event),
        raised_at=received_at,
        device_time=event.at,
        flags=[f"geofence_{event.confidence}"],
        exercise=exercise,
        detail={"geofence": event_detail(event)},
        confirms=confirmation(event),
    )


def moved_devices(engine: Engine, stored: Stored, device_ids: list[str]) -> list[str]:
    """The devices of which the store holds another last fix or other zone states than the
    engine: another worker evaluated a fix of theirs, or (a contact ban's state, kept under the
    offender) a fix of their partner's. Where the store knows no fix, the engine keeps what it
    knows."""
    return [d for d in device_ids
            if (fix := stored.fixes.get(d)) is not None
            and (fix.tst != engine.last_time(d) or stored.zones.get(d, {}) != engine.states_of(d))]


def _fix_dict(fix: LastFix | None) -> dict[str, Any] | None:
    return None if fix is None else {"tst": fix.tst, "lat": fix.lat, "lon": fix.lon,
                                     "acc": fix.acc}


def zone_step(runtime: Any, state: Any = None) -> ZoneStep:
    """The step wired to a `Runtime`: its live measures, state store (or the worker's view of
    it), console bus, and when clock readings give corrections."""
    return ZoneStep(runtime.geofences, state if state is not None else runtime.state,
                    ConsoleAndTimelineNotes(runtime.sessions, runtime.bus),
                    ClockPolicy.from_settings(runtime.settings.protocol))
