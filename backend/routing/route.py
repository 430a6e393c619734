"""The routing decision: (alert, case, region, policy, now) -> priority, recipients, escalation.

Pure: no I/O, no clock of its own (`now` is passed in). Rules, in order:

1. Region: the location's region (`RegionMatch`, also when it came from the open-water fallback);
   without one, the case's home region. Region overrides of the policy apply for that region.
2. Test presses (`alert.test` or type `test`) are P4, go to the Veilig Thuis desk only, are marked
   test, never tighten and never escalate beyond the desk.
3. Custody release: within the tightening period every other alert goes one step up (never above
   P1) and the case's named contacts of the configured organisations are added.
4. When the location lies outside the case's home region, the home desk and home police unit are
   added for the roles the alert type routes to (policy `also_notify_home_region`).
5. Exercise alerts never reach live recipients: every recipient, including those of the
   escalation plan, is replaced by the test endpoint of its kind.

Missing codes (no region, no 3RO contact, ...) do not stop routing: the recipient is left out and
the decision carries a warning, so the console can tell the operator to phone. The police are the
exception: where neither the place nor the case names a unit, a given fallback unit
(`routing.fallback_police_unit`) stands in, at the raise and in the escalation plan alike,
with the warning `police_fallback` instead of `no_police_unit`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from backend.regions.models import RegionMatch
from backend.routing.custody import custody_tightening, raise_priority
from backend.routing.decision import (
    EscalationPlan,
    EscalationStep,
    Recipient,
    RegionSource,
    RoutingDecision,
)
from backend.routing.errors import UnknownAlertType
from backend.routing.facts import AlertFacts, CaseFacts, require_aware
from backend.routing.policy import TEST_TYPE, EscalationChain, Policy, Priority, RecipientKind

DESK_TARGETS = frozenset({"primary", "vt_desk", "desk_supervisor"})


class _Resolver:
    """Turns roles and targets into recipients for one alert, collecting warnings."""

    def __init__(
        self,
        alert: AlertFacts,
        case: CaseFacts,
        police_unit: str | None,
        vt_desk: str | None,
        source: RegionSource,
        fallback_police_unit: str | None = None,
    ) -> None:
        self.alert = alert
        self.case = case
        self.police_unit = police_unit
        self.fallback_police_unit = fallback_police_unit
        self.vt_desk = vt_desk
        self.source = source
        self.warnings: list[str] = []

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def _one(
        self, kind: RecipientKind, code: str | None, reason: str, missing: str
    ) -> list[Recipient]:
        if code is None:
            self.warn(missing)
            return []
        return [Recipient(kind=kind, code=code, reason=reason)]

    def _police(self, reason: str) -> list[Recipient]:
        if self.police_unit is None and self.fallback_police_unit is not None:
            self.warn("police_fallback")
            return [Recipient(kind="police_unit", code=self.fallback_police_unit,
                              reason="fallback police unit: no unit for the alert's place or "
                                     "its case")]
        return self._one("police_unit", self.police_unit, reason, "no_police_unit")

    def role(self, role: str) -> list[Recipient]:
        where = {"location": "of the location", "home": "of the case's home region", "none": ""}[
            self.source
        ]
        if role == "police_unit":
            return self._police(f"police unit {where}")
        if role == "vt_desk":
            return self._one("vt_desk", self.vt_desk, f"Veilig Thuis desk {where}", "no_vt_desk")
        if role == "three_ro":
            if self.alert.device_id in self.case.victim_device_ids:
                # The offender's probation officer hears nothing of the victim's own device
                # (a tamper of hers): not his to know, and no need to warn that he is missing.
                return []
            contact = self.case.contact("three_ro")
            return self._one(
                "three_ro",
                contact.id if contact else None,
                "named 3RO/Reclassering contact of the case",
                "no_three_ro_contact",
            )
        if role == "case_director":
            return self._one(
                "case_director", self.case.case_director_id, "case director", "no_case_director"
            )
        raise ValueError(f"unknown recipient role {role!r}")

    def victim(self, feedback: str) -> list[Recipient]:
        if feedback == "ack":
            devices = (
                (self.alert.device_id,) if self.alert.device_id else self.case.victim_device_ids
            )
            reason = "device ack: help is coming"
        else:
            devices = self.case.victim_device_ids
            reason = "warn the victim"
        if not devices:
            self.warn("no_victim_device")
        return [Recipient(kind="victim_device", code=device, reason=reason) for device in devices]

    def target(self, target: str, primary: tuple[Recipient, ...]) -> tuple[Recipient, ...]:
        if target == "primary":
            return tuple(r for r in primary if r.kind != "victim_device")
        if target == "desk_supervisor":
            return tuple(
                self._one(
                    "desk_supervisor",
                    self.vt_desk,
                    "escalation: supervisor of the desk",
                    "no_vt_desk",
                )
            )
        if target == "police_unit":
            return tuple(self._police("escalation: call the police unit directly"))
        return tuple(self.role(target))


def _dedupe(recipients: list[Recipient]) -> tuple[Recipient, ...]:
    seen: set[tuple[str, str | None]] = set()
    unique = []
    for recipient in recipients:
        key = (recipient.kind, recipient.code)
        if key not in seen:
            seen.add(key)
            unique.append(recipient)
    return tuple(unique)


def _exercise(recipients: tuple[Recipient, ...], policy: Policy) -> tuple[Recipient, ...]:
    endpoints = policy.exercise.endpoints
    return tuple(
        Recipient(
            kind=r.kind,
            code=endpoints[r.kind],
            reason=f"exercise: {r.reason}",
            exercise=True,
            stands_in_for=r.code,
        )
        for r in recipients
    )


def _plan(
    chain: EscalationChain,
    priority: Priority,
    primary: tuple[Recipient, ...],
    resolver: _Resolver,
    desk_only: bool,
) -> EscalationPlan:
    steps: list[EscalationStep] = []
    for config in chain.steps:
        if desk_only and config.target not in DESK_TARGETS:
            continue
        steps.append(
            EscalationStep(
                index=len(steps),
                after_seconds=config.after_s,
                action=config.action,
                target=config.target,
                recipients=resolver.target(config.target, primary),
            )
        )
    realert_target = chain.realert_target
    if desk_only and realert_target not in DESK_TARGETS:
        realert_target = "primary"
    return EscalationPlan(
        priority=priority,
        steps=tuple(steps),
        realert_after_seconds=chain.realert_unresolved_after_s,
        realert_target=realert_target,
        realert_recipients=resolver.target(realert_target, primary),
    )


def route(
    alert: AlertFacts,
    case: CaseFacts,
    region: RegionMatch | None,
    policy: Policy,
    now: datetime,
    *,
    fallback_police_unit: str | None = None,
) -> RoutingDecision:
    """Decide priority, recipients and escalation plan of one alert. Pure. The police unit
    of the place or the case, else `fallback_police_unit`, is told where the police are."""
    require_aware(now, "now")
    is_test = alert.test or alert.type == TEST_TYPE

    source: RegionSource
    police_unit: str | None
    vt_desk: str | None
    vr: str | None
    if region is not None:
        source, police_unit, vt_desk, vr = (
            "location",
            region.police_unit,
            region.vt_desk_code,
            region.vr_code,
        )
    elif case.home_police_unit or case.home_vt_desk or case.home_vr:
        source, police_unit, vt_desk, vr = (
            "home",
            case.home_police_unit,
            case.home_vt_desk,
            case.home_vr,
        )
    else:
        source, police_unit, vt_desk, vr = "none", None, None, None

    rules = policy.rules_for(vr, police_unit)
    rule_type = TEST_TYPE if is_test else alert.type
    rule = rules.alert_types.get(rule_type)
    if rule is None:
        raise UnknownAlertType(f"no routing rule for alert type {alert.type!r}")

    resolver = _Resolver(alert, case, police_unit, vt_desk, source, fallback_police_unit)
    if source == "none":
        resolver.warnings.append("no_region")

    priority = rule.priority
    recipients: list[Recipient] = []
    tightening = None if is_test else custody_tightening(case, policy, now)

    if is_test:
        recipients += [
            replace(r, reason=f"test alarm (marked test): {r.reason}")
            for r in resolver.role("vt_desk")
        ]
    else:
        for role in rule.recipients:
            recipients += resolver.role(role)
        if rule.victim is not None:
            recipients += resolver.victim(rule.victim)
        if source == "location" and rules.also_notify_home_region:
            if "vt_desk" in rule.recipients and case.home_vt_desk not in (None, vt_desk):
                recipients.append(
                    Recipient(
                        "vt_desk",
                        case.home_vt_desk,
                        "home desk of the case (alert outside home region)",
                    )
                )
            if "police_unit" in rule.recipients and case.home_police_unit not in (
                None,
                police_unit,
            ):
                recipients.append(
                    Recipient(
                        "police_unit",
                        case.home_police_unit,
                        "home police unit of the case (alert outside home region)",
                    )
                )
        if tightening is not None:
            priority = raise_priority(priority, tightening.priority_steps_up)
            released = tightening.released_at.date().isoformat()
            for organisation in tightening.notify_contacts:
                contact = case.contact(organisation)
                if contact is None:
                    resolver.warn(f"no_{organisation}_contact")
                    continue
                recipients.append(
                    Recipient(
                        "contact",
                        contact.id,
                        f"custody release on {released}: named {organisation} contact",
                    )
                )

    primary = _dedupe(recipients)
    plan = _plan(rules.escalation[priority], priority, primary, resolver, desk_only=is_test)

    if alert.exercise:
        primary = _exercise(primary, policy)
        plan = replace(
            plan,
            steps=tuple(replace(s, recipients=_exercise(s.recipients, policy)) for s in plan.steps),
            realert_recipients=_exercise(plan.realert_recipients, policy),
        )

    first = next((s for s in plan.steps if s.after_seconds > 0), None)
    deadline = alert.raised_at + timedelta(seconds=first.after_seconds) if first else None
    return RoutingDecision(
        alert_type=alert.type,
        priority=priority,
        recipients=primary,
        escalation=plan,
        first_escalation_deadline=deadline,
        region_source=source,
        police_unit=police_unit,
        vt_desk=vt_desk,
        tightened=tightening is not None,
        test=is_test,
        exercise=alert.exercise,
        warnings=tuple(resolver.warnings),
    )
