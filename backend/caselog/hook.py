"""Writes every alert raise and transition of a case into its log, inside the alert's
transaction (an `AlertHook` of `backend.alerts.flows.AlertFlow`)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.alerts.models import Alert, AlertEvent
from backend.caselog import service


def alert_summary(alert: Alert, document: dict[str, Any]) -> dict[str, Any]:
    """What the log keeps of an alert: no coordinates, only where it was routed."""
    return {
        "type": alert.type,
        "priority": alert.priority,
        "state": alert.state,
        "sequence": alert.sequence,
        "device_id": alert.device_id,
        "police_unit": alert.police_unit,
        "exercise": alert.exercise,
        "recipients": [
            {"kind": r.get("kind"), "code": r.get("code")}
            for r in (alert.recipients or [])
        ],
    }


class CaseLogHook:
    phase = "follow_up"  # after the police feed is out (AlertHook in backend.alerts.flows)

    def after_change(
        self, session: Session, alert: Alert, document: dict[str, Any], effects: Any
    ) -> None:
        if alert.case_id is None:
            return
        kind = "alert" if alert.sequence == 1 else "transition"
        actor = (
            session.scalar(
                select(AlertEvent.actor)
                .where(AlertEvent.alert_id == alert.id)
                .order_by(AlertEvent.id.desc())
                .limit(1)
            )
            or "system"
        )
        service.append(
            session,
            alert.case_id,
            kind,
            actor,
            alert_summary(alert, document),
            alert_id=alert.id,
            at=alert.updated_at,
        )
