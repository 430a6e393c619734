"""Commands to the devices of a case, through the MQTT outbox (written in the caller's
transaction, published after commit):

- `warn`: the victim is told when the offender is near or in a zone (`WarnCommand`);
- pursuit mode: while an urgent alert of the case is open, its devices report every
  `pursuit_interval_s` (`ConfigCommand`); when the last one closes they go back to their normal
  interval (the device's `report_interval_s`, or the custody release interval while tightened).

`DeviceCommandHook` does both as an `AlertHook` of the alert flow.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from backend.alerts import service as alert_service
from backend.alerts.flows import case_scope
from backend.alerts.lifecycle import CLOSED_STATES, OPEN_STATES
from backend.alerts.models import Alert, AlertEvent
from backend.cases.facts import case_facts
from backend.cases.models import Case
from backend.devices.models import Device
from backend.outbox.dispatcher import OutboxItem
from backend.routing import Policy, custody_tightening
from device_protocol import ConfigCommand, Topics, WarnCommand, codec

# Alerts that put the devices of a case in pursuit mode while they are open.
PURSUIT_TYPES = frozenset(
    {"panic", "fall", "zone_breach", "proximity", "approach", "tamper"}
)
# Alerts that warn the victim's device, and the reason the protocol gives for each (an
# approach: `warn_reason`).
WARN_REASONS = {
    "zone_breach": "zone",
    "proximity": "proximity",
    "approach": "proximity",
}


def warn_reason(alert_type: str, geofence: dict[str, Any] | None) -> str:
    """The reason a warn command gives. An approach is the offender in the pre-alert ring of a
    contact ban (near the victim: `proximity`) or of a zone (`zone`); only a contact ban's event
    names the victim's device it was measured against (`other_device_id`)."""
    if alert_type == "approach":
        return "proximity" if geofence and geofence.get("other_device_id") else "zone"
    return WARN_REASONS[alert_type]


def warned_devices(alert: Alert) -> list[str]:
    """The victim's devices the routing named for this alert (the policy's `victim: warn`,
    per alert type and region): a warn goes to them and to no other (an `approach` is the
    desk's, DESIGN section 5, unless the policy says otherwise)."""
    devices = {r.get("stands_in_for") if r.get("exercise") else r.get("code")
               for r in alert.recipients or () if r.get("kind") == "victim_device"}
    return sorted(d for d in devices if d)  # an exercise's: the case's own (exercise) devices


def raised_geofence(session: Session, alert_id: uuid.UUID) -> dict[str, Any] | None:
    """What the alert's `raised` timeline entry says of the geofence event that raised it."""
    detail = session.scalar(select(AlertEvent.detail).where(
        AlertEvent.alert_id == alert_id, AlertEvent.kind == "raised").limit(1))
    return (detail or {}).get("geofence")


def command_rows(
    session: Session,
    topics: Topics,
    commands: list[tuple[str, BaseModel]],
    at: datetime,
    alert_id: uuid.UUID | None = None,
) -> list[OutboxItem]:
    """Write one outbox row per (device id, command); the items to publish after commit."""
    rows = [
        {
            "alert_id": alert_id,
            "channel": "mqtt",
            "target": topics.cmd(device_id),
            "payload": codec.encode(command),
            "qos": 1,
            "status": "pending",
            "attempts": 0,
            "created_at": at,
        }
        for device_id, command in commands
    ]
    ids = alert_service.enqueue(session, rows)
    return [
        OutboxItem(i, topics.cmd(device_id), codec.encode(command), 1)
        for i, (device_id, command) in zip(ids, commands, strict=True)
    ]


def case_devices(
    session: Session, case_id: uuid.UUID, role: str | None = None
) -> list[Device]:
    query = select(Device).where(Device.case_id == case_id, Device.active.is_(True))
    if role:
        query = query.where(Device.role == role)
    return list(session.scalars(query.order_by(Device.id)))


