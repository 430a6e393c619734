"""Alert orchestration: raising alerts from pipeline drafts and moving them through their
lifecycle. Each function runs inside the caller's transaction and returns what must be sent once
that transaction has committed (outbox row ids and console events)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Collection
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any, Protocol

from device_protocol import Ack, Topics, codec
from sqlalchemy.orm import Session

from backend.alerts import service
from backend.alerts.document import alert_document, police_document
from backend.alerts.errors import AlertNotFound, InvalidTransition
from backend.alerts.lifecycle import CLOSED_STATES, DEVICE_ACK_STATE, Outcome, decide
from backend.alerts.models import Alert
from backend.auth.tokens import loggable
from backend.cases.snapshots import CaseSnapshots, case_context
from backend.cases.models import Case
from backend.devices.models import Device
from backend.escalation.errors import BadStoredPlan
from backend.escalation.plan_codec import plan_from_json, plan_to_json, recipients_to_json
from backend.hub.bus import EventBus
from backend.outbox import expired
from backend.outbox.dispatcher import OutboxDispatcher, OutboxItem
from backend.pipeline.context import AlertDraft
from backend.regions import RegionIndex, RegionMatch
from backend.routing import (
    AlertFacts,
    CaseFacts,
    CustodyStatus,
    Policy,
    RoutingDecision,
    UnknownAlertType,
    load_policy,
    next_escalation_at,
    route,
)

log = logging.getLogger(__name__)

# Alerts that answer a press of the victim's own device: she is told what happens to them
# (`received` answers every alarm a device sent, of any kind: `AlertDraft.from_alarm`).
VICTIM_FEEDBACK_TYPES = frozenset({"panic", "fall", "test"})

# Alert types routed by the rule of another type (a storm summary is a desk health alert).
ROUTE_AS = {"device_silent_storm": "device_silent"}
# Priority of an alert type the policy does not know (never dropped: the desk sees it).
UNKNOWN_TYPE_PRIORITY = "P2"
# Set in `session.info` where each statement commits as it runs (autocommit, the alarm worker):
# what a hook's `after_change` hands on is committed already, and may go out at once.
EACH_STATEMENT_COMMITS = "alerts.each_statement_commits"


@dataclass(frozen=True)
class FollowUp:
    """What is left to do for a raised alert once the police feed is out: its "raised" timeline
    entry and the follow-up hooks (case log, device commands)."""

    alert: Alert
    document: dict[str, Any]
    actor: str
    detail: dict[str, Any] | None


@dataclass
class Effects:
    """What to do after commit: outbox rows to publish now, and console events."""

    outbox: list[OutboxItem] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    alerts: list[Alert] = field(default_factory=list)
    # Raised alerts whose follow-up still has to run (AlertFlow.follow_up).
    follow_ups: list[FollowUp] = field(default_factory=list)
    # Work to start once the outbox (the police feed) is out: the escalation loop's webhook
    # sends (`DeliveryHook.after_escalation`).
    after_feed: list[Callable[[], None]] = field(default_factory=list)

    def extend(self, other: Effects) -> None:
        self.outbox += other.outbox
        self.events += other.events
        self.alerts += other.alerts
        self.follow_ups += other.follow_ups
        self.after_feed += other.after_feed

    def carry_out(self, dispatcher: OutboxDispatcher, bus: EventBus) -> None:
        """After the commit, in this order: the outbox (the police feed, device acks and
        commands) to the dispatcher, the console events to the bus, then `after_feed`."""
        dispatcher.send(self.outbox)
        for event in self.events:
            bus.publish(event)
        for start in self.after_feed:
            start()


# Between the id a device gave an alarm and the digest of its bytes, in the key of an alarm
# that reused a closed alert's id (`AlertFlow._pressed_again`).
REUSED_ID_SEP = "~"


def device_ref(alert: Alert) -> str | None:
    """The alarm id the device gave, as its acks name it: an alert raised for a reused id is
    keyed `{id}~{digest}`, the device knows only the id."""
    if alert.message_id and "reused_id" in (alert.flags or []):
        return alert.message_id.rsplit(REUSED_ID_SEP, 1)[0]
    return alert.message_id


def derived_again_key(base: str, presses: list[tuple[str, str]]) -> str:
    """The key to raise a press under whose id was derived from its bytes (`base`, the id of a
    closed alert), given the (message id, state) of `base`'s alert and of those raised for it
    again: the key of the open one, if one is open (a retransmission: that alert, nothing
    new), else `{base}~{n}`, n one past the last press's number (`base` itself being 1). Such a
    device sends every press in the same bytes, so a digest cannot tell its presses apart;
    their number does, and two workers taking the same message choose the same key (one
    alert). Pure."""

    def number(key: str) -> int:
        suffix = key[len(base) + len(REUSED_ID_SEP):]
        return int(suffix) if key != base and suffix.isdigit() else 1

    ordered = sorted(presses, key=lambda p: number(p[0]))
    held = [key for key, state in ordered if state not in CLOSED_STATES]
    if held:
        return held[-1]
    last = number(ordered[-1][0]) if ordered else 1
    return f"{base}{REUSED_ID_SEP}{last + 1}"


def confirmed_flags(flags: list[str], replaces: str, confirming: list[str]) -> list[str]:
    """An alert's flags once a draft flagged `confirming` confirmed it: `replaces` (the less
    certain state, `geofence_possible`) gives way, so the flags say what the alert is now and
    never both; the timeline's "raised" entry keeps what it was raised as. Pure."""
    return sorted({f for f in flags if f != replaces} | set(confirming))


