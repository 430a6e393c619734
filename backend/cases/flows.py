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

from backend.alerts.flows import Effects
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
from backend.routing import Policy, custody_tightening
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
        was_released = case.custody_status == "released"
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
        if case.custody_status == "released" and (
            not was_released or "released_at" in changed
        ):
            effects.extend(self.custody_released(session, case, actor, now))
        return case, effects

    def custody_released(
        self, session: Session, case: Case, actor: str, now: datetime
    ) -> Effects:
        tightening = custody_tightening(case_facts(session, case), self._policy, now)
        if tightening is None:  # a release date in the future, or long past
            return Effects()
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