def open_pursuit_alerts(session: Session, case_id: uuid.UUID, *,
                        followed_up_but: uuid.UUID | None = None) -> int:
    """The case's open alerts that put it in pursuit; with `followed_up_but`, only those
    other than it whose follow-up ran (the ones that started the pursuit, or would have)."""
    query = select(func.count()).select_from(Alert).where(
        Alert.case_id == case_id,
        Alert.state.in_(sorted(OPEN_STATES)),
        Alert.type.in_(sorted(PURSUIT_TYPES)),
    )
    if followed_up_but is not None:
        query = query.where(Alert.id != followed_up_but, Alert.followed_up_at.is_not(None))
    return session.scalar(query) or 0


def in_pursuit(session: Session, case_id: uuid.UUID | None) -> bool:
    return case_id is not None and open_pursuit_alerts(session, case_id) > 0


def normal_interval(device: Device, case: Case, facts_interval: int | None) -> int:
    """The device's interval outside pursuit: faster while a custody release tightens."""
    interval = device.report_interval_s or 60
    return min(interval, facts_interval) if facts_interval else interval


def tightened_interval(
    session: Session, case: Case, policy: Policy, now: datetime
) -> int | None:
    tightening = custody_tightening(case_facts(session, case), policy, now)
    return tightening.report_interval_s if tightening else None


def config_now(
    session: Session, topics: Topics, policy: Policy, device: Device, now: datetime
) -> list[OutboxItem]:
    """The config command that tells the device the interval it reports at from now on (its own,
    faster while a custody release tightens), after its interval was changed; none while its
    case is in pursuit (the pursuit interval holds, and the normal one follows when it ends)."""
    if not device.active or in_pursuit(session, device.case_id):
        return []
    case = session.get(Case, device.case_id)
    assert case is not None
    interval = normal_interval(device, case, tightened_interval(session, case, policy, now))
    return command_rows(
        session, topics, [(device.id, ConfigCommand(report_interval_s=interval))], now)


class DeviceCommandHook:
    phase = "follow_up"  # after the police feed is out (AlertHook in backend.alerts.flows)

    def __init__(
        self, topics: Topics, policy: Policy, pursuit_interval_s: int = 15
    ) -> None:
        self._topics = topics
        self._policy = policy
        self._pursuit = pursuit_interval_s

    def after_change(
        self, session: Session, alert: Alert, document: dict[str, Any], effects: Any
    ) -> None:
        if alert.case_id is None or alert.type not in PURSUIT_TYPES:
            return
        at = alert.updated_at or datetime.now(UTC)
        commands: list[tuple[str, BaseModel]] = []
        raised = alert.sequence == 1
        warned = warned_devices(alert) if raised and alert.type in WARN_REASONS else []
        if warned:
            geofence = raised_geofence(session, alert.id) if alert.type == "approach" else None
            reason = warn_reason(alert.type, geofence)
            commands += [
                (device_id, WarnCommand(reason=reason, ref=str(alert.id)))  # type: ignore[arg-type]
                for device_id in warned
            ]
        mode = None
        # Pursuit starts with the first open urgent alert whose follow-up runs: counting the
        # open ones (== 1) missed it when a second was raised before the first's follow-up
        # (two presses, a fix in a zone and near her). Two follow-ups at the same moment in
        # two transactions may both send it: the same command twice.
        if raised and alert.state in OPEN_STATES and not open_pursuit_alerts(
                session, alert.case_id, followed_up_but=alert.id):
            mode = "pursuit"
            commands += [
                (d.id, ConfigCommand(report_interval_s=self._pursuit))
                for d in case_devices(session, alert.case_id)
            ]
        elif (not raised and alert.state in CLOSED_STATES
              and open_pursuit_alerts(session, alert.case_id) == 0):
            mode = "normal"
            case = session.get(Case, alert.case_id)
            assert case is not None
            tightened = tightened_interval(session, case, self._policy, at)
            commands += [
                (
                    d.id,
                    ConfigCommand(
                        report_interval_s=normal_interval(d, case, tightened)
                    ),
                )
                for d in case_devices(session, alert.case_id)
            ]
        if commands:
            effects.outbox += command_rows(
                session, self._topics, commands, at, alert.id
            )
        if mode:
            case = session.get(Case, alert.case_id)
            assert case is not None
            effects.events.append(
                {
                    "event": "case.pursuit",
                    "case_id": str(alert.case_id),
                    "reference": case.reference,
                    "mode": mode,
                    "alert_id": str(alert.id),
                    "scope": case_scope(case),
                }
            )