def place_warnings(draft: AlertDraft, region: RegionMatch | None) -> list[str]:
    """What the desk must know of where the alert was placed: a position in no municipality
    (open water, or across the border) routed to the nearest one, or one further from every
    municipality than the index looks (routed by the case's home region)."""
    if draft.lat is None or draft.lon is None:
        return []
    if region is None:
        return ["place_outside_regions"]
    return [] if region.exact else ["place_nearest_municipality"]


def _dt(ts: float | None) -> datetime | None:
    return datetime.fromtimestamp(ts, UTC) if ts is not None else None


def _region_dict(match: RegionMatch | None) -> dict[str, Any] | None:
    if match is None:
        return None
    return {
        "police_unit": match.police_unit, "police_unit_name": match.police_unit_name,
        "vr_code": match.vr_code, "gemeente_code": match.gemeente_code,
        "vt_desk_code": match.vt_desk_code, "exact": match.exact,
    }


def _enqueue(session: Session, rows: list[dict[str, Any]]) -> list[OutboxItem]:
    ids = service.enqueue(session, rows)
    return [OutboxItem(i, r["target"], r["payload"], r["qos"])
            for i, r in zip(ids, rows, strict=True)]


def acknowledged_at(alert: Alert, changes: dict[str, Any] | None = None) -> datetime | None:
    """When a person took the alert on (acknowledged, or dispatched without acknowledging)."""
    changes = changes or {}
    return (
        changes.get("acknowledged_at") or alert.acknowledged_at
        or changes.get("dispatched_at") or alert.dispatched_at
    )


def event_scope(alert: Alert, reference: str | None, home_vr: str | None,
                director: str | None, home_unit: str | None) -> dict[str, Any]:
    """What decides who may see an alert event (`backend.audit.guard.screen_event_alone`),
    carried with the event so that each console's screen needs no database read. The API
    strips it before a frame leaves."""
    return _scope(alert.police_unit, bool(alert.told_police), alert.case_id, reference,
                  home_vr, director, home_unit)


def case_scope(case: Case) -> dict[str, Any]:
    """`event_scope` for an event about a case itself (custody, pursuit): it reaches whoever
    sees the case's alerts that are raised at home, and the police of its home unit."""
    return _scope(case.home_police_unit, True, case.id, case.reference, case.home_vr_code,
                  case.case_director, case.home_police_unit)


def _scope(police_unit: str | None, told_police: bool, case_id: uuid.UUID | None,
           reference: str | None, home_vr: str | None, director: str | None,
           home_unit: str | None) -> dict[str, Any]:
    return {"police_unit": police_unit, "told_police": told_police,
            "case_id": str(case_id) if case_id else None, "case_reference": reference,
            "case_home_vr": home_vr, "case_director": director, "case_home_unit": home_unit}


