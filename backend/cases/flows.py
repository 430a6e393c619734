"""Case orchestration: measure changes go into the case log; a custody release tightens the case
for the policy's period (`backend.routing.custody_tightening`): faster reporting for its devices
(a `config` command, the victim's with notice `offender_released`), the named contacts notified
(console event `case.custody_released` and a case log entry). The higher priority of its alerts
during the period follows from routing itself. Runs in the caller's transaction and returns what
to send after commit."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy.orm import Session

from backend.alerts.flows import Effects, case_scope
from backend.caselog import service as caselog
from backend.cases import service
from backend.cases.device_commands import (
    case_devices,
    command_rows,
    in_pursuit,
    normal_interval,
)
from backend.cases.facts import case_facts
from backend.cases.models import Case, CaseContact
from backend.cases.snapshots import contact_card
from backend.cases.schemas import CaseUpdate, ContactIn, ContactUpdate
from backend.routing import CustodyTightening, Policy, custody_tightening
from device_protocol import ConfigCommand, Topics

# Fields whose values the case log keeps; others are logged as "changed" only.
LOGGED_VALUES = frozenset(
    {
        "home_police_unit",
        "home_vr_code",
        "home_vt_desk",
        "risk_level",
        "custody_status",
        "released_at",
        "process_director",
        "case_director",
    }
)
RELEASE_NOTICE = "offender_released"


def _value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


class CaseFlow:
    def __init__(
        self, topics: Topics, policy: Policy, pursuit_interval_s: int = 15
    ) -> None:
        self._topics = topics
        self._policy = policy
        self._pursuit = pursuit_interval_s

    def update(
        self,
        session: Session,
        case_id: uuid.UUID,
        data: CaseUpdate,
        actor: str,
        now: datetime | None = None,
    ) -> tuple[Case, Effects]:
        now = now or datetime.now(UTC)
        case = service.get(session, case_id, for_update=True)
        changed = service.update(session, case, data.changes())
        effects = Effects()
        if not changed:
            return case, effects
        caselog.append(
            session,
            case.id,
            "measure",
            actor,
            {
                "changes": {
                    name: (
                        {"from": _value(old), "to": _value(new)}
                        if name in LOGGED_VALUES
                        else "changed"
                    )
                    for name, (old, new) in sorted(changed.items())
                }
            },
            at=now,
        )
        if "custody_status" in changed or "released_at" in changed:
            effects.extend(self.reconcile_custody(session, case, actor, now))
        return case, effects

    def reconcile_custody(
        self, session: Session, case: Case, actor: str, now: datetime
    ) -> Effects:
        """Bring the case's devices and contacts in line with the tightening in force at `now`:
        start a release's tightening once (on the change, or when a release dated in the future
        comes), end it when its period is over or the offender is no longer released. Run by
        a case change and by the custody loop (`backend.cases.custody_loop`); the case row is
        locked by the caller."""
        tightening = custody_tightening(case_facts(session, case), self._policy, now)
        if case.custody_status != "released":
            case.custody_tightened_release = None  # a later release tightens again
        if tightening is not None:
            if case.custody_tightened_release != tightening.released_at:
                case.custody_tightened_release = tightening.released_at
                case.custody_tightened_until = tightening.until
                return self._custody_released(session, case, tightening, actor, now)
            case.custody_tightened_until = tightening.until  # the policy's period may change
            return Effects()
        if case.custody_status == "released" and case.released_at is not None \
                and case.released_at <= now:
            case.custody_tightened_release = case.released_at  # over: nothing left to start
        if case.custody_tightened_until is None:
            return Effects()
        case.custody_tightened_until = None
        return self._tightening_ended(session, case, actor, now)

    def _custody_released(
        self, session: Session, case: Case, tightening: CustodyTightening, actor: str,
        now: datetime,
    ) -> Effects:
        commands: list[tuple[str, BaseModel]] = []
        pursuit = in_pursuit(session, case.id)
        for device in case_devices(session, case.id):
            extra = {"notice": RELEASE_NOTICE} if device.role == "victim" else {}
            if pursuit and not extra:
                continue  # pursuit mode is faster still; it sets the normal interval on closing
            interval = (
                self._pursuit
                if pursuit
                else normal_interval(device, case, tightening.report_interval_s)
            )
            commands.append(
                (
                    device.id,
                    ConfigCommand.model_validate(
                        {"report_interval_s": interval, **extra}
                    ),
                )
            )
        outbox = command_rows(session, self._topics, commands, now)
        contacts = [
            contact_card(c)
            for c in case.contacts
            if c.organisation in tightening.notify_contacts
        ]
        detail = {
            "released_at": tightening.released_at.isoformat(),
            "until": tightening.until.isoformat(),
            "priority_steps_up": tightening.priority_steps_up,
            "report_interval_s": tightening.report_interval_s,
            "devices": [device_id for device_id, _ in commands],
        }
        caselog.append(
            session,
            case.id,
            "custody_release",
            actor,
            {
                **detail,
                "contacts_notified": [
                    {"id": c["id"], "organisation": c["organisation"]} for c in contacts
                ],
            },
            at=now,
        )
        event = {
            "event": "case.custody_released",
            "case_id": str(case.id),
            "reference": case.reference,
            **detail,
            "contacts": contacts,
            "scope": case_scope(case),
        }
        return Effects(outbox=outbox, events=[event])

    def _tightening_ended(
        self, session: Session, case: Case, actor: str, now: datetime
    ) -> Effects:
        """Every device of the case back to its normal report interval (a device in pursuit
        keeps pursuit's: its closing sets the normal one), logged, and told to the console."""
        commands: list[tuple[str, BaseModel]] = []
        if not in_pursuit(session, case.id):
            commands = [
                (device.id, ConfigCommand(report_interval_s=normal_interval(device, case, None)))
                for device in case_devices(session, case.id)
            ]
        outbox = command_rows(session, self._topics, commands, now)
        detail = {"devices": [device_id for device_id, _ in commands]}
        caselog.append(session, case.id, "custody_tightening_ended", actor, detail, at=now)
        event = {
            "event": "case.custody_tightening_ended",
            "case_id": str(case.id),
            "reference": case.reference,
            **detail,
            "scope": case_scope(case),
        }
        return Effects(outbox=outbox, events=[event])

    def add_contact(
        self, session: Session, case_id: uuid.UUID, data: ContactIn, actor: str
    ) -> CaseContact:
        case = service.get(session, case_id, for_update=True)
        contact = service.add_contact(session, case, data)
        caselog.append(
            session,
            case.id,
            "contact",
            actor,
            {
                "action": "added",
                "organisation": contact.organisation,
                "contact_id": str(contact.id),
            },
        )
        return contact

    def update_contact(
        self,
        session: Session,
        case_id: uuid.UUID,
        contact_id: uuid.UUID,
        data: ContactUpdate,
        actor: str,
    ) -> CaseContact:
        contact = service.get_contact(session, case_id, contact_id)
        changes = data.model_dump(exclude_unset=True)
        for name, value in changes.items():
            setattr(contact, name, value)
        session.flush()
        caselog.append(
            session,
            case_id,
            "contact",
            actor,
            {
                "action": "updated",
                "organisation": contact.organisation,
                "contact_id": str(contact.id),
                "fields": sorted(changes),
            },
        )
        return contact

    def delete_contact(
        self, session: Session, case_id: uuid.UUID, contact_id: uuid.UUID, actor: str
    ) -> None:
        contact = service.get_contact(session, case_id, contact_id)
        caselog.append(
            session,
            case_id,
            "contact",
            actor,
            {
                "action": "removed",
                "organisation": contact.organisation,
                "contact_id": str(contact.id),
            },
        )
        session.delete(contact)
        session.flush()