def alert_event(session: Session, name: str, alert: Alert, document: dict[str, Any],
                **extra: Any) -> dict[str, Any]:
    """A console event about an alert, carrying its scope facts (`event_scope`) so that each
    console's stream screens it without a database read. Reads the alert's case (from the
    session's identity map when it is already loaded)."""
    case = session.get(Case, alert.case_id) if alert.case_id else None
    scope = event_scope(alert, case.reference if case else None,
                        case.home_vr_code if case else None,
                        case.case_director if case else None,
                        case.home_police_unit if case else None)
    return {"event": name, "alert": document, **extra, "scope": scope}


def police_feeds(recipients: list[dict[str, Any]] | None) -> list[str]:
    """The police units whose MQTT feed gets the alert: each police unit among its recipients,
    once (the unit of its place, and the case's home unit when it is elsewhere). An exercise
    alert's police recipient is the exercise endpoint: its feed, never the live unit's."""
    return list(dict.fromkeys(
        r["code"] for r in recipients or [] if r.get("kind") == "police_unit"))


def police_told(alert: Alert) -> list[str]:
    """The police units whose feed has had the alert: those of its recipients
    (`police_feeds`), and those an escalation step carried out so far called directly (an
    alert the desk had alone, such as an `approach` under custody tightening, reaches the
    unit only when it escalates). Each of them hears of every later change. Pure.

    A step counts only once the alert is `told_police`: the plan's position alone does not
    say that its step to the police was carried out (an alert acknowledged before that step
    and re-alerted later stands past it, and never called the police)."""
    if not alert.told_police:
        return police_feeds(alert.recipients)
    steps = (alert.escalation or {}).get("steps") if isinstance(alert.escalation, dict) else None
    done = alert.escalation_step if alert.escalation_step is not None else -1
    called = [r for step in steps or [] if isinstance(step, dict)
              and step.get("target") == "police_unit" and isinstance(step.get("index"), int)
              and step["index"] <= done for r in step.get("recipients") or []
              if isinstance(r, dict)]
    return police_feeds([*(alert.recipients or []), *called])


class AlertHook(Protocol):
    """Runs for every raise and every transition of an alert, in a transaction that commits or
    rolls back what it writes with the change; it adds outbox items and console events to
    `effects`.

    `phase` says which transaction, for a raise: "alert" hooks (what the police hand-off needs,
    such as webhook deliveries) run in the alert's own transaction; "follow_up" hooks (case log,
    device commands) may run in a second one right after, so that the police feed does not wait
    for them (see `AlertFlow.raise_alerts`). A hook without the attribute is an "alert" hook.
    """

    def after_change(
        self, session: Session, alert: Alert, document: dict[str, Any], effects: Effects
    ) -> None: ...

    # Optional, "alert" hooks only: called for a raise before the alert's row is written, so a
    # hook can set columns of that row (and the document) instead of updating it afterwards,
    # and return rows of its own tables to write with the alert, only if the alert is new:
    # def prepare(self, session: Session, alert: Alert, document: dict[str, Any]
    #             ) -> list[tuple[Table, list[dict[str, Any]]]]
    # Optional: called by the escalation loop, in its transaction, for a step that goes to the
    # police unit directly (`escalation`: the step as the document's `escalation` member):
    # def after_escalation(self, session: Session, alert: Alert, document: dict[str, Any],
    #                      escalation: dict[str, Any], effects: Effects) -> None


def _phase(hook: AlertHook) -> str:
    return getattr(hook, "phase", "alert")


class AlertFlow:
    def __init__(
        self, topics: Topics, regions: RegionIndex, fallback_police_unit: str,
        hooks: list[AlertHook] | None = None, policy: Policy | None = None,
    ) -> None:
        self._topics = topics
        self._regions = regions
        self._fallback_unit = fallback_police_unit
        self.hooks: list[AlertHook] = list(hooks or [])
        # VR codes running an exercise: the alerts of no case located there (grouped health
        # summaries) are drills; a case's alerts are drills only when the case is flagged
        # `exercise`: a real victim's panic in a region holding an exercise goes to the live
        # police (settings.police).
        self.exercise_regions: frozenset[str] = frozenset()
        self.policy = policy or load_policy()
        # Case facts for routing and the document, kept a few seconds (forget() on changes).
        self.cases = CaseSnapshots()

    def forget_caches(self, case_ids: Collection[uuid.UUID] | None = None) -> None:
        """Drop what the flow keeps of these cases (None: of every case) and what its hooks
        keep of subscriptions (call after an API change, so this process sees it at once;
        alarm workers elsewhere within a second)."""
        self.cases.changed(case_ids)
        self.forget_hooks()

    def forget_hooks(self) -> None:
        """Drop what the flow's hooks keep (subscriptions), after a change of them."""
        for hook in self.hooks:
            forget = getattr(hook, "forget", None)
            if forget is not None:
                forget()

    def route_draft(
        self, draft: AlertDraft, facts: CaseFacts, region: RegionMatch | None, at: datetime
    ) -> RoutingDecision | None:
        """The routing decision for a draft, or None for a type the policy does not know."""
        alert_facts = AlertFacts(
            type=ROUTE_AS.get(draft.type, draft.type), raised_at=at,
            test=draft.type == "test", exercise=draft.exercise, device_id=draft.device_id,
        )
        try:
            return route(alert_facts, facts, region, self.policy, at,
                         fallback_police_unit=self._fallback_unit)
        except UnknownAlertType:
            log.warning("no routing rule for alert type %s: desk only", draft.type)
            return None
        except Exception:  # noqa: BLE001 - an alarm must be raised whatever routing trips on
            # A bug, or case data routing cannot use (custody, contacts): routed without them,
            # flagged, rather than an alarm that is never raised.
            log.exception("routing failed for alert type %s of case %s: routed without the "
                          "case's custody and contacts", draft.type, facts.case_id)
            draft.flags.append("routing_fallback")
            return route(alert_facts, replace(facts, custody=CustodyStatus(), contacts=()),
                         region, self.policy, at, fallback_police_unit=self._fallback_unit)

    # -- raising --------------------------------------------------------------------------------
    def raise_alerts(
        self, session: Session, drafts: list[AlertDraft], *, follow_up: bool = True,
        committed: Callable[[list[OutboxItem]], None] | None = None,
    ) -> Effects:
        """Raise the drafts' alerts (a redelivered draft raises nothing new). A draft that
        confirms an open alert upgrades that one instead (`_confirm`).

        With `follow_up=False` only the "alert" hooks run; the caller commits, publishes the
        police feed, acknowledges the message, then calls `follow_up(session,
        effects.follow_ups)` in a second transaction. A crash in between leaves
        `followed_up_at` empty, and the follow-up sweep (`backend.alerts.follow_up_sweep`), or
        a redelivered message, finishes the follow-up.

        `committed`, only where each statement commits on its own (autocommit), gets an alert's
        outbox rows (the police feed, the device ack) as soon as its statement has returned,
        before the rest of the raise; the effects then do not carry them."""
        effects = Effects()
        for draft in drafts:
            confirmed = self._confirm(session, draft, effects.follow_ups)
            effects.extend(confirmed if confirmed is not None
                           else self._raise_one(session, draft, committed))
        if follow_up and effects.follow_ups:
            effects.extend(self.follow_up(session, effects.follow_ups))
            effects.follow_ups = []
        return effects

    def follow_up(self, session: Session, pending: list[FollowUp]) -> Effects:
        """Write the "raised" timeline entries and run the follow-up hooks, once per alert."""
        effects = Effects()
        now = datetime.now(UTC)
        for item in pending:
            alert = item.alert
            # The alert row first, then what the hooks lock (the case row): the same order as a
            # transition, so the two never deadlock. Whoever claims it first runs it, once.
            if not service.mark_followed_up(session, alert.id, now):
                continue
            service.add_event(
                session, alert.id, at=alert.raised_at, actor=item.actor, kind="raised",
                to_state="new", detail=item.detail,
            )
            for hook in self.hooks:
                if _phase(hook) == "follow_up":
                    hook.after_change(session, alert, item.document, effects)
        return effects

    def finish_follow_up(self, session: Session, alert: Alert) -> Effects:
        """Run the follow-up of a raised alert whose follow-up never ran (the process that
        raised it died first, or gave it up), as its raise would have: once, whoever claims it
        first (`FollowUpSweep`, an operator's transition)."""
        return self.follow_up(session, [self._follow_up_of(session, alert)])

    def _follow_up_of(
        self, session: Session, alert: Alert, draft: AlertDraft | None = None
    ) -> FollowUp:
        device_id = draft.device_id if draft else alert.device_id
        detail = {"flags": list(alert.flags or []), **(draft.detail if draft else {})}
        return FollowUp(
            alert, self._document(session, alert),
            f"device:{device_id}" if device_id else "system:supervision", detail,
        )

    def _unfinished(self, session: Session, draft: AlertDraft) -> Effects:
        """A redelivered draft: nothing new, unless its follow-up never ran (a crash), or the
        device was never told about its alarm (`_ack_again`)."""
        alert = service.of_message(session, draft.device_id, draft.message_id)
        if alert is None:
            return Effects()
        effects = self._ack_again(session, alert)
        if alert.followed_up_at is None:
            effects.follow_ups.append(self._follow_up_of(session, alert, draft))
        return effects

    def _confirm(
        self, session: Session, draft: AlertDraft, pending: list[FollowUp]
    ) -> Effects | None:
        """A draft that confirms an open alert raised from a less certain event of the same
        thing (`AlertDraft.confirms`: a geofence breach first possible, then confirmed): that
        alert is upgraded, as an operator's transition changes one, instead of a second alert
        for one event. Its sequence goes up, the draft's flags replace the one it `replaces`
        (its timeline keeps what it was raised as), a `confirmed` entry with the draft's detail
        goes on its timeline, and whoever was told of it hears of it again: the police feeds it
        went to (`police_told`, a CAP Update), the consoles and every hook (webhooks, case
        log). Nothing changes for a draft that confirmed an alert already or raised its own (a
        redelivery). None when there is nothing to confirm (no such alert is open, or it was
        confirmed by another event): the draft is raised as any other.

        `pending`: follow-ups of alerts raised earlier in this batch, not run yet; one of the
        alert confirmed runs first, so that its timeline and the case log keep the raise before
        the confirmation (as an operator's transition does)."""
        confirms = draft.confirms
        if confirms is None or draft.message_id is None:
            return None  # without a message id a redelivery could not be told: raised
        held = service.of_message_or_confirmation(session, draft.device_id, draft.message_id)
        if held is not None:
            # Raised for this message id: the raise finds it (a redelivery, to finish).
            return Effects() if held.message_id != draft.message_id else None
        alert_id = service.open_to_confirm(session, draft.device_id, draft.type, confirms.of_prefix)
        if alert_id is None:
            return None
        alert = service.lock(session, alert_id)
        if alert is None or alert.confirmed_by is not None or alert.state in CLOSED_STATES:
            # Moved on before the lock: confirmed by this very draft (a redelivery handled at
            # the same moment) is nothing new, anything else is raised as usual.
            return Effects() if alert is not None and alert.confirmed_by == draft.message_id \
                else None
        early = Effects()
        if alert.followed_up_at is None:
            raise_follow_up = next((f for f in pending if f.alert.id == alert.id), None)
            early.extend(self.follow_up(
                session, [raise_follow_up or self._follow_up_of(session, alert)]))
        now = datetime.now(UTC)
        flags = confirmed_flags(alert.flags or [], confirms.replaces, draft.flags)
        service.change_locked(session, alert.id, {
            "flags": flags, "confirmed_by": draft.message_id, "updated_at": now})
        alert = service.get(session, alert_id)
        assert alert is not None
        service.add_event(
            session, alert.id, at=now, actor=confirms.actor, kind="confirmed",
            from_state=alert.state, to_state=alert.state,
            detail={"message_id": draft.message_id, "flags": flags, **draft.detail},
        )
        document = self._document(session, alert)
        items = _enqueue(session, [self._police_row(alert, document, u)
                                   for u in police_told(alert)])
        log.info("alert confirmed id=%s type=%s device=%s", alert.id, alert.type,
                 alert.device_id)
        effects = Effects(items, [alert_event(session, "alert.updated", alert, document)])
        for hook in self.hooks:
            hook.after_change(session, alert, document, effects)
        early.extend(effects)
        return early

    @staticmethod
    def _pressed_again(session: Session, draft: AlertDraft) -> AlertDraft | None:
        """An alarm whose id is an alert's that is closed, in other bytes than that alarm's: a
        new press reusing an old id (a device counting its ids from 1 again after a reset),
        not a retransmission (which sends the same bytes). It must not be lost: it is raised
        anew, keyed `{id}~{digest of its bytes}` (its own retransmissions find that key) and
        flagged `reused_id`; its acks name the id the device gave (`device_ref`).

        An alarm without a usable id (`derived_id`: derived from its bytes) is a new press in
        the same bytes too: firmware that sends one body for every press (`{}`, or no id)
        would otherwise have its first press raised and every one after the desk closed it
        taken for a retransmission, for good. It is keyed `{id}~2`, `{id}~3`, ...
        (`derived_again_key`); while one of them is open, the same bytes are that alert's.
        A retransmission that comes after the desk closed the alert is raised anew as well:
        it cannot be told from a press, and a second alert the desk closes is the safe side
        of losing one. The broker's retained copy of an alarm (`replayed`), sent again at every
        subscribe, is never a new press: each reconnect of the worker raised it anew. None for
        anything else."""
        if (not draft.from_alarm or draft.press is None or draft.replayed
                or "reused_id" in draft.flags):
            return None
        alert = service.of_message(session, draft.device_id, draft.message_id)
        if alert is None or alert.state not in CLOSED_STATES or draft.message_id is None:
            return None
        if draft.derived_id:
            key = derived_again_key(draft.message_id, service.presses(
                session, draft.device_id, draft.message_id, REUSED_ID_SEP))
        elif alert.press == draft.press:
            return None
        else:
            key = f"{draft.message_id}{REUSED_ID_SEP}{draft.press}"
        return replace(draft, message_id=key, flags=[*draft.flags, "reused_id"])

    def _ack_again(self, session: Session, alert: Alert) -> Effects:
        """The device retransmits an alarm until it hears `received`: when its ack was given up
        (`backend.outbox.expired`: the broker did not take it within the deadline), the
        retransmission is answered with `received` and, when the alert has moved on since,
        its state now, each dated when the alert got there. Otherwise (the ack is on its way
        or the broker has it) nothing new."""
        if (not alert.message_id or not alert.device_id or not expired.ack_given_up(
                session, alert.id, self._topics.ack(alert.device_id))):
            return Effects()
        rows = [self._ack_row(alert, "new", alert.raised_at)]
        if alert.state != "new" and alert.type in VICTIM_FEEDBACK_TYPES:
            rows.append(self._ack_row(alert, alert.state, alert.updated_at or alert.raised_at))
        items = _enqueue(session, rows)
        log.info("alert %s: device %s told its state again, its ack was given up", alert.id,
                 alert.device_id)
        return Effects(items)

    @staticmethod
    def _document(session: Session, alert: Alert) -> dict[str, Any]:
        case = session.get(Case, alert.case_id) if alert.case_id else None
        device = session.get(Device, alert.device_id) if alert.device_id else None
        return alert_document(
            alert, device_role=device.role if device else None,
            case=case_context(case) if case else None,
        )

    def _raise_one(
        self, session: Session, draft: AlertDraft,
        committed: Callable[[list[OutboxItem]], None] | None = None,
    ) -> Effects:
        if draft.while_none_open and service.has_open(session, draft.device_id, draft.type):
            # Nothing new while one is open; but the open one may be this draft's own, raised
            # before a crash: finish it as any redelivery (its follow-up, the device's ack).
            return self._unfinished(session, draft)
        # Grouped health alerts may have no case (unassigned devices) or no device (storms).
        case = self.cases.get(session, draft.case_id) if draft.case_id else None
        device_role = case.device_roles.get(draft.device_id) if case and draft.device_id else None
        region = None
        if draft.lat is not None and draft.lon is not None:
            region = self._regions.locate(draft.lat, draft.lon)
        vr_code = region.vr_code if region else (case.home_vr_code if case else None)
        if case is not None and case.exercise:
            draft.exercise = True  # whatever raised it: a device, supervision, a geofence
        elif not draft.exercise and case is None and vr_code in self.exercise_regions:
            draft.exercise = True  # a live case's alert is never made a drill by its place
        raised_at = _dt(draft.raised_at)
        assert raised_at is not None
        facts = case.facts if case else CaseFacts(case_id="")
        decision = self.route_draft(draft, facts, region, raised_at)
        unit = (decision.police_unit if decision else None) or (
            case.home_police_unit if case else None
        ) or self._fallback_unit
        priority = decision.priority if decision else UNKNOWN_TYPE_PRIORITY
        recipients = recipients_to_json(decision.recipients) if decision else []
        if decision is not None and "police_fallback" in decision.warnings:
            # Neither the alert's place nor its case names a unit: the routing told the
            # fallback unit (now or in the escalation plan) rather than no police at all.
            draft.flags.append("police_fallback")
        plan = decision.escalation if decision else None
        alert = Alert(
            id=uuid.uuid4(),
            case_id=draft.case_id,
            device_id=draft.device_id,
            message_id=draft.message_id,
            type=draft.type,
            priority=priority,
            state="new",
            sequence=1,
            raised_at=raised_at,
            device_time=_dt(draft.device_time) if "clock_skew" not in draft.flags else None,
            lat=draft.lat, lon=draft.lon, acc=draft.acc, fix_time=_dt(draft.fix_time),
            location_source=draft.location_source,
            flags=sorted(set(draft.flags)),
            police_unit=unit,
            told_police=bool(police_feeds(recipients)),
            region=_region_dict(region),
            exercise=draft.exercise,
            updated_at=raised_at,
            recipients=recipients,
            escalation=(
                {**plan_to_json(plan),
                 "warnings": [*decision.warnings, *place_warnings(draft, region)]}
                if plan and decision else None
            ),
            escalation_step=0 if plan else None,  # step 0 (notify) is this raise
            next_escalation_at=(
                next_escalation_at(plan, raised_at, None, None, 0) if plan else None
            ),
            health_devices=draft.detail.get("devices") if draft.detail else None,
            press=draft.press,
        )
        document = alert_document(
            alert, device_role=device_role, case=case.context if case else None,
        )
        rows = [self._police_row(alert, document, u) for u in police_feeds(alert.recipients)]
        if alert.message_id and (draft.from_alarm or alert.type in VICTIM_FEEDBACK_TYPES):
            rows.append(self._ack_row(alert, "new", raised_at))
        companions = []  # rows hooks write with the alert (in one statement on PostgreSQL)
        for hook in self.hooks:
            prepare = getattr(hook, "prepare", None)
            if prepare is not None and _phase(hook) == "alert":
                companions += prepare(session, alert, document)
        values = {c.key: getattr(alert, c.key) for c in Alert.__table__.columns}
        ids = service.raise_alert(session, values, rows, companions)
        if ids is None:
            if (again := self._pressed_again(session, draft)) is not None:
                return self._raise_one(session, again, committed)
            return self._unfinished(session, draft)  # a redelivery of an alert we hold
        items = [OutboxItem(i, r["target"], r["payload"], r["qos"])
                 for i, r in zip(ids, rows, strict=True)]
        if committed is not None:
            committed(items)
            items = []
        log.info("alert raised id=%s type=%s device=%s", alert.id, alert.type, alert.device_id)
        scope = event_scope(
            alert, case.context["reference"] if case else None,
            case.home_vr_code if case else None, case.facts.case_director_id if case else None,
            case.home_police_unit if case else None,
        )
        effects = Effects(
            items, [{"event": "alert.raised", "alert": document, "scope": scope}], [alert]
        )
        for hook in self.hooks:
            if _phase(hook) == "alert":
                hook.after_change(session, alert, document, effects)
        effects.follow_ups.append(FollowUp(
            alert, document,
            f"device:{draft.device_id}" if draft.device_id else "system:supervision",
            {"flags": alert.flags, **draft.detail},
        ))
        return effects

    # -- lifecycle ------------------------------------------------------------------------------
    def transition(
        self, session: Session, alert_id: uuid.UUID, action: str, actor: str,
        note: str | None = None, now: datetime | None = None,
    ) -> tuple[Alert, Effects]:
        """Apply an operator's action. Repeating one that already happened changes nothing,
        but for its note: a colleague acknowledged first, say, and what this operator wrote
        goes on the timeline all the same (`_note_only`)."""
        now = now or datetime.now(UTC)
        early = Effects()
        for _ in range(5):  # bounded: each retry means another operator moved the alert first
            alert = service.get(session, alert_id)
            if alert is None:
                raise AlertNotFound(str(alert_id))
            decision = decide(alert.state, action)
            if decision.outcome is Outcome.NOOP:
                return alert, self._note_only(session, alert, actor, note, now)
            if alert.followed_up_at is None and decision.outcome is Outcome.APPLY:
                # The raise's follow-up (case log, commands) has not run yet: run it first, so
                # the case log keeps the raise before this transition.
                early.extend(self.finish_follow_up(session, alert))
            if decision.outcome is Outcome.INVALID:
                raise InvalidTransition(f"cannot {action} an alert that is {alert.state}")
            values: dict[str, Any] = {"state": decision.to_state, "updated_at": now}
            if decision.to_state == "acknowledged":
                values["acknowledged_at"] = now
            elif decision.to_state == "dispatched":
                values["dispatched_at"] = now
            elif decision.to_state in ("resolved", "false_alarm", "cancelled"):
                values["closed_at"] = now
            values["next_escalation_at"] = self._next_deadline(alert, values)
            if service.compare_and_set_state(session, alert_id, alert.state, values):
                break
        else:
            raise InvalidTransition("the alert kept changing; try again")
        from_state = alert.state
        alert = service.get(session, alert_id)
        assert alert is not None
        service.add_event(
            session, alert.id, at=now, actor=actor, kind="transition",
            from_state=from_state, to_state=alert.state, detail={"note": note} if note else None,
        )
        document = self._document(session, alert)
        rows = [self._police_row(alert, document, u) for u in police_told(alert)]
        if alert.type in VICTIM_FEEDBACK_TYPES and alert.message_id and alert.device_id:
            rows.append(self._ack_row(alert, alert.state, now))
        items = _enqueue(session, rows)
        log.info("alert %s id=%s by=%s", alert.state, alert.id, loggable(actor))
        effects = Effects(items, [alert_event(session, "alert.updated", alert, document)],
                          [alert])
        for hook in self.hooks:
            hook.after_change(session, alert, document, effects)
        early.extend(effects)
        return alert, early

    def _note_only(self, session: Session, alert: Alert, actor: str, note: str | None,
                   now: datetime) -> Effects:
        """The note of an action that changed nothing, as a timeline entry of its own (kind
        `note`), and the consoles told; nothing at all without a note."""
        if not note:
            return Effects()
        service.add_event(session, alert.id, at=now, actor=actor, kind="note",
                          from_state=alert.state, to_state=alert.state, detail={"note": note})
        log.info("alert note id=%s by=%s", alert.id, loggable(actor))
        return Effects(events=[alert_event(session, "alert.updated", alert,
                                           self._document(session, alert))])

    @staticmethod
    def _next_deadline(alert: Alert, values: dict[str, Any]) -> datetime | None:
        """When the escalation loop must look at the alert again after this transition. A
        stored plan that cannot be read does not stop the transition (the desk must be able to
        acknowledge): the loop looks at the alert again now, and logs it."""
        if alert.escalation is None or "closed_at" in values:
            return None
        try:
            plan = plan_from_json(alert.escalation)
        except BadStoredPlan:
            log.error("alert id=%s: stored escalation plan unreadable", alert.id)
            return datetime.now(UTC)
        return next_escalation_at(
            plan, alert.raised_at, acknowledged_at(alert, values), None, alert.escalation_step,
        )

    # -- outbox rows ----------------------------------------------------------------------------
    def _police_row(self, alert: Alert, document: dict[str, Any], unit: str) -> dict[str, Any]:
        return {
            "alert_id": alert.id, "channel": "mqtt",
            "target": self._topics.police_alerts(unit),
            "payload": codec.encode_document(police_document(document)), "qos": 1,
            "status": "pending", "attempts": 0, "created_at": alert.updated_at,
        }

    def _ack_row(self, alert: Alert, state: str, at: datetime) -> dict[str, Any]:
        ack = Ack(ref=device_ref(alert), state=DEVICE_ACK_STATE[state], tst=at.timestamp())
        return {
            "alert_id": alert.id, "channel": "mqtt",
            "target": self._topics.ack(alert.device_id or ""),
            "payload": codec.encode(ack), "qos": 1, "status": "pending", "attempts": 0,
            "created_at": at,
        }
